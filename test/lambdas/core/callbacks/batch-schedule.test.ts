import { describe, expect, it } from 'vitest';
import { oneAtATime, runKeyedInOrder, type ScheduledItem } from '../../../../lambdas/core/callbacks/batch-schedule.js';

/** A run that records when each item starts and ends; each item takes as many timer turns as its delay. */
function recorder() {
  const log: string[] = [];
  let running = 0;
  let peak = 0;
  const run = async ({ name, delayMs = 5, fail = false }: { name: string; delayMs?: number; fail?: boolean }) => {
    log.push(`start ${name}`);
    peak = Math.max(peak, ++running);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    running--;
    log.push(`end ${name}`);
    if (fail) throw new Error(`${name} failed`);
    return name;
  };
  return { log, run, peak: () => peak };
}

const item = (name: string, keys: string[], options: { alone?: boolean; delayMs?: number; fail?: boolean } = {}): ScheduledItem<{ name: string; delayMs?: number; fail?: boolean }> => ({
  item: { name, ...(options.delayMs === undefined ? {} : { delayMs: options.delayMs }), ...(options.fail ? { fail: true } : {}) },
  keys,
  alone: options.alone ?? false,
});

describe('runKeyedInOrder', () => {
  it('runs items for different keys at the same time', async () => {
    const { log, run, peak } = recorder();
    await runKeyedInOrder([item('a', ['x']), item('b', ['y']), item('c', ['z'])], run);
    expect(peak()).toBe(3);
    expect(log.slice(0, 3)).toEqual(['start a', 'start b', 'start c']);
  });

  it('runs items sharing a key one after another, in batch order, even when the earlier one is slower', async () => {
    const { log, run } = recorder();
    await runKeyedInOrder([item('x1', ['x'], { delayMs: 30 }), item('y1', ['y']), item('x2', ['x'], { delayMs: 1 }), item('x3', ['x'], { delayMs: 1 })], run);
    const xs = log.filter((line) => line.endsWith('x1') || line.endsWith('x2') || line.endsWith('x3'));
    expect(xs).toEqual(['start x1', 'end x1', 'start x2', 'end x2', 'start x3', 'end x3']);
    // y did not wait for x.
    expect(log.indexOf('end y1')).toBeLessThan(log.indexOf('end x1'));
  });

  it('runs an item marked alone with nothing else in flight, and what follows it after it', async () => {
    const { log, run } = recorder();
    await runKeyedInOrder([item('a', ['x'], { delayMs: 20 }), item('b', ['y'], { delayMs: 5 }), item('big', ['z'], { alone: true }), item('c', ['w']), item('d', ['v'])], run);
    expect(log.slice(0, 2)).toEqual(['start a', 'start b']);
    const big = log.indexOf('start big');
    expect(big).toBeGreaterThan(log.indexOf('end a'));
    expect(big).toBeGreaterThan(log.indexOf('end b'));
    expect(log[big + 1]).toBe('end big');
    expect(log.slice(big + 2, big + 4)).toEqual(['start c', 'start d']);
  });

  it('runs every item whatever the others do, and answers each outcome in batch order', async () => {
    const { run } = recorder();
    const outcomes = await runKeyedInOrder([item('x1', ['x'], { fail: true }), item('y1', ['y']), item('x2', ['x']), item('big', [], { alone: true, fail: true }), item('z1', ['z'])], run);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message))).toEqual(['x1 failed', 'y1', 'x2', 'big failed', 'z1']);
  });

  it('answers settled outcomes as Promise.allSettled does', async () => {
    const { run } = recorder();
    const outcomes = await runKeyedInOrder([item('x1', ['x'], { fail: true }), item('big', [], { alone: true })], run);
    expect(outcomes).toEqual([
      { status: 'rejected', reason: new Error('x1 failed') },
      { status: 'fulfilled', value: 'big' },
    ]);
  });

  it('keeps the order of an item with several keys against each of them', async () => {
    const { log, run } = recorder();
    await runKeyedInOrder([item('x1', ['x'], { delayMs: 20 }), item('y1', ['y'], { delayMs: 5 }), item('xy', ['x', 'y'], { delayMs: 1 })], run);
    expect(log.indexOf('start xy')).toBeGreaterThan(log.indexOf('end x1'));
    expect(log.indexOf('start xy')).toBeGreaterThan(log.indexOf('end y1'));
  });

  it('answers nothing for an empty batch', async () => {
    expect(await runKeyedInOrder([], async () => 1)).toEqual([]);
  });
});

describe('oneAtATime', () => {
  it('runs the tasks one at a time in the order given, past a failing one', async () => {
    const { log, run, peak } = recorder();
    const slot = oneAtATime();
    const results = await Promise.allSettled([slot(() => run({ name: 'a', delayMs: 15 })), slot(() => run({ name: 'b', fail: true })), slot(() => run({ name: 'c', delayMs: 1 }))]);
    expect(peak()).toBe(1);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});
