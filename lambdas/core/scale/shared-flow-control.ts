import { randomUUID } from 'node:crypto';
import { AnswerLog } from './answer-log.js';
import { FlowControl, SYSTEM_CLOCK, type FlowAnswer, type FlowClock, type FlowState, type Permit, type RequestPacer, type Turn } from './flow-control.js';
import { decrease, HORIZON_MS, LEAD_MS, MAX_AHEAD_MS, rateAt, ticketGap, ticketsPerTake, toMicros, UNLIMITED, WINDOW_MS, type RateState, type SentUnder } from './rate-rules.js';
import { within, type RateStore } from './rate-store.js';
import { TicketWaiters, type TicketOutcome } from './ticket-waiters.js';

/**
 * One Scale rate for every create-task instance (the rules: rate-rules.ts), with FlowControl's contract: a turn
 * per request, refused at once when it would come after the caller's latest start; every permit settled with its
 * answer.
 *
 * - Unlimited, without a store write, until a 429 is known: the state is read at the first request (an instance
 *   joining a limited burst keeps to the rate from its first request), and again at most once a second while it
 *   sends, not waited for (so it hears of a limit another instance met).
 * - Limited: one write at a time per instance takes tickets for as many waiting requests as HORIZON_MS holds;
 *   each request is sent when its ticket is due.
 * - A 429: while unlimited, Retry-After holds back the whole instance (with tickets the schedule does); the first
 *   429 of an epoch writes the decrease. Every instance that hears of a discovery adds its share once.
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
type Issued = { kind: 'shared'; epoch: number; rate: number } | { kind: 'local'; flow: FlowControl };

const BEFORE_FIRST_READ: RateState = { ...UNLIMITED, version: -1 };
/** How often an instance looks whether the answers its share waits for are in. */
const SHARE_POLL_MS = 10;
/** While unlimited and sending, the state is read again at most this often: a limit another instance met is heard of. */
const REFRESH_MS = 1_000;

export class SharedFlowControl implements RequestPacer {
  readonly instanceId: string;
  private readonly clock: FlowClock;
  private readonly storeTimeoutMs: number;
  private readonly fallbackMs: number;
  private readonly maxMarginMs: number;
  /** The newest state seen (the version rules); before the first read, older than any. */
  private known: RateState = BEFORE_FIRST_READ;
  private started: Promise<boolean> | undefined;
  private readAt = -Infinity;
  private fallback: { flow: FlowControl; until: number } | undefined;
  private pausedUntil = 0;
  private lastPause: { retryAfterMs: number | undefined; pauseMs: number } | undefined;
  /** The last epoch this instance wrote a 429 for: one write per overload, however many of its requests met it. */
  private reactedTo = -1;
  private reportedIn = -1;
  private readonly waiters: TicketWaiters;
  private taking = false;
  private readonly issued = new WeakMap<Permit, Issued>();
  private readonly answers: AnswerLog;
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
    this.answers = new AnswerLog(this.maxMarginMs);
    this.waiters = new TicketWaiters(this.clock, (at) => this.refusal(at, this.clock.now()));
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
    this.answers.answered(permit, !answer.rateLimited, now);
    if (issued.kind === 'local') return issued.flow.settle(permit, answer);
    if (!answer.rateLimited) return;
    this.rateLimited++;
    // A window at least is what Scale's count needs to empty (and a discovery's shares, to come in), whatever a
    // Retry-After of 0 says.
    const pauseMs = Math.max(answer.retryAfterMs ?? 0, WINDOW_MS);
    // Unlimited, nothing else holds the instance back until the decrease is written and read (the longest pause wins).
    const pause = issued.rate === Infinity && now + pauseMs >= this.pausedUntil ? { retryAfterMs: answer.retryAfterMs, pauseMs } : undefined;
    if (pause) [this.pausedUntil, this.lastPause] = [now + pauseMs, pause];
    if (issued.epoch > this.reactedTo) {
      this.reactedTo = issued.epoch;
      void this.react({ sentAt: permit.sentAt, epoch: issued.epoch, rate: issued.rate }, now, pauseMs);
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
      if (this.fallback && now >= this.fallback.until) this.startOver();
      if (now > latestStart) return { ok: false, reason: 'not sent: its latest start had passed before it asked for a turn' };
      // A Retry-After met unlimited holds the instance until the decrease it caused is known: the schedule has it then.
      if (this.pausedUntil > now && (this.fallback || rateAt(this.known, now) === Infinity)) {
        if (this.pausedUntil > latestStart) return this.refusal(this.pausedUntil, now);
        await this.clock.sleep(this.pausedUntil - now);
        continue;
      }
      if (this.fallback) return this.localTurn(this.fallback.flow, latestStart);
      // The first read may take up to storeTimeoutMs: the latest start is looked at again after it.
      if (!(await this.start()) || this.clock.now() > latestStart) continue;
      if (this.fellBackFromSchedule()) continue;
      const rate = rateAt(this.known, this.clock.now());
      if (rate === Infinity) {
        // Not waited for: a read costs no write, and nothing waits on it while no limit is known.
        if (this.clock.now() - this.readAt >= REFRESH_MS) void this.read();
        return this.grant({ kind: 'shared', epoch: this.known.epoch, rate });
      }
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
    this.started ??= this.read();
    return this.started;
  }

