import { describe, expect, it } from 'vitest';
import type { Decrease, RateState } from '../../../../lambdas/core/scale/rate-rules.js';
import { MemoryRateStore, within } from '../../../../lambdas/core/scale/rate-store.js';
import { VirtualClock } from './virtual-time.js';

// What the in-memory store counts (the requests a real store would get), and how long a store request may take.
const NEVER: RateState = { epoch: 0, base: null, ceiling: null, issued: 0, holdTickets: 0, changedAt: -Infinity, tat: -Infinity, discovering: false, suspect: false, reporters: [], version: 0 };
const FIRST_429: Decrease = { base: 7, ceiling: null, holdTickets: 100, changedAt: 5_000, discovering: true, suspect: false, resumeAt: 6_002 };

describe('MemoryRateStore request counts', () => {
  it('counts one write per update, and the read a refused condition is followed by', async () => {
    const store = new MemoryRateStore();
    const counts = () => [store.reads, store.writes];
    await store.read();
    expect(counts()).toEqual([1, 0]);
    const { state } = await store.lowerRate(NEVER, FIRST_429);
    expect(counts()).toEqual([1, 1]);
    await store.lowerRate(NEVER, { ...FIRST_429, base: 3 });
    expect(counts()).toEqual([2, 2]);
    expect((await store.takeTickets({ earliest: 6_002, seen: state, rate: 7, gapMs: 143.143, count: 1 })).tickets).toHaveLength(1);
    expect(counts()).toEqual([2, 3]);
    expect((await store.takeTickets({ earliest: 6_002, seen: NEVER, rate: 7, gapMs: 143.143, count: 1 })).tickets).toEqual([]);
    expect(counts()).toEqual([3, 4]);
    expect(await store.reportShare(1, 'b', 5)).toMatchObject({ base: 12, reporters: ['b'] });
    expect(counts()).toEqual([3, 5]);
    expect(await store.reportShare(1, 'b', 5)).toMatchObject({ base: 12, reporters: ['b'] });
    expect(counts()).toEqual([4, 6]);
  });
});

describe('within: a store request bounded in time', () => {
  it('answers what the store answered in time, leaving the request alone', async () => {
    const clock = new VirtualClock();
    let signal: AbortSignal | undefined;
    const answer = within(clock, 50, async (s) => {
      signal = s;
      await clock.sleep(10);
      return 'state';
    });
    await clock.run();
    expect(await answer).toBe('state');
    expect(signal!.aborted).toBe(false);
  });

  it('fails a request the store has not answered at the timeout, and aborts it so that it sends no more', async () => {
    const clock = new VirtualClock();
    let signal: AbortSignal | undefined;
    const answer = within(clock, 50, (s) => {
      signal = s;
      return new Promise<never>(() => undefined);
    });
    const failure = answer.catch((err: unknown) => err);
    await clock.run(49);
    expect(signal!.aborted).toBe(false);
    await clock.run();
    expect(await failure).toEqual(new Error('the rate store did not answer within 50 ms'));
    expect(signal!.aborted).toBe(true);
  });
});
