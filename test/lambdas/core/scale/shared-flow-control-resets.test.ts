import { describe, expect, it } from 'vitest';
import type { Turn } from '../../../../lambdas/core/scale/flow-control.js';
import { UNLIMITED, type RateState } from '../../../../lambdas/core/scale/rate-rules.js';
import { MemoryRateStore } from '../../../../lambdas/core/scale/rate-store.js';
import { SharedFlowControl } from '../../../../lambdas/core/scale/shared-flow-control.js';
import { VirtualClock } from './virtual-time.js';

// What an instance of the shared rate does with a rate item it did not expect: deleted under it (an operator's
// reset), a schedule hours ahead (a clock far ahead, or an edit by hand), and a first read slower than its caller.

/** The item after a long limited run at 10/s: epoch 7, version 500, its schedule due at `tat`. */
const longLimited = (tat: number): RateState => ({ ...UNLIMITED, epoch: 7, base: 10, holdTickets: 100, changedAt: 0, tat, issued: 50, reporters: ['other'], version: 500 });

/** Asks for `count` turns at once; answers them once all are given or refused. */
async function turns(flow: SharedFlowControl, clock: VirtualClock, count: number, latestStart: number): Promise<Turn[]> {
  const asked = Promise.all(Array.from({ length: count }, () => flow.acquire(latestStart)));
  await clock.run();
  return asked;
}

describe('a shared rate whose item changes under it', () => {
  it('starts over when the item is deleted: sends unlimited at once, then learns the limit from the next 429', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = longLimited(0);
    const flow = new SharedFlowControl(store, { clock });
    const before = await turns(flow, clock, 3, Infinity);
    expect(before.map((t) => t.ok && t.permit.sentAt)).toEqual([20, 120.2, 220.4]);
    // A 429 in epoch 7: the next decrease it asks for must be in a later epoch.
    if (before[0]!.ok) flow.settle(before[0]!.permit, { rateLimited: true, retryAfterMs: 1_000 });
    await clock.run();
    expect(store.item).toMatchObject({ epoch: 8, base: 9 });

    store.item = { ...UNLIMITED, reporters: [] };
    const [writes, at] = [store.writes, clock.now()];
    const after = await turns(flow, clock, 10, at + 3_000);
    // One refused write (its answer: no item) and every request goes at once, none refused at its latest start.
    expect(after.map((t) => (t.ok ? t.permit.sentAt : t.reason))).toEqual(Array(10).fill(at));
    expect(store.writes - writes).toBe(1);
    expect(flow.state().rate).toBeNull();

    // A 429 now opens a discovery in the new item (epoch 1), as on a fresh table, and this instance adds its share:
    // the nine requests Scale accepted from it in the second before.
    for (const t of after.slice(1)) if (t.ok) flow.settle(t.permit, { rateLimited: false });
    const first = after[0]!;
    if (first.ok) flow.settle(first.permit, { rateLimited: true, retryAfterMs: 1_000 });
    await clock.run(clock.now() + 10);
    expect(store.item).toMatchObject({ epoch: 1, discovering: true, base: 9, reporters: [flow.instanceId] });
    expect(flow.state().decreases).toBe(2);
  });

  it('falls back to its own flow control, saying why, while the schedule is further ahead than any pause', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = longLimited(3 * 3_600_000);
    const errors: string[] = [];
    const flow = new SharedFlowControl(store, { clock, onFallback: (err) => errors.push((err as Error).message) });
    const [turn] = await turns(flow, clock, 1, 5_000);
    expect(turn).toMatchObject({ ok: true, permit: { sentAt: 0 } });
    expect(errors).toEqual([
      "the rate item's schedule is 10800 s ahead of this instance's clock, further than any pause puts it: written by a clock that is ahead, or by hand (deleting the item resets the shared rate)",
    ]);
    expect(store.writes).toBe(0);
    expect(flow.state().shared).toBe(false);

    // Deleted, the item is read again once the fallback ends, and the instance is back on the shared rate.
    store.item = { ...UNLIMITED, reporters: [] };
    await clock.run(30_000);
    const [later] = await turns(flow, clock, 1, Infinity);
    expect(later).toMatchObject({ ok: true, permit: { sentAt: 30_000 } });
    expect(flow.state()).toMatchObject({ shared: true, rate: null });
    expect(errors).toHaveLength(1);
  });

  it('falls back when a ticket it took is further ahead than any pause: the schedule was moved under it', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = longLimited(0);
    const errors: string[] = [];
    const flow = new SharedFlowControl(store, { clock, onFallback: (err) => errors.push((err as Error).message) });
    // A writer whose clock is three hours ahead moves the schedule while this instance takes a ticket at a time.
    void clock.sleep(40).then(() => void (store.item = { ...store.item, tat: store.item.tat + 3 * 3_600_000, version: store.item.version + 1 }));
    const given = await turns(flow, clock, 3, Infinity);
    // The second goes on the ticket it was given, hours ahead; the third under the instance's own flow control.
    expect(given.map((t) => (t.ok ? t.permit.sentAt : t.reason))).toEqual([20, 10_800_120.2, 70.2]);
    expect(errors).toHaveLength(1);
  });

  it('keeps to a schedule 15 s ahead (a Retry-After of 10 s and more than its margin): no fallback', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = longLimited(15_000);
    const flow = new SharedFlowControl(store, { clock, onFallback: () => expect.fail('fell back') });
    const [turn] = await turns(flow, clock, 1, Infinity);
    expect(turn).toMatchObject({ ok: true, permit: { sentAt: 15_000 } });
    expect(flow.state().shared).toBe(true);
  });

  it('looks at the latest start again once a slow first read is back', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = longLimited(0);
    const read = store.read.bind(store);
    store.read = async () => {
      await clock.sleep(900);
      return read();
    };
    const flow = new SharedFlowControl(store, { clock });
    const [turn] = await turns(flow, clock, 1, 100);
    expect(turn).toMatchObject({ ok: false });
    expect(turn).not.toHaveProperty('waitMs');
    expect(turn!.ok === false && turn!.reason).toMatch(/^not sent: its latest start had passed/);
    expect(store.writes).toBe(0);
  });
});