  private async read(): Promise<boolean> {
    this.readAt = this.clock.now();
    const state = await this.storeCall((signal) => this.store.read(signal));
    if (state) this.learn(state);
    return state !== undefined;
  }

  private grant(issued: Issued): Turn {
    const permit: Permit = { sentAt: this.clock.now() };
    this.issued.set(permit, issued);
    // Unlimited requests may be what a discovery counts: its share waits for their answers.
    if (issued.kind === 'shared' && issued.rate === Infinity) this.answers.sent(permit);
    return { ok: true, permit };
  }

  private async localTurn(flow: FlowControl, latestStart: number): Promise<Turn> {
    const turn = await flow.acquire(latestStart);
    if (turn.ok) this.issued.set(turn.permit, { kind: 'local', flow });
    return turn;
  }

  /** Waits for a ticket (refused at once, or at `latestStart`, if it cannot come by then); 'again': ask anew. */
  private ticket(latestStart: number): Promise<TicketOutcome> {
    const outcome = this.waiters.wait(latestStart, (position) => this.expectedSendAt(position));
    if (!this.taking) void this.take();
    return outcome;
  }

  /** When the waiter at `position` would be sent, by the schedule known now. */
  private expectedSendAt(position: number): number {
    const now = this.clock.now();
    const rate = rateAt(this.known, now);
    if (rate === Infinity) return now;
    return Math.max(this.known.tat, now + LEAD_MS) + Math.max(0, position) * ticketGap(rate, this.answers.margin());
  }

  /** One write at a time per instance, for as many waiting requests as the horizon holds at the rate. */
  private async take(): Promise<void> {
    this.taking = true;
    try {
      while (this.waiters.length > 0 && !this.fallback) {
        const now = this.clock.now();
        const rate = rateAt(this.known, now);
        if (rate === Infinity) return this.waiters.releaseAll();
        if (this.fellBackFromSchedule()) return;
        const early = this.known.tat - HORIZON_MS - now;
        if (early > 0) {
          await this.clock.sleep(early);
          continue;
        }
        const seen = this.known;
        const request = { earliest: toMicros(now + LEAD_MS), seen, rate, gapMs: ticketGap(rate, this.answers.margin()), count: ticketsPerTake(rate, this.waiters.length) };
        const answer = await this.storeCall((signal) => this.store.takeTickets(request, signal));
        if (!answer) return;
        // Refused on the very state it was asked under: the item is not one this code wrote.
        if (answer.tickets.length === 0 && answer.state.version === seen.version) return this.fallBack(new Error('the rate store refused tickets on the state it holds'));
        this.learn(answer.state, seen);
        for (const ticket of answer.tickets) this.waiters.deliver(ticket);
      }
    } finally {
      this.taking = false;
    }
  }

  private async react(sent: SentUnder, now: number, pauseMs: number): Promise<void> {
    // A lost race is one re-read away from settled: a few attempts bound it.
    for (let attempt = 0; attempt < 3 && !this.fallback; attempt++) {
      const seen = this.known;
      // Another instance lowered the rate for this overload already (a discovery it opened has this one's share: learn).
      if (sent.epoch < seen.epoch) return;
      // The margin covers the instances' clocks at the seam of a pause too.
      const next = decrease(seen, sent, now, pauseMs + this.answers.margin());
      const answer = await this.storeCall((signal) => this.store.lowerRate(seen, next, signal));
      if (!answer) return;
      this.learn(answer.state, seen);
      if (answer.ok) return void this.decreases++;
    }
  }

