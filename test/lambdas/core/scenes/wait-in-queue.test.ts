import { describe, expect, it } from 'vitest';
import { ScaleApiError } from '../../../../lambdas/core/scale/errors.js';
import { NotYetError, queueWaitSeconds, waitingFor } from '../../../../lambdas/core/scenes/wait-in-queue.js';

// Which failures send a change back to the queue to wait, and for how long.
const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const HOUR = 3_600_000;
const waitFor = (retryInMs: number | undefined, extra: { status?: number } = {}) =>
  new ScaleApiError('not sent', { operation: 'create task', retryable: true, attempts: 0, retryInMs, ...extra });
const happenedAgo = (ms: number) => new Date(NOW - ms).toISOString();
const noJitter = () => 0;

describe('queueWaitSeconds', () => {
  it("waits out the rate limit's turn, in whole seconds (at least one, at most 240, under the reconciler's 5 minutes)", () => {
    expect(queueWaitSeconds(waitFor(0), happenedAgo(0), NOW)).toBe(1);
    expect(queueWaitSeconds(waitFor(1), happenedAgo(0), NOW)).toBe(1);
    expect(queueWaitSeconds(waitFor(1_001), happenedAgo(0), NOW)).toBe(2);
    expect(queueWaitSeconds(waitFor(9_000, { status: 429 }), happenedAgo(HOUR), NOW, noJitter)).toBe(9);
    expect(queueWaitSeconds(waitFor(240_000), happenedAgo(0), NOW)).toBe(240);
    expect(queueWaitSeconds(waitFor(240_001), happenedAgo(0), NOW)).toBe(240);
    expect(queueWaitSeconds(waitFor(3_600_000), happenedAgo(0), NOW)).toBe(240);
    expect(queueWaitSeconds(waitFor(Infinity), happenedAgo(0), NOW)).toBe(240);
    expect(queueWaitSeconds(waitFor(NaN), happenedAgo(0), NOW)).toBe(240);
  });

  it('waits at least a random share of the time already waited, so that a long backlog comes round less often', () => {
    // Two minutes after the upload, with a turn 2 s away: between 2 s and 120 s, by the draw.
    expect(queueWaitSeconds(waitFor(2_000), happenedAgo(120_000), NOW, () => 0)).toBe(2);
    expect(queueWaitSeconds(waitFor(2_000), happenedAgo(120_000), NOW, () => 0.5)).toBe(60);
    expect(queueWaitSeconds(waitFor(2_000), happenedAgo(120_000), NOW, () => 0.999)).toBe(120);
    // Never past the longest delay, however long the wait so far.
    expect(queueWaitSeconds(waitFor(2_000), happenedAgo(20 * HOUR), NOW, () => 0.999)).toBe(240);
    // A time a little ahead of this clock waited nothing yet.
    expect(queueWaitSeconds(waitFor(2_000), happenedAgo(-60_000), NOW, () => 0.999)).toBe(2);
  });

  it('sends back a change that waits for another one, as long as the error says, however long it has waited', () => {
    const early = new NotYetError('upload u1 is still being submitted', 60_000);
    expect(waitingFor(early)).toBe('another_change');
    expect(queueWaitSeconds(early, happenedAgo(0), NOW, noJitter)).toBe(60);
    expect(queueWaitSeconds(early, happenedAgo(30 * 60_000), NOW, () => 0.999)).toBe(60);
  });

  it('leaves every other failure to the usual retries', () => {
    expect(waitingFor(waitFor(1_000))).toBe('scale_rate_limit');
    for (const err of [waitFor(undefined, { status: 503 }), new Error('not sent'), Object.assign(new Error('x'), { retryInMs: 1_000 }), undefined]) {
      expect(waitingFor(err)).toBeUndefined();
      expect(queueWaitSeconds(err, happenedAgo(0), NOW)).toBeUndefined();
    }
  });

  it('stops after a day of waiting, so that no message goes round for ever', () => {
    expect(queueWaitSeconds(waitFor(1_000), happenedAgo(24 * HOUR), NOW, noJitter)).toBe(1);
    expect(queueWaitSeconds(waitFor(1_000), happenedAgo(24 * HOUR + 1), NOW, noJitter)).toBeUndefined();
    expect(queueWaitSeconds(new NotYetError('not yet', 1_000), happenedAgo(24 * HOUR + 1), NOW, noJitter)).toBeUndefined();
  });

  it('does not trust a time it cannot read, or one far ahead of its clock', () => {
    expect(queueWaitSeconds(waitFor(1_000), undefined, NOW)).toBeUndefined();
    expect(queueWaitSeconds(waitFor(1_000), 'yesterday', NOW)).toBeUndefined();
    expect(queueWaitSeconds(waitFor(1_000), happenedAgo(-5 * 60_000), NOW)).toBe(1);
    expect(queueWaitSeconds(waitFor(1_000), happenedAgo(-5 * 60_000 - 1), NOW)).toBeUndefined();
    expect(queueWaitSeconds(waitFor(1_000), '9999-12-31T23:59:59Z', NOW)).toBeUndefined();
  });
});
