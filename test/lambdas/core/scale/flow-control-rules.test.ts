import { describe, expect, it } from 'vitest';
import { FlowControl, type Permit } from '../../../../lambdas/core/scale/flow-control.js';
import { limitedAt, send, sendWhenDue, VirtualClock } from './virtual-time.js';

// The flow control's rules at their boundaries, on virtual time. `initialGrowth: 0` freezes the rate between 429s
// where a test counts exact send times.

const FROZEN = { initialGrowth: 0 };

/** Two paced sends: the first accepted, answered as the second is refused, so the 429 comes with a share of 1. */
async function refusedWithOneAccepted(flow: FlowControl, clock: VirtualClock) {
  const accepted = await sendWhenDue(flow, clock);
  const refused = await sendWhenDue(flow, clock);
  flow.settle(accepted, { rateLimited: false });
  flow.settle(refused, { rateLimited: true });
}

describe('pacing within the rate', () => {
  it('sends at most the whole rate in any second plus a 2 ms margin when round trips do not vary, half-spaced at least', async () => {
    const { flow, clock } = await limitedAt(3, FROZEN);
    expect(flow.state().rate).toBe(3);
    const sentAt: number[] = [];
    for (let i = 0; i < 7; i++) sentAt.push((await sendWhenDue(flow, clock)).sentAt);
    // Window 1,002 ms (1 s + the 2 ms least margin); no two sends closer than 1002 / 3 / 2 = 167 ms.
    expect(sentAt).toEqual([1_002, 1_169, 1_336, 2_004, 2_171, 2_338, 3_006]);
    expect(clock.sleeps.every((ms) => ms > 0)).toBe(true);
  });

  it.each([
    // Round trips 0 ms (the 429) and T ms (the accepted one): margin 1.25 × T, at least 2 ms, at most 50 ms.
    [1, 1 + 1_002],
    [20, 20 + 1_025],
    [100, 100 + 1_050],
  ])('widens the window by how much round trips vary (%i ms apart)', async (roundTrip, expected) => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN });
    const first = await send(flow);
    await clock.run(roundTrip);
    flow.settle(first, { rateLimited: false });
    flow.settle(await send(flow), { rateLimited: true });
    expect(flow.state().rate).toBe(1);
    expect((await sendWhenDue(flow, clock)).sentAt).toBe(expected);
  });

  it('takes the largest margin (50 ms) while it knows a single round trip only', async () => {
    const { flow, clock } = await limitedAt(0);
    expect((await sendWhenDue(flow, clock)).sentAt).toBe(1_050);
  });

  it('paces a rate under one request per second by its interval', async () => {
    const { flow, clock } = await limitedAt(1, { ...FROZEN, minRate: 0.5 });
    // One accepted in the last second: a 429 then takes the rate to 0.75 of itself.
    await refusedWithOneAccepted(flow, clock);
    expect(flow.state().rate).toBe(0.75);
    const last = clock.now();
    // Asked for 1.1 s after the last send (longer ago than any window): still one interval after it.
    await clock.run(last + 1_100);
    expect((await sendWhenDue(flow, clock)).sentAt).toBeCloseTo(last + 1_000 / 0.75, 6);
  });

  it.each([
    // Round trips: one of 20 ms, then N of 0 ms, then the 429's (0 ms). The last 64 are kept: with N = 62 the
    // 20 ms one still widens the window by 25 ms, with N = 63 it is forgotten and the least margin (2 ms) is left.
    [62, 20 + 1_025],
    [63, 20 + 1_002],
  ])('remembers the last 64 round trips for the margin (%i quick ones after a slow one)', async (quick, expected) => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN });
    const slow = await send(flow);
    await clock.run(20);
    flow.settle(slow, { rateLimited: false });
    for (let i = 0; i < quick; i++) flow.settle(await send(flow), { rateLimited: false });
    flow.settle(await send(flow), { rateLimited: true });
    expect(flow.state().rate).toBe(quick + 1);
    // Its whole rate went out at 20 ms: the next send waits for the window from there.
    expect((await sendWhenDue(flow, clock)).sentAt).toBe(expected);
  });
});

describe('a 429 below two requests per second', () => {
  it('multiplies the rate by 0.75 each time, down to the least rate', async () => {
    const { flow, clock } = await limitedAt(1, { ...FROZEN, minRate: 0.5 });
    const rates: number[] = [];
    for (let i = 0; i < 3; i++) {
      await refusedWithOneAccepted(flow, clock);
      rates.push(flow.state().rate!);
    }
    expect(rates).toEqual([0.75, 0.5625, 0.5]);
  });

  it('keeps a rate under one when nothing of its own was accepted in the last second', async () => {
    const { flow, clock } = await limitedAt(1, { ...FROZEN, minRate: 0.5 });
    await refusedWithOneAccepted(flow, clock);
    expect(flow.state().rate).toBe(0.75);
    // An interval later the acceptance has left the window: a 429 now leaves the rate as it is.
    flow.settle(await sendWhenDue(flow, clock), { rateLimited: true });
    expect(flow.state()).toMatchObject({ rate: 0.75, decreases: 3 });
  });
});

