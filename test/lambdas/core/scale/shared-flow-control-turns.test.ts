import { describe, expect, it } from 'vitest';
import type { Permit, Turn } from '../../../../lambdas/core/scale/flow-control.js';
import { UNLIMITED, type RateState } from '../../../../lambdas/core/scale/rate-rules.js';
import { MemoryRateStore } from '../../../../lambdas/core/scale/rate-store.js';
import { SharedFlowControl } from '../../../../lambdas/core/scale/shared-flow-control.js';
import { LaggingRateStore } from './shared-rate-kit.js';
import { VirtualClock } from './virtual-time.js';

// One instance's turns on virtual time: what it asks the store, when its requests go, and what it does when the
// store fails. A MemoryRateStore answers at once; a LaggingRateStore in 5–15 ms, and can fail or hang.

/** A shared state limited at `base` since 0 (epoch 1), its schedule due at `tat`. */
const limitedState = (base: number, tat: number): RateState => ({ ...UNLIMITED, epoch: 1, base, holdTickets: 100, changedAt: 0, tat, reporters: ['other'], version: 1 });
/** A turn that must be given, with when it was. */
const granted = async (turn: Promise<Turn>): Promise<Permit> => {
  const t = await turn;
  if (!t.ok) throw new Error(t.reason);
  return t.permit;
};
/** Starts an acquire and runs virtual time until it is answered (no further); answers the turn and when it came. */
async function acquireRunning(flow: SharedFlowControl, clock: VirtualClock, latestStart = Infinity) {
  let at = NaN;
  const turn = flow.acquire(latestStart).then((t) => ((at = clock.now()), t));
  await clock.run(Infinity, () => !Number.isNaN(at));
  return { turn: await turn, at };
}

