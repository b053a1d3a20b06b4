import { describe, expect, it } from 'vitest';
import { FlowControl, type FlowClock } from '../../../../lambdas/core/scale/flow-control.js';
import { limitedAt, send, sendWhenDue, VirtualClock } from './virtual-time.js';

// Which earlier sends hold a turn back, and what a refused turn says; on virtual time. `initialGrowth: 0` freezes
// the rate between 429s.

const FROZEN = { initialGrowth: 0 };

describe('the window of recent sends', () => {
  it('holds a request asked for late in a full window until that window ends', async () => {
    const { flow, clock } = await limitedAt(3, FROZEN);
    const sentAt: number[] = [];
    for (let i = 0; i < 3; i++) sentAt.push((await sendWhenDue(flow, clock)).sentAt);
    expect(sentAt).toEqual([1_002, 1_169, 1_336]);
    // Asked for at 2,000 ms: the window (1,002 ms, the least margin) that began with the send at 1,002 is still full.
    await clock.run(2_000);
    expect((await sendWhenDue(flow, clock)).sentAt).toBe(2_004);
  });

  it('paces a rate under one by its interval when every request went alone, with slow answers', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN });
    // The first request's 429 takes 1.1 s: 1 request/s.
    const first = await send(flow);
    await clock.run(1_100);
    flow.settle(first, { rateLimited: true });
    const accepted = await sendWhenDue(flow, clock);
    const refused = await sendWhenDue(flow, clock);
    // A window of 1,050 ms (one round trip known: the largest margin) after the send at 1,100.
    expect([accepted.sentAt, refused.sentAt]).toEqual([1_100, 2_150]);
    await clock.run(2_200);
    flow.settle(accepted, { rateLimited: false });
    flow.settle(refused, { rateLimited: true });
    expect(flow.state().rate).toBe(0.75);
    // Asked for 1,150 ms after the last send, when no window holds it any more: still one interval after that send.
    await clock.run(3_300);
    expect((await sendWhenDue(flow, clock)).sentAt).toBeCloseTo(2_150 + 1_000 / 0.75, 6);
  });

  it('sends the first request at once when the limit was learnt before this instance sent anything', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN });
    // A 429 for a request this flow control did not pace (another path's answer): 1 request/s, nothing to space from.
    flow.settle({ sentAt: 0 }, { rateLimited: true });
    expect(flow.state().rate).toBe(1);
    await clock.run(100);
    expect(await flow.acquire(100)).toEqual({ ok: true, permit: { sentAt: 100 } });
    expect(clock.sleeps).toEqual([]);
  });

  it('sends at once while unlimited, even if the clock stepped back since the last send', async () => {
    // Date.now() is not monotonic: a clock that steps back 500 ms between two requests.
    const times = [1_000, 500];
    const sleeps: number[] = [];
    const clock: FlowClock = { now: () => times[0]!, sleep: async (ms) => void sleeps.push(ms) };
    const flow = new FlowControl({ clock, maxRate: 0.5 });
    flow.settle(await send(flow), { rateLimited: true });
    expect(flow.state().rate).toBeNull();
    times.shift();
    expect(await flow.acquire(600)).toEqual({ ok: true, permit: { sentAt: 500 } });
    expect(sleeps).toEqual([]);
  });
});

describe('a refused turn', () => {
  /** Refused for lateness alone: no `waitMs`, so no caller takes it for a wait on Scale's rate limit. */
  const LATE = { ok: false, reason: 'not sent: its latest start had passed before it asked for a turn' };

  it('says how long from now the turn would come', async () => {
    const { flow, clock } = await limitedAt(3, FROZEN);
    // The window that began at 0 ms ends at 1,002 ms; asked for at 500 ms with a latest start of 600 ms.
    await clock.run(500);
    expect(await flow.acquire(600)).toEqual({
      ok: false,
      waitMs: 502,
      reason: "not sent: Scale's rate limit (429, 3 requests/s) gives this request its turn in 502 ms, after the deadline",
    });
  });

  it('names no Retry-After when Scale gave none, even with the latest start already past', async () => {
    // maxRate 0.5: any rate a 429 sets is past it, so the instance stays unlimited.
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, maxRate: 0.5 });
    flow.settle(await send(flow), { rateLimited: true });
    await clock.run(1_000);
    // Late, not held back: no wait to report, whatever the rate limit was.
    expect(await flow.acquire(999)).toEqual(LATE);
  });

  /** One send refused at 20 ms with a Retry-After; at `askAt` a turn is asked for whose latest start has passed. */
  async function askAfterRetryAfter(retryAfterMs: number, pausedUntil: number, askAt: number, latestStart: number) {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN });
    const only = await send(flow);
    await clock.run(20);
    flow.settle(only, { rateLimited: true, retryAfterMs });
    expect(flow.state()).toMatchObject({ rate: 1, pausedUntil });
    await clock.run(askAt);
    return flow.acquire(latestStart);
  }


  it('does not name a Retry-After long over, after a single send, with the latest start already past', async () => {
    expect(await askAfterRetryAfter(100, 120, 2_000, 1_500)).toEqual(LATE);
  });

  it('does not name a Retry-After that ends the very moment the turn is asked for', async () => {
    // Its turn is due the moment it asks: only lateness refuses it.
    expect(await askAfterRetryAfter(3_000, 3_020, 3_020, 3_000)).toEqual(LATE);
  });

  it('does not name a Retry-After that ended before the request asked, after several sends', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN });
    const [a, b, c, d] = [await send(flow), await send(flow), await send(flow), await send(flow)];
    flow.settle(a, { rateLimited: false });
    flow.settle(b, { rateLimited: false });
    flow.settle(c, { rateLimited: true });
    flow.settle(d, { rateLimited: true, retryAfterMs: 5_000 });
    await clock.run(10_000);
    expect(await flow.acquire(9_000)).toEqual(LATE);
  });

  it('says how long to wait under a rate learnt elsewhere (limitTo), with no 429 of its own', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN }).limitTo(1);
    expect(await flow.acquire(1_000)).toEqual({ ok: true, permit: { sentAt: 0 } });
    // The next turn is a window and the 50 ms margin after the first send, past a latest start of 500 ms.
    expect(await flow.acquire(500)).toEqual({
      ok: false,
      waitMs: 1_050,
      reason: "not sent: Scale's rate limit (429, 1 requests/s) gives this request its turn in 1050 ms, after the deadline",
    });
  });

  it('does not blame a rate limit never met when the latest start has passed', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock });
    await clock.run(1_000);
    expect(await flow.acquire(999)).toEqual(LATE);
  });
});
