import { describe, expect, it } from 'vitest';
import { ScaleApiError } from '../../../../lambdas/core/scale/errors.js';
import { rateWaitDelaySeconds } from '../../../../lambdas/core/scenes/rate-wait.js';

// Which failures send an upload back to the queue to wait for its turn at Scale, and for how long.
const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const HOUR = 3_600_000;
const waitFor = (retryInMs: number | undefined, extra: { status?: number } = {}) =>
  new ScaleApiError('not sent', { operation: 'create task', retryable: true, attempts: 0, retryInMs, ...extra });
const uploadedAgo = (ms: number) => new Date(NOW - ms).toISOString();

describe('rateWaitDelaySeconds', () => {
  it("waits out the rate limit's turn, in whole seconds (at least one, at most SQS's 900)", () => {
    expect(rateWaitDelaySeconds(waitFor(0), uploadedAgo(0), NOW)).toBe(1);
    expect(rateWaitDelaySeconds(waitFor(1), uploadedAgo(0), NOW)).toBe(1);
    expect(rateWaitDelaySeconds(waitFor(1_001), uploadedAgo(0), NOW)).toBe(2);
    expect(rateWaitDelaySeconds(waitFor(9_000, { status: 429 }), uploadedAgo(HOUR), NOW)).toBe(9);
    expect(rateWaitDelaySeconds(waitFor(900_000), uploadedAgo(0), NOW)).toBe(900);
    expect(rateWaitDelaySeconds(waitFor(3_600_000), uploadedAgo(0), NOW)).toBe(900);
    expect(rateWaitDelaySeconds(waitFor(Infinity), uploadedAgo(0), NOW)).toBe(900);
    expect(rateWaitDelaySeconds(waitFor(NaN), uploadedAgo(0), NOW)).toBe(900);
  });

  it('leaves every other failure to the usual retries', () => {
    expect(rateWaitDelaySeconds(waitFor(undefined, { status: 503 }), uploadedAgo(0), NOW)).toBeUndefined();
    expect(rateWaitDelaySeconds(new Error('not sent'), uploadedAgo(0), NOW)).toBeUndefined();
    expect(rateWaitDelaySeconds(Object.assign(new Error('x'), { retryInMs: 1_000 }), uploadedAgo(0), NOW)).toBeUndefined();
    expect(rateWaitDelaySeconds(undefined, uploadedAgo(0), NOW)).toBeUndefined();
  });

  it('stops after a day of waiting, so that no message goes round for ever', () => {
    expect(rateWaitDelaySeconds(waitFor(1_000), uploadedAgo(24 * HOUR), NOW)).toBe(1);
    expect(rateWaitDelaySeconds(waitFor(1_000), uploadedAgo(24 * HOUR + 1), NOW)).toBeUndefined();
  });

  it('does not trust an upload time it cannot read, or one far ahead of its clock', () => {
    expect(rateWaitDelaySeconds(waitFor(1_000), undefined, NOW)).toBeUndefined();
    expect(rateWaitDelaySeconds(waitFor(1_000), 'yesterday', NOW)).toBeUndefined();
    expect(rateWaitDelaySeconds(waitFor(1_000), uploadedAgo(-5 * 60_000), NOW)).toBe(1);
    expect(rateWaitDelaySeconds(waitFor(1_000), uploadedAgo(-5 * 60_000 - 1), NOW)).toBeUndefined();
    expect(rateWaitDelaySeconds(waitFor(1_000), '9999-12-31T23:59:59Z', NOW)).toBeUndefined();
  });
});
