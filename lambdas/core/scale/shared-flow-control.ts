import { randomUUID } from 'node:crypto';
import { FlowControl, SYSTEM_CLOCK, type FlowAnswer, type FlowClock, type FlowState, type Permit, type RequestPacer, type Turn } from './flow-control.js';
import { decrease, HORIZON_MS, LEAD_MS, rateAt, ticketGap, ticketsPerTake, toMicros, UNLIMITED, WINDOW_MS, type RateState, type SentUnder, type Ticket } from './rate-rules.js';
import type { RateStore } from './rate-store.js';

/**
 * One Scale rate for every create-task instance (the rules: rate-rules.ts), with FlowControl's contract: a turn
 * per request, refused at once when it would come after the caller's latest start; every permit settled with its
 * answer.
 *
 * - Unlimited, without a store request, until a 429 is known: the state is read once, at the first request, so
 *   that an instance joining a limited burst keeps to the rate from its first request.
 * - Limited: one write at a time per instance takes tickets for as many waiting requests as HORIZON_MS holds;
 *   each request is sent when its ticket is due.
 * - A 429: while unlimited, Retry-After holds back the whole instance (with tickets the schedule does); the first
 *   429 of an epoch writes the decrease (or this instance's share, when another wrote it first).
 * - The store out of reach (an error, a throttle, no answer within `storeTimeoutMs`): the instance keeps to a
 *   FlowControl of its own for `fallbackMs`, limited to its share of the rate known (never unlimited into a known
 *   limit), then reads the store again.
 */

export interface SharedFlowControlOptions {
  clock?: FlowClock;
  /** This instance's name in the shared state: unique per instance (a random UUID by default). */
  instanceId?: string;
  /** Longest wait for one store request. */
  storeTimeoutMs?: number;
  /** How long the instance keeps to its own flow control once the store failed. */
  fallbackMs?: number;
  /** Largest margin added to the window for jitter in transit (as FlowControl's). */
  maxMarginMs?: number;
  /** Told each time the instance falls back, with the store's error: for logs. */
  onFallback?: (error: unknown) => void;
}

export interface SharedFlowState extends FlowState {
  /** False while the instance keeps to its own flow control (the store was out of reach). */
  shared: boolean;
}

/** What a permit was given under: a shared rate (or none), or the fallback's flow control. */
type Issued = ({ kind: 'shared' } & SentUnder) | { kind: 'local'; flow: FlowControl };
type Waiter = { latestStart: number; done: boolean; resolve: (outcome: Ticket | Turn | 'again') => void };

/** Round trips remembered for the jitter margin, and the margin before any is known. */
const ROUND_TRIPS_KEPT = 64;
const DEFAULT_MARGIN_MS = 2;
const TIMED_OUT = Symbol('timed out');

export class SharedFlowControl implements RequestPacer {
  readonly instanceId: string;
  private readonly clock: FlowClock;
  private readonly storeTimeoutMs: number;
  private readonly fallbackMs: number;
  private readonly maxMarginMs: number;
  /** The newest state seen (the version rules); before the first read, older than any. */
  private known: RateState = { ...UNLIMITED, version: -1 };
  private started: Promise<boolean> | undefined;
  private fallback: { flow: FlowControl; until: number } | undefined;
  private pausedUntil = 0;
  private lastRetryAfterMs: number | undefined;
  /** The last epoch this instance wrote a 429 for: one write per overload, however many of its requests met it. */
  private reactedTo = -1;
  private readonly waiters: Waiter[] = [];
  private taking = false;
  private readonly issued = new WeakMap<Permit, Issued>();
  private readonly accepted: number[] = [];
  private readonly roundTrips: number[] = [];
  private waiting = 0;
  private decreases = 0;
  private rateLimited = 0;

  constructor(
    private readonly store: RateStore,
    private readonly options: SharedFlowControlOptions = {},
  ) {
    this.clock = options.clock ?? SYSTEM_CLOCK;
    this.instanceId = options.instanceId ?? randomUUID();
    this.storeTimeoutMs = options.storeTimeoutMs ?? 1_000;
    this.fallbackMs = options.fallbackMs ?? 30_000;
    this.maxMarginMs = options.maxMarginMs ?? 50;
  }

  async acquire(latestStart: number): Promise<Turn> {
    this.waiting++;
    try {
      return await this.turn(latestStart);
    } finally {
      this.waiting--;
    }
  }

  settle(permit: Permit, answer: FlowAnswer): void {
    const issued = this.issued.get(permit);
    if (!issued) return;
    this.issued.delete(permit);
    const now = this.clock.now();
    const share = this.shareAt(now);
    if (!answer.rateLimited) {
      this.accepted.push(now);
      // Accepted answers only: a 429 comes back without the work a created task costs, and would widen the spread.
      this.roundTrips.push(now - permit.sentAt);
      if (this.roundTrips.length > ROUND_TRIPS_KEPT) this.roundTrips.shift();
    }
    if (issued.kind === 'local') return issued.flow.settle(permit, answer);
    if (!answer.rateLimited) return;
    this.rateLimited++;
    if (answer.retryAfterMs !== undefined) this.lastRetryAfterMs = answer.retryAfterMs;
    // Without a Retry-After, a window is what Scale's count needs to empty.
    const pauseMs = answer.retryAfterMs ?? WINDOW_MS;
    // Unlimited, nothing else holds the instance back until the decrease is written and read.
    if (issued.rate === Infinity) this.pausedUntil = Math.max(this.pausedUntil, now + pauseMs);
    if (issued.epoch > this.reactedTo) {
      this.reactedTo = issued.epoch;
      void this.react(issued, now, share, pauseMs);
    }
  }

