export interface RetryPolicy {
  /** Attempts in all, the first one included (with flow control: attempts not answered 429). */
  maxAttempts: number;
  /**
   * With flow control, attempts answered 429 count here instead: the flow control paces their retries and a
   * 429 means the request was not processed, so more of them fit the call's time budget without harm.
   */
  maxRateLimitedAttempts: number;
  /** Wall-clock budget for one call, retries and waits included. */
  maxElapsedMs: number;
  /** Timeout of one HTTP attempt (clipped to what is left of the budget). */
  attemptTimeoutMs: number;
  /** Exponential backoff: the cap for attempt n is min(maxDelayMs, baseDelayMs * 2^(n-1)), full jitter below it. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Longest Retry-After honoured; a longer one is cut to this. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 4,
  maxRateLimitedAttempts: 10,
  maxElapsedMs: 30_000,
  attemptTimeoutMs: 10_000,
  baseDelayMs: 300,
  maxDelayMs: 5_000,
  maxRetryAfterMs: 10_000,
};

/** Statuses worth trying again: request timeout, rate limit, server errors (Scale's own client retries 500-530). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/** Full jitter: a uniform wait between 0 and the exponential cap for this attempt (1-based). */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * cap);
}

/** Retry-After as delta-seconds or an HTTP date, in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