describe('one instance of a shared rate', () => {
  it('while unlimited reads the state once and writes nothing, however many requests', async () => {
    const clock = new VirtualClock();
    const store = new LaggingRateStore(clock);
    const flow = new SharedFlowControl(store, { clock });
    const turns = Promise.all(Array.from({ length: 100 }, () => granted(flow.acquire(Infinity))));
    await clock.run();
    for (const permit of await turns) flow.settle(permit, { rateLimited: false });
    expect(store.calls).toEqual({ read: 1, takeTickets: 0, lowerRate: 0, reportShare: 0 });
    expect(flow.state()).toMatchObject({ rate: null, shared: true, rateLimited: 0 });
  });

  it('keeps to a rate another instance found from its first request: tickets a window and 2 ms apart', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = limitedState(10, 0);
    const flow = new SharedFlowControl(store, { clock });
    const turns = Promise.all([1, 2, 3].map(() => granted(flow.acquire(Infinity))));
    await clock.run();
    // The schedule had lapsed: the first ticket 20 ms ahead (time to get it back), then 100.2 ms apart.
    expect((await turns).map((p) => p.sentAt)).toEqual([20, 120.2, 220.4]);
    // One write a ticket at 10/s (50 ms hold half a ticket).
    expect(store.item).toMatchObject({ tat: 320.6, version: 4 });
  });

  it('lowers the rate once for the 429s of one overload, and adds its share once the answers it waits for are in', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    const flow = new SharedFlowControl(store, { clock, instanceId: 'me' });
    const permits = await Promise.all(Array.from({ length: 10 }, () => granted(flow.acquire(Infinity))));
    // The refusals come back first (a 429 costs Scale no work): one decrease, the discovery of the second before 0.
    permits.slice(4).forEach((p) => flow.settle(p, { rateLimited: true, retryAfterMs: 1_000 }));
    await clock.run(5);
    expect(store.item).toMatchObject({ epoch: 1, base: 0, changedAt: 0, discovering: true, reporters: [], tat: 1_002, version: 1 });
    // The four created tasks answer later: the share counts them.
    permits.slice(0, 4).forEach((p) => flow.settle(p, { rateLimited: false }));
    await clock.run(50);
    expect(store.item).toMatchObject({ epoch: 1, base: 4, reporters: ['me'], version: 2 });
    expect(flow.state()).toMatchObject({ rate: 4, rateLimited: 6, decreases: 1 });
  });

  it('adds the share of an instance that met no 429 when it reads the state again, a second after the last read', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    const [a, b] = [new SharedFlowControl(store, { clock, instanceId: 'a' }), new SharedFlowControl(store, { clock, instanceId: 'b' })];
    const [pa, pb] = await Promise.all([a, b].map((flow) => Promise.all([1, 2, 3].map(() => granted(flow.acquire(Infinity))))));
    pb!.forEach((p) => b.settle(p, { rateLimited: false }));
    pa!.forEach((p, i) => a.settle(p, { rateLimited: i === 2, retryAfterMs: 1_000 }));
    await clock.run(5);
    expect(store.item).toMatchObject({ epoch: 1, base: 2, reporters: ['a'] });
    // b sends again before a second has passed since its read: nothing read; after it, the state is read (not
    // waited for) and b's 3 acceptances of the discovery's second are added.
    await clock.run(999);
    await granted(b.acquire(Infinity));
    expect(store.reads).toBe(2);
    await clock.run(1_000);
    await granted(b.acquire(Infinity));
    await clock.run(1_010);
    expect(store.reads).toBe(3);
    expect(store.item).toMatchObject({ epoch: 1, base: 5, reporters: ['a', 'b'] });
  });

  it('holds the whole instance back for Retry-After while unlimited, and tells a caller who cannot wait at once', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    const flow = new SharedFlowControl(store, { clock });
    const refused = await granted(flow.acquire(Infinity));
    flow.settle(refused, { rateLimited: true, retryAfterMs: 3_000 });
    const waiting = granted(flow.acquire(Infinity));
    const hurried = await flow.acquire(2_500);
    expect(hurried).toEqual({ ok: false, waitMs: 3_000, reason: "not sent: Scale's rate limit (429, Retry-After 3000 ms) gives this request its turn in 3000 ms, after the deadline" });
    // The decrease carries the pause into the schedule (and a 2 ms margin): every instance's tickets come after it.
    await clock.run(10);
    expect(store.item).toMatchObject({ epoch: 1, base: 0, tat: 3_002 });
    const other = new SharedFlowControl(store, { clock });
    const first = granted(other.acquire(Infinity));
    await clock.run();
    expect((await first).sentAt).toBe(3_002);
    // The waiting request, held until Retry-After passed, goes on the next ticket: at 1 request/s (none was accepted).
    expect((await waiting).sentAt).toBe(4_004);
  });

  it('refuses at once, without a store write, a request whose ticket would come after its latest start', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = limitedState(1, 5_000);
    const flow = new SharedFlowControl(store, { clock });
    expect(await flow.acquire(3_000)).toEqual({ ok: false, waitMs: 5_000, reason: "not sent: Scale's rate limit (429, 1 requests/s shared by every instance) gives this request its turn in 5000 ms, after the deadline" });
    expect(store.writes).toBe(0);
    expect(clock.now()).toBe(0);
    expect(await flow.acquire(-1)).toEqual({ ok: false, reason: 'not sent: its latest start had passed before it asked for a turn' });
  });

  it('answers by the latest start when another instance took the schedule meanwhile, and takes no ticket it cannot use', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = limitedState(1, 0);
    const [late, other] = [new SharedFlowControl(store, { clock }), new SharedFlowControl(store, { clock })];
    // `late` reads the state (the schedule lapsed: its first ticket would be due 20 ms ahead, too late for 0).
    expect((await late.acquire(0)).ok).toBe(false);
    // `other` takes that ticket, at 20: the next is due at 1022.
    await acquireRunning(other, clock);
    const { turn, at } = await acquireRunning(late, clock, 500);
    expect(turn.ok).toBe(false);
    expect(at).toBe(500);
    expect(turn.ok === false && turn.reason).toMatch(/^not sent: Scale's rate limit \(429, 1 requests\/s shared by every instance\) gives this request its turn in \d+ ms/);
    expect(store.item).toMatchObject({ tat: 1_022, version: 2 });
  });

  it('is unlimited again, without a write, after a quiet minute', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateStore();
    store.item = limitedState(10, 0);
    const flow = new SharedFlowControl(store, { clock });
    await acquireRunning(flow, clock);
    // One ticket, at 20: the schedule is due at 120.2, and a minute after it the limit is stale.
    expect(store.item).toMatchObject({ tat: 120.2 });
    const writes = store.writes;
    await clock.run(60_120.2);
    expect(flow.state().rate).toBe(10);
    await clock.run(60_120.201);
    const { turn, at } = await acquireRunning(flow, clock);
    expect([turn.ok, at, store.writes]).toEqual([true, 60_120.201, writes]);
    expect(flow.state().rate).toBe(null);
  });
});