  state(): SharedFlowState {
    const rate = this.fallback ? this.fallback.flow.state().rate : rateAt(this.known, this.clock.now());
    const counts = { pausedUntil: this.pausedUntil, waiting: this.waiting, decreases: this.decreases, rateLimited: this.rateLimited };
    return { rate: rate !== null && Number.isFinite(rate) ? rate : null, ...counts, shared: this.fallback === undefined };
  }

  private async turn(latestStart: number): Promise<Turn> {
    for (;;) {
      const now = this.clock.now();
      if (this.fallback && now >= this.fallback.until) [this.fallback, this.started] = [undefined, undefined];
      if (now > latestStart) return { ok: false, waitMs: 0, reason: 'not sent: its latest start had passed before it asked for a turn' };
      // A Retry-After met unlimited holds the instance until the decrease it caused is known: the schedule has it then.
      if (this.pausedUntil > now && (this.fallback || rateAt(this.known, now) === Infinity)) {
        if (this.pausedUntil > latestStart) return this.refusal(this.pausedUntil, now);
        await this.clock.sleep(this.pausedUntil - now);
        continue;
      }
      if (this.fallback) return this.localTurn(this.fallback.flow, latestStart);
      if (!(await this.start())) continue;
      const rate = rateAt(this.known, this.clock.now());
      if (rate === Infinity) return this.grant({ kind: 'shared', epoch: this.known.epoch, rate });
      const outcome = await this.ticket(latestStart);
      if (outcome === 'again') continue;
      if ('ok' in outcome) return outcome;
      const wait = outcome.sendAt - this.clock.now();
      if (wait > 0) await this.clock.sleep(wait);
      return this.grant({ kind: 'shared', epoch: outcome.epoch, rate: outcome.rate });
    }
  }

  /** The first read of the state (again after a fallback); false when it failed and the fallback began. */
  private start(): Promise<boolean> {
    this.started ??= this.storeCall((signal) => this.store.read(signal)).then((state) => state !== undefined && (this.learn(state), true));
    return this.started;
  }

  private grant(issued: Issued): Turn {
    const permit: Permit = { sentAt: this.clock.now() };
    this.issued.set(permit, issued);
    return { ok: true, permit };
  }

  private async localTurn(flow: FlowControl, latestStart: number): Promise<Turn> {
    const turn = await flow.acquire(latestStart);
    if (turn.ok) this.issued.set(turn.permit, { kind: 'local', flow });
    return turn;
  }

  /** Waits for a ticket (refused at once, or at `latestStart`, if it cannot come by then); 'again': ask anew. */
  private ticket(latestStart: number): Promise<Ticket | Turn | 'again'> {
    return new Promise((resolve) => {
      // Answered once: by a ticket, a refusal, or the timer at its latest start, whichever comes first.
      const waiter: Waiter = { latestStart, done: false, resolve: (outcome) => void (!waiter.done && ((waiter.done = true), resolve(outcome))) };
      this.waiters.push(waiter);
      const expected = this.expectedSendAt(this.waiters.length - 1);
      if (expected > latestStart) return this.refuseWaiter(waiter, expected);
      // However long the store takes, the caller hears by its latest start.
      if (Number.isFinite(latestStart)) void this.clock.sleep(latestStart - this.clock.now()).then(() => this.refuseWaiter(waiter, this.expectedSendAt(this.waiters.indexOf(waiter))));
      if (!this.taking) void this.take();
    });
  }

  /** When the waiter at `position` would be sent, by the schedule known now. */
  private expectedSendAt(position: number): number {
    const now = this.clock.now();
    const rate = rateAt(this.known, now);
    if (rate === Infinity) return now;
    return Math.max(this.known.tat, now + LEAD_MS) + Math.max(0, position) * ticketGap(rate, this.margin());
  }

  private refuseWaiter(waiter: Waiter, at: number): void {
    if (waiter.done) return;
    const i = this.waiters.indexOf(waiter);
    if (i >= 0) this.waiters.splice(i, 1);
    waiter.resolve(this.refusal(at, this.clock.now()));
  }

