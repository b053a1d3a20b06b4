import { ScaleApiError } from '../scale/errors.js';

/** How long a change may wait in the queue before its waits count as failed deliveries. */
export const QUEUE_WAIT_LIMIT_MS = 24 * 60 * 60 * 1000;
/**
 * The longest delay (SQS allows 900 s): under the reconciler's shortest threshold for an upload stuck in
 * 'submitting' (5 minutes), so that an upload waiting in the queue is back, and its record updated, before the
 * reconciler could take it for stuck and send a second copy — unless the queue itself is backlogged that long.
 */
const MAX_DELAY_SECONDS = 240;
/** A change's time a little ahead of this function's clock is still a change of now. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

/** Sends a message body back to the queue it came from, to be delivered after `delaySeconds`. */
export interface MessageRequeue {
  send(body: string, delaySeconds: number, signal: AbortSignal): Promise<void>;
}

/** A change that cannot be handled yet, and may be in about `retryInMs`: e.g. a delete of an upload still being submitted. */
export class NotYetError extends Error {
  override readonly name = 'NotYetError';
  constructor(
    message: string,
    readonly retryInMs: number,
  ) {
    super(message);
  }
}

/** What a change waits for in the queue: its turn at Scale's rate limit, or something else to happen first. */
export function waitingFor(err: unknown): 'scale_rate_limit' | 'another_change' | undefined {
  if (err instanceof ScaleApiError && err.retryInMs !== undefined) return 'scale_rate_limit';
  return err instanceof NotYetError ? 'another_change' : undefined;
}

/**
 * When a change failed only because it has to wait (see waitingFor): the delay (s) to send its message back to the
 * queue with. A wait is not a failed delivery: a backlog larger than Scale's limit serves within one invocation would
 * otherwise wait out the visibility timeout, each wait counted towards the dead-letter queue.
 *
 * The delay is at least the wait the error names, and at least a random share of the time the change has already
 * waited since its S3 event: the error knows only this instance's queue, not the changes other instances sent back,
 * so a backlog that has lasted is taken to last, and the copies spread out rather than come back together.
 *
 * Undefined for any other failure, and once the change has waited a day (or its time is unreadable): then the usual
 * retries and the dead-letter queue apply, so no message goes round for ever.
 */
export function queueWaitSeconds(err: unknown, eventTime: string | undefined, now: number, random: () => number = Math.random): number | undefined {
  const waits = waitingFor(err);
  if (waits === undefined) return undefined;
  const retryInMs = (err as ScaleApiError | NotYetError).retryInMs!;
  const happenedAt = eventTime === undefined ? NaN : Date.parse(eventTime);
  if (!Number.isFinite(happenedAt) || happenedAt > now + CLOCK_SKEW_MS || now - happenedAt > QUEUE_WAIT_LIMIT_MS) return undefined;
  // Only the rate limit's backlog is unknown: another change is waited for as long as the error says.
  const waitedMs = waits === 'scale_rate_limit' ? Math.max(0, now - happenedAt) : 0;
  const seconds = Math.ceil(Math.max(retryInMs, waitedMs * random()) / 1000);
  return Number.isNaN(seconds) ? MAX_DELAY_SECONDS : Math.min(MAX_DELAY_SECONDS, Math.max(1, seconds));
}
