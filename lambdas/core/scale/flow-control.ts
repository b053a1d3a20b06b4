/**
 * Client-side flow control for Scale's API, which rate-limits with 429 and publishes no figure: each function
 * instance finds the rate it may send at from the 429s it gets, and keeps to it.
 *
 * - Unlimited until the first 429, so that without a limit throughput is bounded by the event source's
 *   concurrency, never by this.
 * - The first 429 sets the rate to what Scale accepted from this instance over the last second: its share of the
 *   limit, however many instances share it. Later 429s take one request per second off; one that comes after the
 *   rate has more than doubled since the last decrease (a long quiet spell) takes it down to the share again.
 *   Only one decrease per round trip: the 429s of requests sent before the last decrease met the same overload.
 * - Between 429s the rate grows, slowly at first and faster the longer no 429 comes (the growth doubles every
 *   `doublingSeconds`): a limit that rose is found again, and a long quiet spell ends in unlimited sending. The
 *   lower an instance's rate, the faster it grows: instances crowded out at the start catch up, and the probe that
 *   finds the limit again (a 429, which holds the instance back for Retry-After) costs a slow instance little.
 * - Rates of a request per second or more are kept as whole requests per second: at most that many in any second
 *   (plus a margin for how much the time in transit varies, as Scale counts arrivals). A rate with a fraction
 *   fills a per-second window unevenly (⌈r⌉ requests in one second, ⌊r⌋ in the next) and the uneven seconds of
 *   several instances add up to 429s below the limit.
 * - An instance at one request per second or less whose 429 comes with nothing of its own accepted in the last
 *   second does not go lower: the other instances hold the limit, and backing off would starve this one (and the
 *   messages it holds) while contending makes the others meet the 429s that bring them down.
 * - Retry-After holds back every request of the instance until it has passed.
 * - A turn that would come after the caller's latest start is not waited for: the caller is told at once, so the
 *   message goes back to the queue rather than time out the function.
 *
 * The state is per instance (module level in a handler), as a warm Lambda instance keeps it between invocations.
 * Requests of one instance get their turns in the order they asked.
 */

export interface FlowClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const SYSTEM_CLOCK: FlowClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface FlowControlOptions {
  clock?: FlowClock;
  /** Lowest rate, requests per second. */
  minRate?: number;
  /** Growth of the rate right after a decrease from one request per second, requests per second per second. */
  initialGrowth?: number;
  /** The growth doubles every this many seconds without a decrease. */
  doublingSeconds?: number;
  /** Past this rate the instance sends unlimited again. */
  maxRate?: number;
  /** Largest margin added to the one-second window for jitter in transit. */
  maxMarginMs?: number;
}

/** A turn to send one request; give it back to `settle` with the answer. */
export interface Permit {
  readonly sentAt: number;
}
/** A refusal's `waitMs` (until the turn) is there only when Scale's rate limit is what put the turn past the latest start. */
export type Turn = { ok: true; permit: Permit } | { ok: false; waitMs?: number; reason: string };

export interface FlowAnswer {
  /** The request was refused with 429. */
  rateLimited: boolean;
  /** Retry-After of that 429, in ms. */
  retryAfterMs?: number;
}

export interface FlowState {
  /** Requests per second allowed now; null while unlimited. */
  rate: number | null;
  /** Epoch ms until which Retry-After holds every request back (0: never). */
  pausedUntil: number;
  /** Requests waiting for their turn. */
  waiting: number;
  /** 429s that lowered the rate, and every 429 seen. */
  decreases: number;
  rateLimited: number;
}

/**
 * What a Scale client paces its requests with: this instance's own flow control, or the rate shared by every
 * instance (shared-flow-control.ts). Every permit `acquire` gives goes back to `settle` with its answer.
 */
export interface RequestPacer {
  acquire(latestStart: number): Promise<Turn>;
  settle(permit: Permit, answer: FlowAnswer): void;
  state(): FlowState;
}

/** The window a limit is counted over, by assumption a second (the usual unit of API rate limits). */
const WINDOW_MS = 1_000;
/** Round trips remembered for the jitter margin. */
const ROUND_TRIPS_KEPT = 64;
/** Below two requests per second a 429 multiplies the rate by this (one request less would halve it or worse). */
const DECREASE_BELOW_TWO = 0.75;

