import { describe, expect, it } from 'vitest';
import { FlowControl, type Permit } from '../../../../lambdas/core/scale/flow-control.js';
import { limitedAt, sendMany, sendWhenDue, VirtualClock } from './virtual-time.js';

// How a 429 measures the share this instance may keep, at the edges of what it counts; on virtual time.
// `initialGrowth: 0` freezes the rate between 429s.

const FROZEN = { initialGrowth: 0 };

describe('answers that count into the share a first 429 set', () => {
  it('are those of requests sent before it, within the second after it, not those of requests sent since', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN });
    const [accepted, refused, onItsWay] = await sendMany(flow, 3);
    // The first 429 comes at 500 ms, with one acceptance in the last second: the rate is 1.
    await clock.run(500);
    flow.settle(accepted!, { rateLimited: false });
    flow.settle(refused!, { rateLimited: true });
    expect(flow.state().rate).toBe(1);
    const sentSince = await sendWhenDue(flow, clock);
    expect(sentSince.sentAt).toBe(1_002);
    // At 1,400 ms (900 ms after the 429) both are accepted: only the one sent before the 429 adds to the share.
    await clock.run(1_400);
    flow.settle(onItsWay!, { rateLimited: false });
    flow.settle(sentSince, { rateLimited: false });
    expect(flow.state()).toMatchObject({ rate: 2, decreases: 1 });
  });

  it('do not include answers on their way when a later 429 stepped the rate down', async () => {
    const { flow, clock } = await limitedAt(5, FROZEN);
    const first = await sendWhenDue(flow, clock);
    const second = await sendWhenDue(flow, clock);
    // Two sends in the last second at a rate of 5 measure nothing: the 429 takes one request per second off.
    await clock.run(1_200);
    flow.settle(second, { rateLimited: true });
    expect(flow.state()).toMatchObject({ rate: 4, decreases: 2 });
    // The first, sent before that 429, is accepted 100 ms after it: the rate stays 4.
    await clock.run(1_300);
    flow.settle(first, { rateLimited: false });
    expect(flow.state().rate).toBe(4);
  });
});

describe('re-measuring the share when the rate has grown', () => {
  it('does not re-measure a rate exactly twice the last decrease’s: that 429 steps it down by one', async () => {
    // Growth g·2^(t/D) adds g·D/ln 2 over one doubling time D: from a rate of 2 (g = ln 2 / 2), 2 in 4 s.
    const { flow, clock } = await limitedAt(2, { initialGrowth: Math.LN2, doublingSeconds: 4 });
    await clock.run(3_500);
    const permit = await sendWhenDue(flow, clock);
    expect(permit.sentAt).toBe(3_500);
    await clock.run(4_000);
    expect(flow.state().rate).toBe(4);
    // Nothing accepted in the last second: a re-measured share would set 1.
    flow.settle(permit, { rateLimited: true });
    expect(flow.state()).toMatchObject({ rate: 3, decreases: 2 });
  });

  it('keeps to 0.75 of a rate under two requests per second, even one that has more than doubled', async () => {
    // A growth that practically never doubles: the rate gains 0.1 request/s every second.
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, initialGrowth: 0.1, doublingSeconds: 1e9 });
    const [accepted, refused, ...onTheirWay] = await sendMany(flow, 4);
    flow.settle(accepted!, { rateLimited: false });
    flow.settle(refused!, { rateLimited: true });
    const second = await sendWhenDue(flow, clock);
    expect(second.sentAt).toBe(1_002);
    // At 2 s the rate is 1.2: a 429 with an acceptance in the last second takes it to 0.9.
    await clock.run(2_000);
    flow.settle(onTheirWay[0]!, { rateLimited: false });
    flow.settle(second, { rateLimited: true });
    expect(flow.state().rate).toBeCloseTo(0.9, 6);
    await clock.run(11_000);
    const third = await sendWhenDue(flow, clock);
    expect(third.sentAt).toBe(11_000);
    // At 12 s the rate is 1.9, more than twice 0.9 and still under two: a 429 then takes it to 0.75 × 1.9.
    await clock.run(12_000);
    flow.settle(onTheirWay[1]!, { rateLimited: false });
    flow.settle(third, { rateLimited: true });
    expect(flow.state().rate).toBeCloseTo(1.425, 6);
    expect(flow.state().decreases).toBe(3);
  });
});

describe('measuring from the end of a Retry-After pause', () => {
  /** Rate `rate` from a first 429 at 0 ms whose burst also held a 429 asking for `pauseMs`; `inFlight` still out. */
  async function pausedAfterLimit(rate: number, pauseMs: number, inFlight = 0) {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock, ...FROZEN });
    const permits = await sendMany(flow, rate + 2 + inFlight);
    for (const permit of permits.slice(0, rate)) flow.settle(permit, { rateLimited: false });
    flow.settle(permits[rate]!, { rateLimited: true });
    flow.settle(permits[rate + 1]!, { rateLimited: true, retryAfterMs: pauseMs });
    expect(flow.state()).toMatchObject({ rate, pausedUntil: pauseMs, decreases: 1 });
    return { flow, clock, inFlight: permits.slice(rate + 2) };
  }

  it('measures nothing less than half a second after it: the 429 steps the rate down by one', async () => {
    const { flow, clock } = await pausedAfterLimit(5, 1_000);
    const permit = await sendWhenDue(flow, clock);
    expect(permit.sentAt).toBe(1_002);
    await clock.run(1_100);
    flow.settle(permit, { rateLimited: true });
    expect(flow.state()).toMatchObject({ rate: 4, decreases: 2 });
  });

  it('does not count a send at the very end of the pause as one sent at the full rate', async () => {
    const { flow, clock } = await pausedAfterLimit(3, 1_500);
    const atTheEnd = await sendWhenDue(flow, clock);
    expect(atTheEnd.sentAt).toBe(1_500);
    await clock.run(1_510);
    flow.settle(atTheEnd, { rateLimited: false });
    const next = await sendWhenDue(flow, clock);
    // 1,500 + (1,000 ms + a margin of 1.25 × 10 ms) / 3 / 2.
    expect(next.sentAt).toBe(1_668.75);
    // 600 ms after the pause: one send after its end, fewer than the rate allows (1.8): nothing measured.
    await clock.run(2_100);
    flow.settle(next, { rateLimited: true });
    expect(flow.state()).toMatchObject({ rate: 2, decreases: 2 });
  });

  it('does not count an acceptance at the very end of the pause', async () => {
    const { flow, clock, inFlight } = await pausedAfterLimit(5, 1_500, 1);
    await clock.run(1_500);
    flow.settle(inFlight[0]!, { rateLimited: false });
    await clock.run(1_501);
    const sent: Permit[] = [];
    for (let i = 0; i < 3; i++) sent.push(await sendWhenDue(flow, clock));
    // Half-spaced in a window of 1,050 ms (a round trip of 1.5 s widens it by the most, 50 ms).
    expect(sent.map((p) => p.sentAt)).toEqual([1_501, 1_606, 1_711]);
    // Half a second after the pause at the full rate, nothing accepted since: the share is 0, the rate 1 (its floor).
    await clock.run(2_000);
    flow.settle(sent[2]!, { rateLimited: true });
    expect(flow.state()).toMatchObject({ rate: 1, decreases: 2 });
  });
});
