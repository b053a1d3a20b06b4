import { describe, expect, it } from 'vitest';
import type { Permit, Turn } from '../../../../lambdas/core/scale/flow-control.js';
import { UNLIMITED, type Decrease, type RateState } from '../../../../lambdas/core/scale/rate-rules.js';
import { MemoryRateStore, type TicketRequest } from '../../../../lambdas/core/scale/rate-store.js';
import { SharedFlowControl } from '../../../../lambdas/core/scale/shared-flow-control.js';
import { VirtualClock } from './virtual-time.js';

// One instance of a shared rate on virtual time, against a store that answers late, fails, or refuses: what it
// does with slow, crossing, failed and refused store requests.

type Kind = 'read' | 'takeTickets' | 'lowerRate' | 'reportShare';

/**
 * The in-memory store on virtual time: a request applies when it is made and is answered `delayMs` later (as a read
 * that reached DynamoDB before a write can come back after it); a failing kind rejects after its delay.
 */
class SlowStore extends MemoryRateStore {
  readonly calls: Record<Kind, number> = { read: 0, takeTickets: 0, lowerRate: 0, reportShare: 0 };
  readonly delayMs: Record<Kind, number> = { read: 0, takeTickets: 0, lowerRate: 0, reportShare: 0 };
  readonly failing = new Set<Kind>();

  constructor(private readonly clock: VirtualClock) {
    super();
  }

  override read() {
    return this.answer('read', () => super.read());
  }
  override takeTickets(request: TicketRequest) {
    return this.answer('takeTickets', () => super.takeTickets(request));
  }
  override lowerRate(seen: RateState, next: Decrease) {
    return this.answer('lowerRate', () => super.lowerRate(seen, next));
  }
  override reportShare(epoch: number, instance: string, share: number) {
    return this.answer('reportShare', () => super.reportShare(epoch, instance, share));
  }

  private async answer<T>(kind: Kind, apply: () => Promise<T>): Promise<T> {
    this.calls[kind]++;
    const fails = this.failing.has(kind);
    const result = fails ? undefined : await apply();
    if (this.delayMs[kind] > 0) await this.clock.sleep(this.delayMs[kind]);
    if (fails) throw new Error(`${kind} failed`);
    return result as T;
  }
}

/** A shared state limited at `base` since 0 (epoch 1), its schedule due at `tat`. */
const limitedState = (base: number, tat: number): RateState => ({ ...UNLIMITED, epoch: 1, base, holdTickets: 100, changedAt: 0, tat, reporters: ['other'], version: 1 });
const granted = async (turn: Promise<Turn>): Promise<Permit> => {
  const t = await turn;
  if (!t.ok) throw new Error(t.reason);
  return t.permit;
};
/** Starts an acquire; `answer()` is its turn once given (undefined while it waits). */
function asked(flow: SharedFlowControl, latestStart = Infinity) {
  let turn: Turn | undefined;
  void flow.acquire(latestStart).then((t) => (turn = t));
  return () => turn;
}

describe('slow store answers', () => {
  it('sends a ticket that is due when the store’s answer comes at once, with no timer', async () => {
    const clock = new VirtualClock();
    const store = new SlowStore(clock);
    store.item = limitedState(10, 0);
    // The ticket is asked for 20 ms ahead; the store takes those 20 ms to answer.
    store.delayMs.takeTickets = 20;
    const flow = new SharedFlowControl(store, { clock });
    const permit = granted(flow.acquire(Infinity));
    await clock.run();
    expect((await permit).sentAt).toBe(20);
    // Nothing waited for a wait of 0 ms: every sleep asked of the clock was the store's or a timeout's.
    expect(clock.sleeps.every((ms) => ms > 0)).toBe(true);
  });

  it('refuses at its latest start, telling it may go at once, a request whose limit lapsed while the store was slow', async () => {
    const clock = new VirtualClock();
    const store = new SlowStore(clock);
    // No ticket since 0: a minute after it, at 60,000, the limit is stale.
    store.item = limitedState(10, 0);
    store.delayMs.takeTickets = 300;
    await clock.run(59_900);
    const flow = new SharedFlowControl(store, { clock });
    const answer = asked(flow, 60_100);
    // At 60,100 the store has not answered, and the limit is stale: no schedule holds the request back any more.
    await clock.run(60_100);
    expect(answer()).toMatchObject({ ok: false, waitMs: 0 });
  });

  it('keeps the newer of two answers that cross: a read answered after a decrease does not undo it', async () => {
    const clock = new VirtualClock();
    const store = new SlowStore(clock);
    const flow = new SharedFlowControl(store, { clock });
    await granted(flow.acquire(Infinity));
    await clock.run(1_000);
    // A second on, the state is read again (unlimited still), and that read is slow to come back.
    store.delayMs.read = 50;
    const permit = await granted(flow.acquire(Infinity));
    flow.settle(permit, { rateLimited: true, retryAfterMs: 1_000 });
    await clock.run(1_100);
    expect(store.calls.read).toBe(2);
    expect(store.item).toMatchObject({ epoch: 1, version: 1 });
    expect(flow.state().rate).toBe(1);
  });

  it('releases the requests waiting for tickets, without another write, once probing takes the rate past the maximum', async () => {
    const clock = new VirtualClock();
    const store = new SlowStore(clock);
    // 1,000/s, 149 tickets since the decrease (100 of them held before probing): 50 more and the probe to 1,001/s
    // ends in unlimited sending.
    store.item = { ...limitedState(1_000, 100), issued: 149 };
    const flow = new SharedFlowControl(store, { clock });
    const permits = Promise.all(Array.from({ length: 60 }, () => granted(flow.acquire(Infinity))));
    await clock.run();
    const sentAt = (await permits).map((p) => p.sentAt);
    // 50 tickets (what 50 ms hold at 1,000/s) from 100, 1.001 ms apart (the 2 ms margin, capped at a request's worth);
    // at 100.05 (the schedule's end, 150.05, less the 50 ms its tickets take at 1,000/s) the rate is past the maximum.
    expect(sentAt.slice(0, 3)).toEqual([100, 101.001, 102.002]);
    expect(sentAt[49]).toBe(149.049);
    for (const at of sentAt.slice(50)) expect(at).toBeCloseTo(100.05, 6);
    expect(store.calls).toMatchObject({ takeTickets: 1, read: 1 });
    expect(flow.state().rate).toBe(null);
  });
});

