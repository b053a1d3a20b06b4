import { describe, expect, it } from 'vitest';
import type { Permit, Turn } from '../../../../lambdas/core/scale/flow-control.js';
import { UNLIMITED, type RateState } from '../../../../lambdas/core/scale/rate-rules.js';
import { MemoryRateStore } from '../../../../lambdas/core/scale/rate-store.js';
import { SharedFlowControl } from '../../../../lambdas/core/scale/shared-flow-control.js';
import { VirtualClock } from './virtual-time.js';

// One instance of a shared rate on virtual time, against the in-memory store (it answers at once): what it counts,
// what a caller who cannot wait is told, and when it reads the state again.

/** A shared state limited at `base` since 0 (epoch 1), its schedule due at `tat`. */
const limitedState = (base: number, tat: number): RateState => ({ ...UNLIMITED, epoch: 1, base, holdTickets: 100, changedAt: 0, tat, reporters: ['other'], version: 1 });
const granted = async (turn: Promise<Turn>): Promise<Permit> => {
  const t = await turn;
  if (!t.ok) throw new Error(t.reason);
  return t.permit;
};

describe('what one instance of a shared rate counts', () => {
  it('counts the requests waiting for their tickets while they wait, and none once they went', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = limitedState(10, 0);
    const flow = new SharedFlowControl(store, { clock });
    const turns = Promise.all([1, 2].map(() => granted(flow.acquire(Infinity))));
    // At 10 ms the first ticket is due at 20, the second at 120.2: both still wait.
    await clock.run(10);
    expect(flow.state().waiting).toBe(2);
    await clock.run();
    expect((await turns).map((p) => p.sentAt)).toEqual([20, 120.2]);
    expect(flow.state().waiting).toBe(0);
  });

  it('counts a permit settled twice once', async () => {
    const clock = new VirtualClock();
    const flow = new SharedFlowControl(new MemoryRateStore(), { clock });
    const permit = await granted(flow.acquire(Infinity));
    flow.settle(permit, { rateLimited: true, retryAfterMs: 1_000 });
    flow.settle(permit, { rateLimited: true, retryAfterMs: 1_000 });
    expect(flow.state()).toMatchObject({ rateLimited: 1, pausedUntil: 1_000 });
  });

  it('is not held back by a 429 to a request sent on a ticket: the schedule holds it', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = limitedState(10, 0);
    const flow = new SharedFlowControl(store, { clock });
    const permit = granted(flow.acquire(Infinity));
    await clock.run();
    flow.settle(await permit, { rateLimited: true, retryAfterMs: 1_000 });
    await clock.run(30);
    expect(flow.state()).toMatchObject({ pausedUntil: 0, rateLimited: 1, decreases: 1 });
  });
});

describe('what a caller who cannot wait is told', () => {
  it('keeps the Retry-After it was told when a later 429 of the same overload comes without one', async () => {
    const clock = new VirtualClock();
    const flow = new SharedFlowControl(new MemoryRateStore(), { clock });
    const [first, second] = await Promise.all([1, 2].map(() => granted(flow.acquire(Infinity))));
    flow.settle(first!, { rateLimited: true, retryAfterMs: 3_000 });
    flow.settle(second!, { rateLimited: true });
    expect(await flow.acquire(2_500)).toEqual({ ok: false, waitMs: 3_000, reason: "not sent: Scale's rate limit (429, Retry-After 3000 ms) gives this request its turn in 3000 ms, after the deadline" });
  });

  it('says a 429 without Retry-After holds the instance a window, counted from now', async () => {
    const clock = new VirtualClock();
    const flow = new SharedFlowControl(new MemoryRateStore(), { clock });
    await clock.run(500);
    const permit = await granted(flow.acquire(Infinity));
    flow.settle(permit, { rateLimited: true });
    expect(await flow.acquire(1_000)).toEqual({ ok: false, waitMs: 1_000, reason: "not sent: Scale's rate limit (429, no Retry-After, held 1000 ms for Scale's window to empty) gives this request its turn in 1000 ms, after the deadline" });
  });

  it('says a Retry-After of 0 was lengthened to a window, rather than claim a wait of 0 ms', async () => {
    const clock = new VirtualClock();
    const flow = new SharedFlowControl(new MemoryRateStore(), { clock });
    const permit = await granted(flow.acquire(Infinity));
    flow.settle(permit, { rateLimited: true, retryAfterMs: 0 });
    expect(await flow.acquire(500)).toEqual({ ok: false, waitMs: 1_000, reason: "not sent: Scale's rate limit (429, Retry-After 0 ms, held 1000 ms for Scale's window to empty) gives this request its turn in 1000 ms, after the deadline" });
  });

  it('once the decrease is known, gives the schedule’s time and rate, not the Retry-After, to a caller who cannot wait', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    const flow = new SharedFlowControl(store, { clock });
    flow.settle(await granted(flow.acquire(Infinity)), { rateLimited: true, retryAfterMs: 3_000 });
    await clock.run(10);
    // The decrease put the schedule 2 ms (the jitter margin) after the Retry-After: that is when a ticket comes.
    expect(store.item).toMatchObject({ epoch: 1, tat: 3_002 });
    expect(await flow.acquire(2_500)).toEqual({ ok: false, waitMs: 2_992, reason: "not sent: Scale's rate limit (429, 1 requests/s shared by every instance) gives this request its turn in 2992 ms, after the deadline" });
  });

  it('refuses at once a request whose ticket, behind one already waiting, would come after its latest start', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = limitedState(1, 5_000);
    const flow = new SharedFlowControl(store, { clock });
    const first = granted(flow.acquire(Infinity));
    await clock.run(0);
    // The first waiter's ticket is due at 5000, the next a second and 2 ms (the jitter margin) later: told at 0 ms.
    let hurried: Turn | undefined;
    void flow.acquire(6_001).then((turn) => (hurried = turn));
    await clock.run(0);
    expect(hurried).toEqual({ ok: false, waitMs: 6_002, reason: "not sent: Scale's rate limit (429, 1 requests/s shared by every instance) gives this request its turn in 6002 ms, after the deadline" });
    const third = granted(flow.acquire(6_002));
    await clock.run();
    expect([(await first).sentAt, (await third).sentAt]).toEqual([5_000, 6_002]);
  });
});

describe('reading the state while unlimited', () => {
  it('reads it again a second after its last read, not sooner, whatever the time', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    const flow = new SharedFlowControl(store, { clock });
    await clock.run(5_000);
    await granted(flow.acquire(Infinity));
    await clock.run(5_999);
    await granted(flow.acquire(Infinity));
    expect(store.reads).toBe(1);
    await clock.run(6_000);
    await granted(flow.acquire(Infinity));
    expect(store.reads).toBe(2);
  });
});