describe('a later 429 at two requests per second or more', () => {
  it('steps a rate of exactly 2 down by one, to 1', async () => {
    const { flow, clock } = await limitedAt(2, FROZEN);
    await refusedWithOneAccepted(flow, clock);
    expect(flow.state()).toMatchObject({ rate: 1, decreases: 2 });
  });

  it('measures the share from the end of the last Retry-After pause, not across it', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN });
    const early = await Promise.all(Array.from({ length: 7 }, () => send(flow)));
    for (const permit of early.slice(0, 4)) flow.settle(permit, { rateLimited: false });
    flow.settle(early[4]!, { rateLimited: true });
    // A late 429 of the same burst holds the instance until 1,000 ms; a late acceptance at 600 ms counts into
    // the first share (5) but was before the pause ended.
    flow.settle(early[5]!, { rateLimited: true, retryAfterMs: 1_000 });
    await clock.run(600);
    flow.settle(early[6]!, { rateLimited: false });
    expect(flow.state()).toMatchObject({ rate: 5, pausedUntil: 1_000 });
    const sent: Permit[] = [];
    for (let i = 0; i < 3; i++) sent.push(await sendWhenDue(flow, clock));
    // Half a second after the pause, sending at the full rate: one acceptance in it is two a second.
    await clock.run(1_500);
    flow.settle(sent[0]!, { rateLimited: false });
    flow.settle(sent[1]!, { rateLimited: true });
    expect(flow.state()).toMatchObject({ rate: 2, decreases: 2 });
  });

  it('takes the rate to what was accepted over the last second when the instance sent at its full rate then', async () => {
    const { flow, clock } = await limitedAt(5, FROZEN);
    const permits: Permit[] = [];
    for (let i = 0; i < 5; i++) permits.push(await sendWhenDue(flow, clock));
    // Five sends in the last second, at the full rate of 5: only two of them accepted.
    expect(permits.map((p) => Math.round(p.sentAt * 10) / 10)).toEqual([1_002, 1_102.2, 1_202.4, 1_302.6, 1_402.8]);
    flow.settle(permits[0]!, { rateLimited: false });
    flow.settle(permits[1]!, { rateLimited: false });
    flow.settle(permits[2]!, { rateLimited: true });
    expect(flow.state()).toMatchObject({ rate: 2, decreases: 2 });
  });

  it('measures the share again once the rate has more than doubled since the last decrease', async () => {
    const { flow, clock } = await limitedAt(2);
    // Two minutes without a 429: the growth (doubling every 20 s) has taken the rate far past twice 2.
    await clock.run(120_000);
    expect(flow.state().rate).toBeGreaterThan(19);
    const sends = Promise.all(Array.from({ length: 4 }, () => send(flow)));
    await clock.run();
    const permits = await sends;
    for (const permit of permits.slice(0, 3)) flow.settle(permit, { rateLimited: false });
    flow.settle(permits[3]!, { rateLimited: true });
    expect(flow.state().rate).toBe(3);
  });

  it('keeps a re-measured share a whole request under the rate that met the 429', async () => {
    const { flow, clock } = await limitedAt(2);
    await clock.run(120_000);
    const rate = flow.state().rate!;
    expect(Math.floor(rate)).toBe(20);
    // A full window's worth (20) accepted, and the next one refused: the share is 20, the new rate 19.
    const sends = Promise.all(Array.from({ length: 21 }, () => send(flow)));
    await clock.run();
    const permits = await sends;
    for (const permit of permits.slice(0, 20)) flow.settle(permit, { rateLimited: false });
    flow.settle(permits[20]!, { rateLimited: true });
    expect(flow.state().rate).toBe(19);
  });
});

describe('growth between 429s', () => {
  it('is faster the lower the rate: from 1, 0.02 requests/s per s; from 3, a third of that; doubling every 20 s', async () => {
    const [low, high] = await Promise.all([limitedAt(1), limitedAt(3)]);
    await Promise.all([low.clock.run(60_000), high.clock.run(60_000)]);
    // ∫ g·2^(t/20) dt over 60 s = g · 20 / ln 2 · 7.
    expect(low.flow.state().rate).toBeCloseTo(5.0395, 3);
    expect(high.flow.state().rate).toBeCloseTo(4.3465, 3);
  });

  it('becomes unlimited only past maxRate', async () => {
    const { flow } = await limitedAt(1, { ...FROZEN, maxRate: 1 });
    expect(flow.state().rate).toBe(1);
  });

  it('grows from a share that late answers raised as from that share', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock });
    const permits = await Promise.all(Array.from({ length: 4 }, () => send(flow)));
    flow.settle(permits[0]!, { rateLimited: false });
    flow.settle(permits[3]!, { rateLimited: true });
    flow.settle(permits[1]!, { rateLimited: false });
    flow.settle(permits[2]!, { rateLimited: false });
    await clock.run(60_000);
    expect(flow.state().rate).toBeCloseTo(4.3465, 3);
  });
});

