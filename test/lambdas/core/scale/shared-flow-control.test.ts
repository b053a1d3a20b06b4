import { describe, expect, it } from 'vitest';
import { runBurst } from './shared-rate-kit.js';

// Five create-task instances sharing one rate through the store, on virtual time (shared-rate-kit.ts): bursts of
// 1,000 requests through Scale's limit (a sliding one-second window, Retry-After 1 s). Nothing here sleeps.

describe('a shared rate, five instances', () => {
  it.each([
    [5, 220],
    [20, 55],
    [50, 22],
  ])('sends a burst of 1,000 through a limit of %i/s within 1.10 × N/R (%i s), at most a tenth of requests refused', async (rate, seconds) => {
    const run = await runBurst({ rate });
    expect(run.seconds).toBeLessThanOrEqual(seconds);
    expect(run.share429).toBeLessThanOrEqual(0.1);
    // Every request accepted once: the limit saw exactly 1,000 acceptances.
    expect(run.limit.between(0, Infinity).accepted).toBe(1_000);
  });

  it.each([5, 20, 50])('finds a limit of %i/s from the burst’s first 429s: the shares Scale accepted add up to it', async (rate) => {
    const run = await runBurst({ rate, stopAtMs: 500 });
    // Within half a second: one decrease (epoch 1, however many instances tried), and the shares of the instances
    // Scale accepted from, summing to R.
    expect(run.store.memory.item).toMatchObject({ epoch: 1, base: rate, discovering: true });
    // Nothing sent after the first answers came back: 10 requests in flight per instance that had started.
    expect(run.limit.answers.length).toBeLessThanOrEqual(rate + 50);
  });

  it.each([
    [20, 55],
    [50, 22],
  ])('finds a limit of %i/s as well when refusals come back before created tasks do (300 ms of work each), within %i s', async (rate, seconds) => {
    const run = await runBurst({ rate, createMs: 300 });
    // The shares wait for the answers to the requests of their second: the sum is the limit, not what had come back.
    expect(run.sharedRates.slice(0, 4)).toEqual([rate, rate, rate, rate]);
    expect(run.seconds).toBeLessThanOrEqual(seconds);
    expect(run.share429).toBeLessThanOrEqual(0.1);
  });

  it('keeps to the limit found: after the first second, one refusal per 100 tickets at most (the probes)', async () => {
    const run = await runBurst({ rate: 20 });
    const after = run.limit.between(1_000, Infinity);
    expect(after.refused).toBeLessThanOrEqual(Math.ceil(after.accepted / 100));
    expect(run.sharedRates.slice(0, 8)).toEqual([20, 20, 20, 20, 20, 20, 21, 20]);
  });

  it('finds a limit that rose: 20/s, then 50/s from 10 s, used within 10 s of the change', async () => {
    const run = await runBurst({ rate: 20, change: { atMs: 10_000, rate: 50 } });
    // The shared rate every 2.5 s: 20 until the probes pass it, 50 by 20 s.
    expect(run.sharedRates.slice(0, 4)).toEqual([20, 20, 20, 20]);
    expect(run.sharedRates.slice(8, 12)).toEqual([50, 50, 50, 50]);
    expect(run.limit.between(20_000, 25_000).accepted).toBeGreaterThanOrEqual(240);
    // Bound: 200 in the first 10 s, 800 at 50/s: 26 s.
    expect(run.seconds).toBeLessThanOrEqual(31);
  });

  it('finds a limit that fell: 50/s, then 20/s from 10 s, kept within 5 s of the fall', async () => {
    const run = await runBurst({ rate: 50, change: { atMs: 10_000, rate: 20 } });
    expect(run.sharedRates.slice(0, 4)).toEqual([50, 50, 50, 50]);
    expect(run.sharedRates[5]).toBeLessThanOrEqual(20);
    expect(run.sharedRates.slice(6, 12)).toEqual([20, 20, 20, 20, 20, 20]);
    expect(run.limit.between(15_000, Infinity).refused).toBeLessThanOrEqual(5);
    expect(run.share429).toBeLessThanOrEqual(0.1);
  });

  it('without a limit sends as fast as the instances go, with no store write at all (one read per instance)', async () => {
    const run = await runBurst({ rate: Infinity });
    expect(run.store.calls).toEqual({ read: 5, takeTickets: 0, lowerRate: 0, reportShare: 0 });
    // 1,000 requests, 50 at a time, 30 ms each: 0.6 s, and the instances' staggered start.
    expect(run.seconds).toBeLessThanOrEqual(0.7);
    expect(run.flows.map((f) => f.state().rate)).toEqual([null, null, null, null, null]);
  });

  it('keeps the limit with instances’ clocks 50 ms apart, at most 10 % refused', async () => {
    const run = await runBurst({ rate: 50, skewMs: 50 });
    expect(run.share429).toBeLessThanOrEqual(0.1);
    expect(run.seconds).toBeLessThanOrEqual(1.2 * 20);
  });
});
