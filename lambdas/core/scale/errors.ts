/** A create request that breaks one of Scale's body rules; caught before anything is sent. */
export class ScaleRequestInvalidError extends Error {
  override readonly name = 'ScaleRequestInvalidError';
  constructor(readonly problems: string[]) {
    super(`invalid Scale task request: ${problems.join('; ')}`);
  }
}

export interface ScaleApiErrorDetails {
  operation: string;
  /** HTTP status, absent for network errors and timeouts. */
  status?: number;
  /** Scale's own `error` text, when it sent one. */
  scaleMessage?: string;
  /** True when trying again later may succeed (429, 5xx, timeouts, network); false for other 4xx. */
  retryable: boolean;
  attempts: number;
  /**
   * Set when only Scale's rate limit stood in the way (a turn the flow control gives after the deadline, or a
   * Retry-After past it): how long until a try may be made. Nothing of this call created a task.
   */
  retryInMs?: number;
}

/**
 * A call to Scale that did not succeed. Carries Scale's message and status, never the request's headers:
 * the API key cannot leak through it.
 */
export class ScaleApiError extends Error {
  override readonly name = 'ScaleApiError';
  readonly operation: string;
  readonly status?: number;
  readonly scaleMessage?: string;
  readonly retryable: boolean;
  readonly attempts: number;
  readonly retryInMs?: number;

  constructor(summary: string, details: ScaleApiErrorDetails) {
    const attempts = `${details.attempts} attempt${details.attempts === 1 ? '' : 's'}`;
    super(`Scale ${details.operation} failed after ${attempts}: ${summary}`);
    this.operation = details.operation;
    this.status = details.status;
    this.scaleMessage = details.scaleMessage;
    this.retryable = details.retryable;
    this.attempts = details.attempts;
    this.retryInMs = details.retryInMs;
  }
}