  /**
   * Adds what Scale accepted of this instance's requests sent in the second before the discovery's refused one, once
   * their answers are in (a 429 comes back sooner than a created task), or when the fleet resumes, whichever is first.
   * Once per discovery, whoever opened it: every instance that sent in that second has a share of the limit.
   */
  private async reportShare(discovery: RateState): Promise<void> {
    while (this.answers.unansweredUntil(discovery.changedAt) > 0 && this.clock.now() < discovery.tat) await this.clock.sleep(SHARE_POLL_MS);
    const share = this.answers.acceptedIn(discovery.changedAt);
    if (share === 0) return;
    const state = await this.storeCall((signal) => this.store.reportShare(discovery.epoch, this.instanceId, share, signal));
    if (state) this.learn(state, discovery);
  }

  /** One store request, bounded by storeTimeoutMs; undefined when it failed (the fallback has begun). */
  private storeCall<T>(request: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
    return within(this.clock, this.storeTimeoutMs, request).catch((err: unknown) => void this.fallBack(err));
  }

  /** Falls back when the schedule is further ahead than any pause can put it (MAX_AHEAD_MS): nothing would be sent. */
  private fellBackFromSchedule(): boolean {
    const ahead = this.known.tat - this.clock.now();
    if (!(ahead > MAX_AHEAD_MS)) return false;
    const why = `the rate item's schedule is ${Math.round(ahead / 1000)} s ahead of this instance's clock, further than any pause puts it: written by a clock that is ahead, or by hand (deleting the item resets the shared rate)`;
    this.fallBack(new Error(why));
    return true;
  }

  private fallBack(error: unknown): void {
    if (this.fallback) return;
    const now = this.clock.now();
    const flow = new FlowControl({ clock: this.clock, maxMarginMs: this.maxMarginMs });
    const known = rateAt(this.known, now);
    // Its share of the limit known (at least a request a second): the others keep theirs, and FlowControl grows from it.
    if (Number.isFinite(known)) flow.limitTo(Math.max(1, Math.min(known, this.answers.acceptedIn(now))));
    this.fallback = { flow, until: now + this.fallbackMs };
    this.options.onFallback?.(error);
    this.waiters.releaseAll();
  }

  /**
   * Keeps the newest state seen (answers cross: a read sent before a write may come back after it). `after`: the
   * state a write was asked under, `state` being the store's answer to it, read once the write was done or refused:
   * an older version than `after` can then only mean that the item was deleted (or replaced) since, so the store's
   * state is taken as it is, and the epochs start over.
   */
  private learn(state: RateState, after?: RateState): void {
    const reset = after !== undefined && state.version < after.version;
    if (state.version < this.known.version && !reset) return;
    if (reset) this.startOver();
    this.known = state;
    if (state.discovering && state.epoch > this.reportedIn && !state.reporters.includes(this.instanceId)) {
      this.reportedIn = state.epoch;
      void this.reportShare(state);
    }
  }

  /** After a fallback, or when the item was deleted: the next state read is taken as it is, its epochs as new. */
  private startOver(): void {
    [this.fallback, this.started, this.known, this.reactedTo, this.reportedIn] = [undefined, undefined, BEFORE_FIRST_READ, -1, -1];
  }

  private refusal(at: number, now: number): Turn {
    const rate = rateAt(this.known, now);
    const paused = at === this.pausedUntil && this.lastPause ? pauseText(this.lastPause) : undefined;
    const pace = Number.isFinite(rate) ? `${rate} requests/s shared by every instance` : undefined;
    const details = ['429', paused, pace].filter(Boolean).join(', ');
    const waitMs = Math.ceil(Math.max(0, at - now));
    return { ok: false, waitMs, reason: `not sent: Scale's rate limit (${details}) gives this request its turn in ${waitMs} ms, after the deadline` };
  }
}

/** What holds the instance back after a 429: Scale's Retry-After, or the window it was lengthened to. */
function pauseText({ retryAfterMs, pauseMs }: { retryAfterMs: number | undefined; pauseMs: number }): string {
  if (retryAfterMs === pauseMs) return `Retry-After ${retryAfterMs} ms`;
  const asked = retryAfterMs === undefined ? 'no Retry-After' : `Retry-After ${retryAfterMs} ms`;
  return `${asked}, held ${pauseMs} ms for Scale's window to empty`;
}