describe('the share a first 429 counts', () => {
  it('holds only acceptances of the last second, not one exactly a second old', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN });
    const [old, recent, refused] = await Promise.all([send(flow), send(flow), send(flow)]);
    flow.settle(old!, { rateLimited: false });
    await clock.run(500);
    flow.settle(recent!, { rateLimited: false });
    await clock.run(1_000);
    flow.settle(refused!, { rateLimited: true });
    expect(flow.state().rate).toBe(1);
  });
});

describe('answers on their way when the first 429 came', () => {
  async function firstLimit() {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN });
    const permits = await Promise.all(Array.from({ length: 4 }, () => send(flow)));
    flow.settle(permits[0]!, { rateLimited: false });
    flow.settle(permits[3]!, { rateLimited: true });
    expect(flow.state().rate).toBe(1);
    return { flow, clock, late: permits.slice(1, 3) };
  }

  it('count into the share within the second after it', async () => {
    const { flow, clock, late } = await firstLimit();
    await clock.run(999);
    for (const permit of late) flow.settle(permit, { rateLimited: false });
    expect(flow.state().rate).toBe(3);
  });

  it('do not count a second or more after it', async () => {
    const { flow, clock, late } = await firstLimit();
    await clock.run(1_000);
    for (const permit of late) flow.settle(permit, { rateLimited: false });
    expect(flow.state().rate).toBe(1);
  });
});

describe('Retry-After and the latest start', () => {
  it('is not shortened by a shorter Retry-After that comes later', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock });
    const [first, second] = await Promise.all([send(flow), send(flow)]);
    flow.settle(first!, { rateLimited: true, retryAfterMs: 5_000 });
    flow.settle(second!, { rateLimited: true, retryAfterMs: 1_000 });
    expect(flow.state().pausedUntil).toBe(5_000);
    expect((await sendWhenDue(flow, clock)).sentAt).toBe(5_000);
  });

  it('gives a turn that comes exactly at the latest start, and refuses one a millisecond later at once, naming the rate', async () => {
    const { flow, clock } = await limitedAt(3, FROZEN);
    const refused = await flow.acquire(1_001);
    expect(refused).toEqual({ ok: false, waitMs: 1_002, reason: "not sent: Scale's rate limit (429, 3 requests/s) gives this request its turn in 1002 ms, after the deadline" });
    expect(clock.sleeps).toEqual([]);
    const granted = flow.acquire(1_002);
    await clock.run();
    expect(await granted).toEqual({ ok: true, permit: { sentAt: 1_002 } });
    expect(flow.state().waiting).toBe(0);
  });

  it('does not name a Retry-After that no longer holds the turn back', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock });
    flow.settle(await send(flow), { rateLimited: true, retryAfterMs: 100 });
    const refused = await flow.acquire(1_000);
    // One round trip known: the window is 1,050 ms, and the turn comes then, long after the pause.
    expect(refused).toEqual({ ok: false, waitMs: 1_050, reason: "not sent: Scale's rate limit (429, 1 requests/s) gives this request its turn in 1050 ms, after the deadline" });
  });

  it('names a rate under one with two decimals', async () => {
    const { flow, clock } = await limitedAt(1, { ...FROZEN, minRate: 0.5 });
    await refusedWithOneAccepted(flow, clock);
    const refused = await flow.acquire(clock.now());
    expect(refused.ok === false && refused.reason).toBe("not sent: Scale's rate limit (429, 0.75 requests/s) gives this request its turn in 1334 ms, after the deadline");
  });

  it('names only the Retry-After when the rate is unlimited again', async () => {
    // maxRate 0.5: any rate the 429 sets is past it, so only the pause holds requests back.
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, maxRate: 0.5 });
    flow.settle(await send(flow), { rateLimited: true, retryAfterMs: 3_000 });
    expect(flow.state().rate).toBeNull();
    const refused = await flow.acquire(2_999);
    expect(refused).toEqual({ ok: false, waitMs: 3_000, reason: "not sent: Scale's rate limit (429, Retry-After 3000 ms) gives this request its turn in 3000 ms, after the deadline" });
    expect((await sendWhenDue(flow, clock)).sentAt).toBe(3_000);
  });
});
