import { describe, expect, it } from 'vitest';
import { FlowControl } from '../../../../lambdas/core/scale/flow-control.js';
import { fleet, limitedAt, send, sendWhenDue, SlidingWindowLimit, VirtualClock } from './virtual-time.js';

// Every test runs on virtual time: minutes of pacing take milliseconds, and nothing here sleeps.

describe('flow control', () => {
  it('sends at once, however many, until Scale answers 429: without a limit only the concurrency bounds throughput', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock });
    const permits = await Promise.all(Array.from({ length: 500 }, () => send(flow)));
    for (const permit of permits) flow.settle(permit, { rateLimited: false });
    expect(permits.every((p) => p.sentAt === 0)).toBe(true);
    expect(clock.sleeps).toEqual([]);
    expect(flow.state()).toMatchObject({ rate: null, decreases: 0 });
  });

  it('finds one instance’s limit within a bounded number of requests, then keeps to it without 429s', async () => {
    const run = fleet({ instances: 1, concurrency: 10, limit: new SlidingWindowLimit(7) });
    await run.run(20_000);
    const answers = run.limit.answers;
    // The first burst (10 in flight) and the retries sent before its 429s came back: nothing refused after.
    expect(answers.findLastIndex((a) => !a.ok)).toBeLessThan(20);
    expect(Math.floor(run.flows[0]!.state().rate!)).toBe(7);
    // Seconds 2 to 20: 7 a second accepted (at most one short for the jitter margin), none refused.
    const steady = run.limit.between(2_000, 20_000);
    expect(steady.refused).toBe(0);
    expect(steady.accepted).toBeGreaterThanOrEqual(7 * 18 - 1);
  });

  it.each([
    [5, 0.99, 0.05],
    [20, 0.95, 0.02],
    [50, 0.95, 0.01],
  ])('lets five instances sharing a limit of %i/s use it (≥ %d of it) with few 429s (≤ %d after the first burst)', async (rate, used, refusedShare) => {
    const run = fleet({ instances: 5, concurrency: 10, limit: new SlidingWindowLimit(rate) });
    await run.run(60_000);
    const after = run.limit.between(2_000, 60_000);
    expect(after.accepted / (rate * 58)).toBeGreaterThanOrEqual(used);
    expect(after.refused / (after.accepted + after.refused)).toBeLessThanOrEqual(refusedShare);
    // The first burst: each instance's 10 requests in flight, at most, refused once.
    expect(run.limit.between(0, 2_000).refused).toBeLessThanOrEqual(5 * 10 + 5);
  });

  it('honours Retry-After: nothing of the instance is sent before it passes, and a caller who cannot wait is told at once', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock });
    const refused = await send(flow);
    flow.settle(refused, { rateLimited: true, retryAfterMs: 3_000 });

    const hurried = await flow.acquire(2_500);
    expect(hurried).toMatchObject({ ok: false, waitMs: 3_000 });
    expect(hurried.ok === false && hurried.reason).toMatch(/^not sent: Scale's rate limit \(429, Retry-After 3000 ms, 1 requests\/s\) gives this request its turn in 3000 ms/);
    expect(clock.sleeps).toEqual([]);

    const next = flow.acquire(Infinity);
    await clock.run(2_999);
    expect(flow.state().waiting).toBe(1);
    await clock.run();
    const turn = await next;
    expect(turn.ok && turn.permit.sentAt).toBe(3_000);
  });

  it('holds a later Retry-After back too, even for a request already waiting its turn', async () => {
    const { flow, clock } = await limitedAt(2);
    const waiting = flow.acquire(Infinity);
    await clock.run(100);
    // While it waits, another 429 (sent after the decrease) asks for 5 s more.
    clock.sleeps.length = 0;
    const late = { sentAt: 50 };
    flow.settle(late, { rateLimited: true, retryAfterMs: 5_000 });
    await clock.run();
    const turn = await waiting;
    expect(turn.ok && turn.permit.sentAt).toBe(5_100);
  });

  it('takes the rate down once for the 429s of one overload, not once per 429', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock });
    const permits = await Promise.all(Array.from({ length: 10 }, () => send(flow)));
    flow.settle(permits[0]!, { rateLimited: false });
    flow.settle(permits[1]!, { rateLimited: false });
    flow.settle(permits[2]!, { rateLimited: false });
    for (const permit of permits.slice(3)) flow.settle(permit, { rateLimited: true });
    expect(flow.state()).toMatchObject({ rate: 3, decreases: 1, rateLimited: 7 });
  });

  it('counts answers still on their way when the first 429 came into the share', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock });
    const permits = await Promise.all(Array.from({ length: 6 }, () => send(flow)));
    flow.settle(permits[0]!, { rateLimited: false });
    flow.settle(permits[5]!, { rateLimited: true });
    expect(flow.state().rate).toBe(1);
    for (const permit of permits.slice(1, 4)) flow.settle(permit, { rateLimited: false });
    expect(flow.state().rate).toBe(4);
  });

  it('steps down by one request per second on a later 429, keeping whole requests per second', async () => {
    const { flow, clock } = await limitedAt(6);
    const permit = await sendWhenDue(flow, clock);
    expect(permit.sentAt).toBeGreaterThanOrEqual(1_000);
    flow.settle(permit, { rateLimited: true });
    expect(Math.floor(flow.state().rate!)).toBe(5);
    expect(flow.state().decreases).toBe(2);
  });

  it('keeps an instance the others crowd out at one request per second instead of starving it', async () => {
    const { flow, clock } = await limitedAt(0);
    for (let i = 0; i < 5; i++) {
      flow.settle(await sendWhenDue(flow, clock), { rateLimited: true });
    }
    expect(flow.state()).toMatchObject({ rate: 1 });
  });

  it('finds a limit again after it rose fourfold, within minutes and without a burst of 429s', async () => {
    const run = fleet({ instances: 1, concurrency: 10, limit: new SlidingWindowLimit(5) });
    await run.run(10_000);
    run.limit.rate = 20;
    await run.run(170_000);
    // Growth doubles every 20 s without a 429: 5 → 20 requests/s takes about two and a half minutes.
    expect(run.limit.between(160_000, 170_000).accepted).toBeGreaterThanOrEqual(19 * 10);
    expect(run.limit.between(10_000, 170_000).refused).toBeLessThanOrEqual(3);
  });

  it('sends unlimited again after a long spell without 429s', async () => {
    const { flow, clock } = await limitedAt(3);
    await clock.run(60_000);
    expect(flow.state().rate).toBeGreaterThan(3);
    await clock.run(400_000);
    expect(flow.state().rate).toBeNull();
  });

  it('gives turns in the order they were asked for', async () => {
    const { flow, clock } = await limitedAt(2);
    const order: number[] = [];
    const turns = Array.from({ length: 6 }, (_, i) => flow.acquire(Infinity).then((turn) => (order.push(i), turn)));
    await clock.run();
    await Promise.all(turns);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('keeps to a rate learnt elsewhere once told (limitTo), and never raises a lower one of its own', async () => {
    const clock = new VirtualClock();
    const flow = new FlowControl({ clock }).limitTo(4);
    expect(flow.state().rate).toBe(4);
    const sentAt: number[] = [];
    const turns = Array.from({ length: 5 }, () => send(flow).then((permit) => sentAt.push(permit.sentAt)));
    await clock.run();
    await Promise.all(turns);
    // Four in the first window, half their even spacing apart; the fifth a window and the 50 ms margin after the first.
    expect(sentAt).toEqual([0, 131.25, 262.5, 393.75, 1_050]);
    const lower = await limitedAt(2);
    expect(Math.floor(lower.flow.limitTo(10).state().rate!)).toBe(2);
    expect(new FlowControl({ clock }).limitTo(0.05).state().rate).toBe(0.1);
  });
});