describe('when the store fails', () => {
  /** An instance on a lagging store at 20/s that had 4 requests accepted in the last second. */
  async function busyAt20() {
    const clock = new VirtualClock();
    const store = new LaggingRateStore(clock);
    store.memory.item = limitedState(20, 0);
    const fallbacks: unknown[] = [];
    const flow = new SharedFlowControl(store, { clock, onFallback: (err) => fallbacks.push(err) });
    let given = 0;
    const permits = Promise.all([1, 2, 3, 4].map(() => granted(flow.acquire(Infinity)).finally(() => given++)));
    await clock.run(Infinity, () => given === 4);
    for (const permit of await permits) flow.settle(permit, { rateLimited: false });
    return { clock, store, flow, fallbacks };
  }

  it('keeps to its own flow control, limited to its share of the known rate, then goes back to the store after 30 s', async () => {
    const { clock, store, flow, fallbacks } = await busyAt20();
    store.failure = new Error('ThrottlingException: Rate of requests exceeds the allowed throughput');
    const { turn, at } = await acquireRunning(flow, clock);
    expect(turn.ok).toBe(true);
    expect(fallbacks).toEqual([store.failure]);
    // Not unlimited into a known limit: the 4 requests/s Scale accepted from it, and growing slowly from there.
    expect(flow.state()).toMatchObject({ shared: false });
    expect(Math.floor(flow.state().rate!)).toBe(4);
    store.failure = undefined;
    const reads = store.calls.read;
    await clock.run(at + 29_000);
    await acquireRunning(flow, clock);
    expect([flow.state().shared, store.calls.read]).toEqual([false, reads]);
    await clock.run(at + 30_000);
    await acquireRunning(flow, clock);
    expect([flow.state().shared, store.calls.read]).toEqual([true, reads + 1]);
  });

  it('falls back when the store does not answer within a second, and the waiting request goes at once', async () => {
    const { clock, store, flow, fallbacks } = await busyAt20();
    store.failure = 'hang';
    const started = clock.now();
    const { turn, at } = await acquireRunning(flow, clock);
    expect(turn.ok).toBe(true);
    expect(at - started).toBeGreaterThanOrEqual(1_000);
    expect(at - started).toBeLessThanOrEqual(1_001);
    expect(String(fallbacks[0])).toBe('Error: the rate store did not answer within 1000 ms');
  });

  it('falls back at the first read, unlimited when no limit is known yet', async () => {
    const clock = new VirtualClock();
    const store = new LaggingRateStore(clock);
    store.failure = new Error('ECONNREFUSED');
    const flow = new SharedFlowControl(store, { clock });
    const { turn } = await acquireRunning(flow, clock);
    expect(turn.ok).toBe(true);
    expect(flow.state()).toMatchObject({ shared: false, rate: null });
  });
});
