import type { Permit } from './flow-control.js';
import { WINDOW_MS } from './rate-rules.js';

/** Round trips remembered for the jitter margin, and the margin before any is known. */
const ROUND_TRIPS_KEPT = 64;
const DEFAULT_MARGIN_MS = 2;
/** How long acceptances are kept beyond their second: the longest Retry-After a client honours (RetryPolicy's). */
const KEPT_MS = 10_000;

/**
 * What one instance's requests met at Scale, as the shared rate needs it: how many of its requests sent in a given
 * second Scale accepted (its share of a limit being discovered), whether answers to requests sent by then are still
 * to come, and how much the round trips vary (the margin for jitter in transit). Bounded by time and count.
 */
export class AnswerLog {
  /** When each accepted request was sent, in about the order they were. */
  private accepted: number[] = [];
  private readonly unanswered = new Map<Permit, number>();
  private readonly roundTrips: number[] = [];

  constructor(private readonly maxMarginMs: number) {}

  sent(permit: Permit): void {
    this.unanswered.set(permit, permit.sentAt);
  }

  answered(permit: Permit, accepted: boolean, now: number): void {
    this.unanswered.delete(permit);
    // Answers arrive out of order by up to a round trip: the oldest go once well past what a discovery asks for.
    while (this.accepted.length > 0 && this.accepted[0]! <= now - WINDOW_MS - KEPT_MS) this.accepted.shift();
    if (!accepted) return;
    this.accepted.push(permit.sentAt);
    // Accepted answers only: a 429 comes back without the work a created task costs, and would widen the spread.
    this.roundTrips.push(now - permit.sentAt);
    if (this.roundTrips.length > ROUND_TRIPS_KEPT) this.roundTrips.shift();
  }

  /** Requests sent in the second up to `end` that Scale accepted. */
  acceptedIn(end: number): number {
    return this.accepted.filter((at) => at > end - WINDOW_MS && at <= end).length;
  }

  /** Requests sent by `end` whose answers are still to come (one the caller never settled is forgotten after KEPT_MS). */
  unansweredUntil(end: number): number {
    let count = 0;
    for (const [permit, sentAt] of this.unanswered) {
      if (sentAt < end - KEPT_MS) this.unanswered.delete(permit);
      else if (sentAt <= end) count++;
    }
    return count;
  }

  /** Scale counts requests as they arrive: a margin for how much their time in transit varies (from round trips). */
  margin(): number {
    if (this.roundTrips.length < 2) return Math.min(this.maxMarginMs, DEFAULT_MARGIN_MS);
    const spread = Math.max(...this.roundTrips) - Math.min(...this.roundTrips);
    return Math.min(this.maxMarginMs, Math.max(DEFAULT_MARGIN_MS, 1.25 * spread));
  }
}
