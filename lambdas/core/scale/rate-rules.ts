/**
 * The rules of one Scale rate shared by every create-task instance: pure functions of the shared state and the
 * time. Where the state lives: rate-store.ts; how an instance keeps to it: shared-flow-control.ts.
 *
 * - Unlimited (no ticket, no write) until a 429 is known, and again after QUIET_MS without tickets: the limit
 *   learnt is stale by then, and a burst without a limit must not wait for anything.
 * - Limited: requests go out on tickets from one schedule (`tat`, GCRA's theoretical arrival time: when the next
 *   ticket is due), evenly spaced at the rate, whichever instance sends them. An even schedule never fills Scale's
 *   one-second window unevenly, and no instance holds messages at a fraction of the limit while others are idle.
 * - The first 429 of a burst: Scale's window is full of what the instances sent, so each instance adds what Scale
 *   accepted of its requests sent in the second before the refused one (counted once their answers are in: a 429
 *   comes back faster than a created task); the shares add up to the limit.
 * - Growth is counted in tickets, not time: after PROBE_EVERY tickets at a rate that held, probes try higher
 *   (+1, +2, +4…, or halfway to the lowest rate refused since), a step each; a 429 to a probe falls back to the
 *   step before it, which held a whole window.
 * - A 429 at a rate that had held: jitter at the edge (one request less will do), or the limit fell; a second
 *   429 before the lower rate has held says it fell, by an unknown amount: halve, and pause the fleet for
 *   Retry-After so that Scale's window empties.
 * - Every decrease raises the epoch: 429s to requests sent under an older epoch met an overload already handled,
 *   so concurrent decreases never compound.
 */

/** The window a limit is counted over, by assumption a second (the usual unit of API rate limits). */
export const WINDOW_MS = 1_000;
/** A ticket is due at least this far ahead, so that it is back from the store (5–15 ms) before it is due. */
export const LEAD_MS = 20;
/** Tickets are taken at most this long before they are due (at the rate of their time): one write per span. */
export const HORIZON_MS = 50;
/** Tickets at a rate before probing higher (at most one failed probe, one 429, per so many), but no more than 20 s. */
export const PROBE_EVERY = 100;
const MAX_HOLD_S = 20;
/** A probe step lasts a window and the answer to its last request (counted in tickets due back to back). */
const STEP_MS = 1_200;
/** No ticket for this long: the limit learnt is stale; the next burst starts unlimited and learns it anew. */
export const QUIET_MS = 60_000;
/**
 * The schedule is never further ahead than the longest pause (a Retry-After, which the Scale client caps at 10 s,
 * and the margin) and a few tickets' gaps: further, the item was written by a clock far ahead, or by hand.
 */
export const MAX_AHEAD_MS = 15_000;
export const MIN_RATE = 1;
/** Past this rate probing ends in unlimited sending. */
export const MAX_RATE = 1_000;
/** After a 429 at a rate that had held, and another before the rate one lower has: the limit fell. */
const FALL_FACTOR = 0.5;

/** The shared state (one item); a store that has none answers UNLIMITED. Times are epoch ms of the instances' clocks. */
export interface RateState {
  /** Raised by each decrease: a 429 to a request sent under an older epoch met an overload already handled. */
  epoch: number;
  /** Requests/s that held a whole window (or the sum of the shares reported so far); null: never limited. */
  base: number | null;
  /** The lowest rate refused since: probes search below it before going past it. */
  ceiling: number | null;
  /** Tickets due back to back since the last decrease: the proof that a rate held. */
  issued: number;
  /** Of them, those before the first probe. */
  holdTickets: number;
  /** When the last decrease was made; for a discovery, when the refused request was sent (the shares' second ends there). */
  changedAt: number;
  /** When the next ticket is due. */
  tat: number;
  /** Set by a burst's first 429: each instance adds what Scale accepted from it in the last second. */
  discovering: boolean;
  /** Set by a 429 at a rate that had held: jitter, or the limit fell; another 429 soon says which. */
  suspect: boolean;
  /** Instances that reported their share in this epoch's discovery. */
  reporters: string[];
  /** Raised by every write: a reader keeps the newest copy it has seen. */
  version: number;
}

export const UNLIMITED: Readonly<RateState> = Object.freeze({
  epoch: 0,
  base: null,
  ceiling: null,
  issued: 0,
  holdTickets: 0,
  changedAt: -Infinity,
  tat: -Infinity,
  discovering: false,
  suspect: false,
  reporters: [],
  version: 0,
});

/** A turn to send at `sendAt`, under the shared rate `rate` of `epoch`. */
export interface Ticket {
  sendAt: number;
  rate: number;
  epoch: number;
}

/** What a request was sent under: when, the epoch it knew, and the rate (Infinity: unlimited, without a ticket). */
export interface SentUnder {
  sentAt: number;
  epoch: number;
  rate: number;
}

/** The fields a decrease writes, and when tickets resume (null: a ticket's gap after the current schedule). */
export type Decrease = Pick<RateState, 'ceiling' | 'holdTickets' | 'changedAt' | 'discovering' | 'suspect'> & { base: number; resumeAt: number | null };

