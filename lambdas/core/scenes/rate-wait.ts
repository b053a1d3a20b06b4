import { ScaleApiError } from '../scale/errors.js';

/** How long an upload may wait for Scale's rate limit in the queue before its waits count as failed deliveries. */
export const RATE_WAIT_LIMIT_MS = 24 * 60 * 60 * 1000;
/** SQS's longest delay for one message. */
const MAX_DELAY_SECONDS = 900;
/** An upload's time a little ahead of this function's clock is still an upload of now. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

/** Sends a message body back to the queue it came from, to be delivered after `delaySeconds`. */
export interface MessageRequeue {
  send(body: string, delaySeconds: number): Promise<void>;
}

/**
 * When an upload failed only because Scale's rate limit gives it a turn after this invocation's deadline: the delay
 * (s) to send its message back to the queue with. A wait for a turn is not a failed delivery: a backlog larger than
 * the limit can serve within one invocation would otherwise wait out the visibility timeout, each wait counted
 * towards the dead-letter queue. Undefined for any other failure, and once the upload has waited a day (or its time is
 * unreadable): then the usual retries and the dead-letter queue apply, so no message goes round forever.
 */
export function rateWaitDelaySeconds(err: unknown, eventTime: string | undefined, now: number): number | undefined {
  if (!(err instanceof ScaleApiError) || err.retryInMs === undefined) return undefined;
  const uploadedAt = eventTime === undefined ? NaN : Date.parse(eventTime);
  if (!Number.isFinite(uploadedAt) || uploadedAt > now + CLOCK_SKEW_MS || now - uploadedAt > RATE_WAIT_LIMIT_MS) return undefined;
  const seconds = Math.ceil(err.retryInMs / 1000);
  return Number.isNaN(seconds) ? MAX_DELAY_SECONDS : Math.min(MAX_DELAY_SECONDS, Math.max(1, seconds));
}