export class FlowControl implements RequestPacer {
  private readonly clock: FlowClock;
  private readonly minRate: number;
  private readonly initialGrowth: number;
  private readonly doublingSeconds: number;
  private readonly maxRate: number;
  private readonly maxMarginMs: number;
  /** Rate set by the last decrease (Infinity: never limited), when, and how fast it grows from there. */
  private base = Infinity;
  private lastDecreaseAt = -Infinity;
  private growthFrom = -Infinity;
  private growth: number;
  /** The share the last share-based decrease counted (late answers add to it), when, and the most it may reach. */
  private shareCounted = 0;
  private shareCountedAt = NaN;
  private shareCeiling = Infinity;
  private pausedUntil = 0;
  private lastRetryAfterMs: number | undefined;
  /** This instance's recent sends (the newest always kept, for spacing) and Scale's acceptances of the last window. */
  private readonly sent: number[] = [];
  private readonly accepted: number[] = [];
  private readonly roundTrips: number[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private decreases = 0;
  private rateLimited = 0;

  constructor(options: FlowControlOptions = {}) {
    this.clock = options.clock ?? SYSTEM_CLOCK;
    this.minRate = options.minRate ?? 0.1;
    this.initialGrowth = options.initialGrowth ?? 0.02;
    this.growth = this.initialGrowth;
    this.doublingSeconds = options.doublingSeconds ?? 20;
    this.maxRate = options.maxRate ?? 1_000;
    this.maxMarginMs = options.maxMarginMs ?? 50;
  }

  /** Requests per second allowed at `now`; Infinity while unlimited. */
  rateAt(now: number): number {
    if (!Number.isFinite(this.base)) return Infinity;
    const t = Math.max(0, now - this.growthFrom) / 1000;
    // The integral since the decrease of growth × 2^(t / doublingSeconds).
    const grown = ((this.growth * this.doublingSeconds) / Math.LN2) * (2 ** (t / this.doublingSeconds) - 1);
    const rate = this.base + grown;
    return rate > this.maxRate ? Infinity : rate;
  }

  state(): FlowState {
    const rate = this.rateAt(this.clock.now());
    return { rate: Number.isFinite(rate) ? rate : null, pausedUntil: this.pausedUntil, waiting: this.waiting, decreases: this.decreases, rateLimited: this.rateLimited };
  }

  /**
   * Waits for this request's turn: after every request that asked before it, after Retry-After, within the rate.
   * Answers `ok: false` as soon as the turn would come after `latestStart` (epoch ms).
   */
  acquire(latestStart: number): Promise<Turn> {
    this.waiting++;
    const turn = this.queue.then(() => this.waitForTurn(latestStart));
    // The next request waits for this one's turn only, whatever its outcome.
    this.queue = turn.catch(() => undefined);
    return turn.finally(() => this.waiting--);
  }

  /**
   * Keeps to at most `rate` requests per second from now, growing from there as after a 429: for an instance that
   * takes over a limit learnt elsewhere (the shared rate, while its store is out of reach), so that it does not
   * start unlimited into a limit already known. A lower rate of its own stays.
   */
  limitTo(rate: number): this {
    const now = this.clock.now();
    if (this.rateAt(now) <= rate) return this;
    this.restartGrowth(Math.max(this.minRate, rate), now);
    // The requests sent before met whatever limit this one stands for: their 429s are not news.
    this.lastDecreaseAt = now;
    return this;
  }

  /** Takes the answer to a request sent with `permit`. */
  settle(permit: Permit, answer: FlowAnswer): void {
    const now = this.clock.now();
    this.forgetOld(now);
    this.roundTrips.push(now - permit.sentAt);
    if (this.roundTrips.length > ROUND_TRIPS_KEPT) this.roundTrips.shift();
    if (!answer.rateLimited) {
      this.accepted.push(now);
      // An answer still on its way when a 429 set the rate to the share belongs to that share.
      if (this.shareCountedAt === this.lastDecreaseAt && permit.sentAt <= this.lastDecreaseAt && now - this.lastDecreaseAt < WINDOW_MS) {
        this.shareCounted++;
        this.base = Math.max(1, Math.min(this.shareCeiling, this.shareCounted));
        this.growth = this.initialGrowth / this.base;
      }
      return;
    }
    this.rateLimited++;
    // The share is measured where this instance sent freely: not across its last Retry-After pause.
    const measuredFrom = Math.max(now - WINDOW_MS, this.pausedUntil);
    if (answer.retryAfterMs !== undefined) {
      this.lastRetryAfterMs = answer.retryAfterMs;
      this.pausedUntil = Math.max(this.pausedUntil, now + answer.retryAfterMs);
    }
    // Sent before the last decrease (or as it happened): the same overload, seen late.
    if (permit.sentAt <= this.lastDecreaseAt) return;
    const current = this.rateAt(now);
    // Acceptances of the last window, which is a second: requests per second.
    const share = this.accepted.length;
    // The share is the measure when the rate is not one Scale has accepted: unlimited, or more than doubled since.
    const byShare = !Number.isFinite(current) || (current >= 2 && current > 2 * this.base);
    if (byShare) {
      this.shareCounted = share;
      this.shareCountedAt = now;
      this.shareCeiling = Number.isFinite(current) ? Math.floor(current) - 1 : Infinity;
      this.restartGrowth(Math.max(1, Math.min(this.shareCeiling, share)), now);
    } else if (current >= 2) this.restartGrowth(Math.max(1, Math.min(Math.floor(current) - 1, this.busyShare(measuredFrom, now, current))), now);
    else if (share === 0) this.restartGrowth(Math.min(current, 1), now);
    else this.restartGrowth(Math.max(this.minRate, current * DECREASE_BELOW_TWO), now);
    this.lastDecreaseAt = now;
    this.decreases++;
  }

  /**
   * Requests per second Scale accepted from this instance since `from`, if it was sending at its full rate then
   * (at least half a second, and as many sends as the rate allows): the share it can keep. Infinity otherwise —
   * an instance between batches, or just back from a pause, has not measured anything.
   */
  private busyShare(from: number, now: number, rate: number): number {
    const seconds = (now - from) / 1000;
    if (seconds < 0.5) return Infinity;
    const sent = this.sent.filter((t) => t > from).length;
    if (sent < Math.floor(rate) * seconds) return Infinity;
    return Math.floor(this.accepted.filter((t) => t > from).length / seconds);
  }

  private restartGrowth(base: number, now: number): void {
    this.base = base;
    this.growthFrom = now;
    this.growth = this.initialGrowth / Math.max(1, base);
  }

  /** Epoch ms of the earliest moment the next request may be sent. */
  private earliestSend(now: number): number {
    const rate = this.rateAt(now);
    if (!Number.isFinite(rate)) return this.pausedUntil;
    const last = this.sent.at(-1) ?? -Infinity;
    if (rate < 1) return Math.max(this.pausedUntil, last + 1000 / rate);
    const perWindow = Math.floor(rate);
    const window = WINDOW_MS + this.margin();
    // At most perWindow sends in any window, and none closer together than half their even spacing.
    const windowFree = this.sent.length < perWindow ? -Infinity : this.sent[this.sent.length - perWindow]! + window;
    return Math.max(this.pausedUntil, windowFree, last + window / perWindow / 2);
  }

  /** Scale counts requests as they arrive: a margin for how much their time in transit varies (from round trips). */
  private margin(): number {
    if (this.roundTrips.length < 2) return this.maxMarginMs;
    const spread = Math.max(...this.roundTrips) - Math.min(...this.roundTrips);
    return Math.min(this.maxMarginMs, Math.max(2, 1.25 * spread));
  }

  private async waitForTurn(latestStart: number): Promise<Turn> {
    for (;;) {
      const now = this.clock.now();
      this.forgetOld(now);
      const at = this.earliestSend(now);
      if (Math.max(at, now) > latestStart) return { ok: false, reason: this.why(at, now, latestStart), ...(at > Math.max(now, latestStart) ? { waitMs: Math.ceil(at - now) } : {}) };
      if (at <= now) {
        this.sent.push(now);
        return { ok: true, permit: { sentAt: now } };
      }
      // A 429 may come meanwhile and move the turn: look again after the wait.
      await this.clock.sleep(at - now);
    }
  }

  private why(at: number, now: number, latestStart: number): string {
    // Asked for after its latest start, with its turn due already: only the deadline stands in the way.
    if (at <= Math.max(now, latestStart)) return 'not sent: its latest start had passed before it asked for a turn';
    const rate = this.rateAt(now);
    // A Retry-After is named only while it still holds the turn back.
    const paused = at === this.pausedUntil && this.lastRetryAfterMs !== undefined ? `Retry-After ${this.lastRetryAfterMs} ms` : undefined;
    const pace = Number.isFinite(rate) ? `${rate < 1 ? rate.toFixed(2) : Math.floor(rate)} requests/s` : undefined;
    const details = ['429', paused, pace].filter(Boolean).join(', ');
    return `not sent: Scale's rate limit (${details}) gives this request its turn in ${Math.ceil(at - now)} ms, after the deadline`;
  }

  private forgetOld(now: number): void {
    while (this.sent.length > 1 && this.sent[0]! <= now - WINDOW_MS - this.maxMarginMs) this.sent.shift();
    while (this.accepted.length > 0 && this.accepted[0]! <= now - WINDOW_MS) this.accepted.shift();
  }
}