/** The rates a probe tries, a step each: halfway to the ceiling while there is room below it, then +1, +2, +4… */
export function* probes(base: number, ceiling: number | null): Generator<number> {
  for (let rate = base, jump = 1; ; ) {
    const room = ceiling === null ? 0 : ceiling - 1 - rate;
    if (room > 0) rate += Math.ceil(room / 2);
    else [rate, jump] = [rate + jump, 2 * jump];
    yield rate;
  }
}

const baseOf = (s: RateState) => Math.max(MIN_RATE, s.base ?? 0);
/** Tickets one probe step takes at `rate`. */
export const stepTickets = (rate: number) => Math.ceil((rate * STEP_MS) / WINDOW_MS);
/** Tickets of this epoch due by `now`: those still ahead in the schedule have proven nothing yet. */
export const dueTickets = (s: RateState, now: number) => s.issued - Math.max(0, ((s.tat - now) * baseOf(s)) / WINDOW_MS);

/** Requests/s the shared state allows at `now`; Infinity: unlimited, no ticket. */
export function rateAt(s: RateState, now: number): number {
  if (s.base === null || now - s.tat > QUIET_MS) return Infinity;
  let left = dueTickets(s, now) - Math.min(s.holdTickets, baseOf(s) * MAX_HOLD_S);
  if (left < 0) return baseOf(s);
  for (const rate of probes(baseOf(s), s.ceiling)) {
    if (rate > MAX_RATE) return Infinity;
    left -= stepTickets(rate);
    if (left < 0) return rate;
  }
  return Infinity; // not reached: probes never end
}

/**
 * What a 429 to a request sent under `sent` makes of the shared state `s` (to be written only if `s` is still
 * current). `pauseMs`: how long the fleet waits when Scale's window must empty (Retry-After, and a margin for the
 * instances' clocks).
 */
export function decrease(s: RateState, sent: SentUnder, now: number, pauseMs: number): Decrease {
  const at = { changedAt: now, discovering: false, suspect: false };
  // The burst's first 429: Scale's window is full of what the instances sent; the shares they report while the fleet
  // waits (each of the second before the refused request was sent) add up to the limit.
  if (sent.rate === Infinity) return { ...at, base: 0, ceiling: null, holdTickets: PROBE_EVERY, changedAt: sent.sentAt, discovering: true, resumeAt: now + pauseMs };
  const base = baseOf(s);
  if (sent.rate > base) {
    // A probe failed: keep the step before it, which held a whole window, and search between the two.
    let kept = base;
    for (const rate of probes(base, s.ceiling)) {
      if (rate >= sent.rate) break;
      kept = rate;
    }
    return { ...at, base: kept, ceiling: sent.rate, holdTickets: sent.rate - kept > 1 ? 0 : PROBE_EVERY, resumeAt: null };
  }
  // Refused at a rate that had held: jitter at the edge (one request less will do), or the limit fell: then another
  // comes before the lower rate has held (the window stays overfull); all wait it out, prove a far lower rate, search up.
  if (!s.suspect || dueTickets(s, now) >= stepTickets(base)) {
    return { ...at, base: Math.max(MIN_RATE, base - 1), ceiling: base, holdTickets: PROBE_EVERY, suspect: true, resumeAt: null };
  }
  const lower = Math.max(MIN_RATE, Math.floor(base * FALL_FACTOR));
  return { ...at, base: lower, ceiling: base, holdTickets: stepTickets(lower), resumeAt: now + pauseMs };
}

/**
 * Times are kept to the microsecond, rounded up (a schedule a hair slow never fills a window a hair early), and the
 * schedule's arithmetic is done in whole microseconds: exact in a double and in DynamoDB's decimals alike, so a
 * condition on the schedule means the same in both.
 */
// (Less a nanosecond's fraction before rounding up: 50.1 × 1000 is 50100.00000000001 in a double.)
export const toMicros = (ms: number) => Math.ceil(ms * 1e3 - 1e-6) / 1e3;
/** A time kept to the microsecond (toMicros), as a whole number of microseconds. */
export const micros = (ms: number) => Math.round(ms * 1e3);

/**
 * The gap between two tickets at `rate`, with `marginMs` added to the window for jitter in transit — but never more
 * than a request's worth (WINDOW_MS / rate): past that, the margin costs more of the rate than the one request a
 * second a 429 from jitter takes off (decrease).
 */
export const ticketGap = (rate: number, marginMs: number) => toMicros((WINDOW_MS + Math.min(marginMs, WINDOW_MS / rate)) / rate);

/** Tickets one write takes for `waiting` requests: as many as HORIZON_MS holds at this rate, at least one. */
export const ticketsPerTake = (rate: number, waiting: number) => Math.min(waiting, Math.max(1, Math.floor((HORIZON_MS * rate) / WINDOW_MS)));

/** `count` tickets `gapMs` apart from `first` (both kept to the microsecond). */
export function ticketsFrom(first: number, count: number, gapMs: number, rate: number, epoch: number): Ticket[] {
  return Array.from({ length: count }, (_, i) => ({ sendAt: (micros(first) + i * micros(gapMs)) / 1e3, rate, epoch }));
}

/** Where `count` tickets `gapMs` apart from `first` leave the schedule. */
export const afterTickets = (first: number, count: number, gapMs: number) => (micros(first) + count * micros(gapMs)) / 1e3;
