import { describe, expect, it } from 'vitest';
import { ScaleApiError, ScaleRequestInvalidError } from '../../../../lambdas/core/scale/errors.js';
import { backoffDelay, DEFAULT_RETRY_POLICY, isRetryableStatus, parseRetryAfter } from '../../../../lambdas/core/scale/retry.js';

describe('which statuses are worth another try', () => {
  it.each([408, 429, 500, 502, 503, 504, 530, 599])('%i is transient', (status) => {
    expect(isRetryableStatus(status)).toBe(true);
  });

  it.each([200, 400, 401, 402, 404, 407, 409, 428, 430, 499, 600])('%i is not', (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads whole seconds, around spaces too', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 3', now)).toBe(3_000);
    expect(parseRetryAfter('3 ', now)).toBe(3_000);
    expect(parseRetryAfter(' 3 ', now)).toBe(3_000);
  });

  it('reads an HTTP date as the time from now, never less than zero', () => {
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5_000);
    expect(parseRetryAfter(' Thu, 01 Jan 2026 00:01:00 GMT ', now)).toBe(60_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:59 GMT', now)).toBe(0);
  });

  it('measures an HTTP date from the current time when no time is given', () => {
    const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
    const ms = parseRetryAfter(inTenSeconds)!;
    // The header has whole seconds: between 9 and 10 s from now.
    expect(ms).toBeGreaterThan(8_000);
    expect(ms).toBeLessThanOrEqual(10_000);
  });

  it.each([null, '', '   ', 'soon', 'x5', '5x', '5 seconds'])('ignores %j', (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});

describe('backoff', () => {
  const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 100, maxDelayMs: 1_000 };

  it('draws below a ceiling that doubles from the base and stops at the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, () => 0.999))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelay(1, policy, () => 0)).toBe(0);
  });

  it('uses Math.random when no source is given, staying under the ceiling', () => {
    for (let i = 0; i < 50; i++) {
      const delay = backoffDelay(2, policy);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(200);
      expect(Number.isInteger(delay)).toBe(true);
    }
  });
});

describe('errors a caller sees', () => {
  it('names the operation and counts attempts in the message, with the details as fields', () => {
    const err = new ScaleApiError('503 Busy', { operation: 'get task', status: 503, scaleMessage: 'Busy', retryable: true, attempts: 2 });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('ScaleApiError');
    expect(err.message).toBe('Scale get task failed after 2 attempts: 503 Busy');
    expect(err).toMatchObject({ operation: 'get task', status: 503, scaleMessage: 'Busy', retryable: true, attempts: 2 });
    expect(new ScaleApiError('x', { operation: 'create task', retryable: false, attempts: 1 }).message).toBe('Scale create task failed after 1 attempt: x');
    expect(new ScaleApiError('x', { operation: 'list tasks', retryable: true, attempts: 0 }).message).toBe('Scale list tasks failed after 0 attempts: x');
  });

  it('lists a request’s problems in one line', () => {
    const err = new ScaleRequestInvalidError(['project: is required', 'tags: must hold at most 5 tags']);
    expect(err.name).toBe('ScaleRequestInvalidError');
    expect(err.message).toBe('invalid Scale task request: project: is required; tags: must hold at most 5 tags');
    expect(err.problems).toEqual(['project: is required', 'tags: must hold at most 5 tags']);
  });
});