  /** One write at a time per instance, for as many waiting requests as the horizon holds at the rate. */
  private async take(): Promise<void> {
    this.taking = true;
    try {
      while (this.waiters.length > 0 && !this.fallback) {
        const now = this.clock.now();
        const rate = rateAt(this.known, now);
        if (rate === Infinity) return this.releaseWaiters();
        const early = this.known.tat - HORIZON_MS - now;
        if (early > 0) {
          await this.clock.sleep(early);
          continue;
        }
        const seen = this.known;
        const request = { earliest: toMicros(now + LEAD_MS), seen, rate, gapMs: ticketGap(rate, this.margin()), count: ticketsPerTake(rate, this.waiters.length) };
        const answer = await this.storeCall((signal) => this.store.takeTickets(request, signal));
        if (!answer) return;
        // Refused on the very state it was asked under: the item is not one this code wrote.
        if (answer.tickets.length === 0 && answer.state.version === seen.version) return this.fallBack(new Error('the rate store refused tickets on the state it holds'));
        this.learn(answer.state);
        for (const ticket of answer.tickets) this.deliver(ticket);
      }
    } finally {
      this.taking = false;
    }
  }

  /** A ticket to the first waiter that can use it; those it comes too late for are refused (later ones come later). */
  private deliver(ticket: Ticket): void {
    for (let waiter = this.waiters.shift(); waiter; waiter = this.waiters.shift()) {
      if (ticket.sendAt <= waiter.latestStart && !waiter.done) return waiter.resolve(ticket);
      waiter.resolve(this.refusal(ticket.sendAt, this.clock.now()));
    }
  }

  private releaseWaiters(): void {
    for (const waiter of this.waiters.splice(0)) waiter.resolve('again');
  }

  private async react(sent: SentUnder, now: number, share: number, pauseMs: number): Promise<void> {
    // A lost race is one re-read away from settled: a few attempts bound it.
    for (let attempt = 0; attempt < 3 && !this.fallback; attempt++) {
      const seen = this.known;
      if (sent.epoch < seen.epoch) {
        // Another instance lowered the rate for this overload already; a discovery still wants this one's share.
        const joins = seen.discovering && sent.rate === Infinity && share > 0 && now - seen.changedAt < pauseMs && !seen.reporters.includes(this.instanceId);
        const state = joins ? await this.storeCall((signal) => this.store.reportShare(seen.epoch, this.instanceId, share, signal)) : undefined;
        if (state) this.learn(state);
        return;
      }
      // The margin covers the instances' clocks at the seam of a pause too.
      const next = decrease(seen, sent, now, share, pauseMs + this.margin());
      const answer = await this.storeCall((signal) => this.store.lowerRate(seen, next, this.instanceId, signal));
      if (!answer) return;
      this.learn(answer.state);
      if (answer.ok) return void this.decreases++;
    }
  }

  /** One store request, bounded by storeTimeoutMs; undefined when it failed (the fallback has begun). */
  private async storeCall<T>(request: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
    const abort = new AbortController();
    const timeout = this.clock.sleep(this.storeTimeoutMs).then(() => TIMED_OUT);
    try {
      const answer = await Promise.race([request(abort.signal), timeout]);
      if (answer !== TIMED_OUT) return answer as T;
      abort.abort();
      throw new Error(`the rate store did not answer within ${this.storeTimeoutMs} ms`);
    } catch (err) {
      this.fallBack(err);
      return undefined;
    }
  }

  private fallBack(error: unknown): void {
    if (this.fallback) return;
    const now = this.clock.now();
    const flow = new FlowControl({ clock: this.clock, maxMarginMs: this.maxMarginMs });
    const known = rateAt(this.known, now);
    // Its share of the limit known (at least a request a second): the others keep theirs, and FlowControl grows from it.
    if (Number.isFinite(known)) flow.limitTo(Math.max(1, Math.min(known, this.shareAt(now))));
    this.fallback = { flow, until: now + this.fallbackMs };
    this.options.onFallback?.(error);
    this.releaseWaiters();
  }

  /** Requests Scale accepted from this instance in the last second. */
  private shareAt(now: number): number {
    while (this.accepted.length > 0 && this.accepted[0]! <= now - WINDOW_MS) this.accepted.shift();
    return this.accepted.length;
  }

  private learn(state: RateState): void {
    if (state.version >= this.known.version) this.known = state;
  }

  /** Scale counts requests as they arrive: a margin for how much their time in transit varies (from round trips). */
  private margin(): number {
    if (this.roundTrips.length < 2) return DEFAULT_MARGIN_MS;
    const spread = Math.max(...this.roundTrips) - Math.min(...this.roundTrips);
    return Math.min(this.maxMarginMs, Math.max(DEFAULT_MARGIN_MS, 1.25 * spread));
  }

  private refusal(at: number, now: number): Turn {
    const rate = rateAt(this.known, now);
    const paused = at === this.pausedUntil && this.lastRetryAfterMs !== undefined ? `Retry-After ${this.lastRetryAfterMs} ms` : undefined;
    const pace = Number.isFinite(rate) ? `${rate} requests/s shared by every instance` : undefined;
    const details = ['429', paused, pace].filter(Boolean).join(', ');
    const waitMs = Math.ceil(Math.max(0, at - now));
    return { ok: false, waitMs, reason: `not sent: Scale's rate limit (${details}) gives this request its turn in ${waitMs} ms, after the deadline` };
  }
}