describe('failed and refused store requests', () => {
  it('sends under its own flow control after a failed first read, which learns from the answers', async () => {
    const clock = new VirtualClock();
    const store = new SlowStore(clock);
    store.failing.add('read');
    const flow = new SharedFlowControl(store, { clock });
    const permits = await Promise.all([1, 2, 3].map(() => granted(flow.acquire(Infinity))));
    permits.slice(0, 2).forEach((p) => flow.settle(p, { rateLimited: false }));
    flow.settle(permits[2]!, { rateLimited: true, retryAfterMs: 1_000 });
    // Its own flow control's first 429: the 2 requests Scale accepted in the last second; nothing shared written.
    expect(flow.state()).toMatchObject({ shared: false, rate: 2, rateLimited: 0 });
    expect(store.calls).toEqual({ read: 1, takeTickets: 0, lowerRate: 0, reportShare: 0 });
  });

  it('falls back when the store refuses tickets on the very state it holds (an item this code did not write)', async () => {
    const clock = new VirtualClock();
    const store = new SlowStore(clock);
    store.item = limitedState(10, 0);
    // No tickets, and the state as it is: the condition failed on the state the instance asked under.
    store.takeTickets = async () => {
      store.calls.takeTickets++;
      await clock.sleep(5);
      return { tickets: [], state: await store.read() };
    };
    const fallbacks: unknown[] = [];
    const flow = new SharedFlowControl(store, { clock, onFallback: (err) => fallbacks.push(err) });
    const answer = asked(flow);
    await clock.run(2_000);
    expect(fallbacks.map(String)).toEqual(['Error: the rate store refused tickets on the state it holds']);
    expect(answer()).toMatchObject({ ok: true, permit: { sentAt: 5 } });
    expect([store.calls.takeTickets, flow.state().shared]).toEqual([1, false]);
  });

  it('gives up a decrease the store refuses three times, and counts none', async () => {
    const clock = new VirtualClock();
    const store = new SlowStore(clock);
    // A refusal that leaves the epoch as it was: what an item this code did not write would answer.
    store.lowerRate = async () => {
      store.calls.lowerRate++;
      await clock.sleep(5);
      return { ok: false, state: await store.read() };
    };
    const flow = new SharedFlowControl(store, { clock });
    flow.settle(await granted(flow.acquire(Infinity)), { rateLimited: true, retryAfterMs: 1_000 });
    await clock.run(500);
    expect(store.calls.lowerRate).toBe(3);
    expect(flow.state()).toMatchObject({ decreases: 0, rateLimited: 1, shared: true });
  });

  it('falls back once when two store requests fail together, its own flow control on the instance’s clock', async () => {
    const clock = new VirtualClock();
    const store = new SlowStore(clock);
    store.item = limitedState(20, 0);
    const fallbacks: unknown[] = [];
    const flow = new SharedFlowControl(store, { clock, onFallback: (err) => fallbacks.push(err) });
    let given = 0;
    const permits = Promise.all([1, 2, 3].map(() => granted(flow.acquire(Infinity)).finally(() => given++)));
    await clock.run(Infinity, () => given === 3);
    const [first, second, third] = await permits;
    [first, second].forEach((p) => flow.settle(p!, { rateLimited: false }));
    // A ticket asked for and a decrease written at once, and the store fails both.
    for (const kind of ['takeTickets', 'lowerRate'] as const) {
      store.failing.add(kind);
      store.delayMs[kind] = 5;
    }
    const answer = asked(flow);
    flow.settle(third!, { rateLimited: true, retryAfterMs: 1_000 });
    const failedAt = clock.now();
    await clock.run(failedAt + 100);
    // A take for each of the three tickets before, and the failed one.
    expect(store.calls).toMatchObject({ takeTickets: 4, lowerRate: 1 });
    expect(fallbacks.map(String)).toEqual(['Error: lowerRate failed']);
    expect(answer()).toMatchObject({ ok: true, permit: { sentAt: failedAt + 5 } });
    // Its share of the 20/s known: the 2 requests Scale accepted from it in the last second, and growing from there.
    expect(flow.state().shared).toBe(false);
    expect(Math.floor(flow.state().rate!)).toBe(2);
  });

  it('sends a request whose latest start is the end of a Retry-After then, under its own flow control', async () => {
    const clock = new VirtualClock();
    const store = new SlowStore(clock);
    store.failing.add('lowerRate');
    const flow = new SharedFlowControl(store, { clock });
    flow.settle(await granted(flow.acquire(Infinity)), { rateLimited: true, retryAfterMs: 1_000 });
    const answer = asked(flow, 1_000);
    await clock.run(1_000);
    expect(answer()).toMatchObject({ ok: true, permit: { sentAt: 1_000 } });
    expect(flow.state().shared).toBe(false);
  });
});
