// npx tsx bench/shared-rate-model.ts: one rate shared by all create-task instances through a small table, on virtual
// time (today's per-instance flow control in the same setting: bench/flow-model.ts). Five instances (37 ms apart,
// batches of ten) send 1,000 requests through Scale's limit (a sliding one-second window, Retry-After 1 s); a store
// operation takes 5–15 ms (seeded), and writes to one item apply one after another, 1 ms each (1,000/s a partition).
// Prints, for the first candidate (per-second slot items) and the design kept (one item): seconds against the bound,
// the 429 share, the store operations, and the shared rate over the first 30 s.
import type { FlowClock } from '../lambdas/core/scale/flow-control.js';
import { SlidingWindowLimit, VirtualClock } from '../test/lambdas/core/scale/virtual-time.js';

const [INSTANCES, SLOTS, MESSAGES, ROUND_TRIP_MS, WINDOW_MS] = [5, 10, 1_000, 30, 1_000];
/** A ticket is due at least this far ahead, so that it is back from the store (5–15 ms) before it is due. */
const LEAD_MS = 20;
/** Tickets are taken at most this long before they are due (at the rate of their time); one write takes this span's. */
const HORIZON_MS = 50;
/** Tickets at a rate before probing higher (at most one failed probe, one 429, per so many), but no more than 20 s. */
const PROBE_EVERY = 100;
const MAX_HOLD_S = 20;
/** A probe step lasts a window and the answer to its last request (counted in tickets due back to back). */
const STEP_MS = 1_200;
/** No ticket for this long: the limit learnt is stale; the next burst starts unlimited and learns it anew. */
const QUIET_MS = 60_000;
const [MIN_RATE, MAX_RATE] = [1, 1_000];
/** After a 429 at a rate that had held, and another before the rate one lower has: the limit fell, by an unknown amount. */
const FALL_FACTOR = 0.5;

/** The shared item (key `rate`); absent = UNLIMITED. */
export interface RateState {
  epoch: number; // raised by each decrease: a 429 to a request sent under an older epoch met an overload already handled
  base: number | null; // requests/s that held a whole window (or the first 429's sum of shares); null: never limited
  ceiling: number | null; // the lowest rate refused since: probes search below it before going past it
  issued: number; // tickets due back to back since the decrease: the proof that a rate held
  holdTickets: number; // of them, those before the first probe
  changedAt: number;
  tat: number; // when the next ticket is due (GCRA's theoretical arrival time), epoch ms of the writers' clocks
  discovering: boolean; // set by a burst's first 429: each instance adds what Scale accepted from it in the last second
  suspect: boolean; // set by a 429 at a rate that had held: jitter, or the limit fell; another 429 soon says which
  reporters: string[];
  version: number; // raised by every write: a reader keeps the newest copy it has seen
}
const UNLIMITED: RateState = { epoch: 0, base: null, ceiling: null, issued: 0, holdTickets: 0, changedAt: -Infinity, tat: -Infinity, discovering: false, suspect: false, reporters: [], version: 0 };
export interface Ticket { sendAt: number; rate: number; epoch: number }
export type Decrease = Pick<RateState, 'ceiling' | 'holdTickets' | 'changedAt' | 'discovering' | 'suspect'> & { base: number; resumeAt: number | null };

/** The port a DynamoDB adapter would implement; each call is one request (UpdateItem, or GetItem for `read`). */
export interface RateStore {
  read(): Promise<RateState>;
  /** `count` tickets `gapMs` apart, the first due at `earliest` or later; none (and the item) if `seen` is out of date. */
  takeTickets(earliest: number, seen: RateState, rate: number, gapMs: number, count: number, client: string): Promise<{ tickets: Ticket[]; state: RateState }>;
  lowerRate(seen: RateState, next: Decrease, client: string): Promise<{ ok: boolean; state: RateState }>;
  reportShare(epoch: number, client: string, share: number): Promise<RateState>;
}

/** The rates a probe tries, a step each: halfway to the ceiling while there is room below it, then +1, +2, +4… */
function* probes(base: number, ceiling: number | null): Generator<number> {
  for (let rate = base, jump = 1; ; ) {
    const room = ceiling === null ? 0 : ceiling - 1 - rate;
    if (room > 0) rate += Math.ceil(room / 2);
    else [rate, jump] = [rate + jump, 2 * jump];
    yield rate;
  }
}
const baseOf = (s: RateState) => Math.max(MIN_RATE, s.base ?? 0);
const stepTickets = (rate: number) => Math.ceil((rate * STEP_MS) / WINDOW_MS);
/** Tickets of this epoch due by `now`: those still ahead in the schedule have proven nothing yet. */
const dueTickets = (s: RateState, now: number) => s.issued - Math.max(0, ((s.tat - now) * baseOf(s)) / WINDOW_MS);

/** Requests/s the shared item allows now; Infinity: unlimited, no ticket. Growth is counted in tickets, not time. */
export function rateAt(s: RateState, now: number): number {
  if (s.base === null || now - s.tat > QUIET_MS) return Infinity;
  let left = dueTickets(s, now) - Math.min(s.holdTickets, baseOf(s) * MAX_HOLD_S);
  if (left < 0) return baseOf(s);
  for (const rate of probes(baseOf(s), s.ceiling)) {
    left -= stepTickets(rate);
    if (rate > MAX_RATE) return Infinity;
    if (left < 0) return rate;
  }
  return Infinity;
}

/** One item `rate` holds the learnt rate and the schedule. */
export class MemoryRateStore implements RateStore {
  operations = 0;
  item = UNLIMITED;
  private readonly appliedUntil = new Map<string, number>();
  constructor(private readonly clock: VirtualClock, private readonly random: () => number) {}
  // GetItem, ConsistentRead.
  read(): Promise<RateState> { return this.op(undefined, () => this.copy()); }
  // The client picks the expression from its copy; ReturnValues ALL_NEW, ReturnValuesOnConditionCheckFailure ALL_OLD.
  // back to back: SET tat = tat + :span ADD issued :count, version :1                     (:span = :count × :gap)
  //               IF epoch = :epoch AND base = :base AND tat >= :earliest                 → first due at the old tat
  // after a lull: SET tat = :earliestPlusSpan ADD version :1
  //               IF epoch = :epoch AND base = :base AND tat < :earliest                  → first due at :earliest
  // (base too: a discovery's shares change it within an epoch, and the tickets' rate comes from it.)
  takeTickets(earliest: number, seen: RateState, rate: number, gapMs: number, count: number, _client?: string): Promise<{ tickets: Ticket[]; state: RateState }> {
    const backToBack = seen.tat >= earliest;
    return this.op('rate', () => {
      const { epoch, base, tat, issued } = this.item;
      if (epoch !== seen.epoch || base !== seen.base || tat >= earliest !== backToBack) return { tickets: [], state: this.copy() };
      const first = backToBack ? tat : earliest;
      this.write({ tat: first + count * gapMs, issued: issued + (backToBack ? count : 0) });
      return { tickets: Array.from({ length: count }, (_, i) => ({ sendAt: first + i * gapMs, rate, epoch })), state: this.copy() };
    });
  }
  // SET base = :base, ceiling = :ceiling, holdTickets = :hold, issued = :0, changedAt = :now, discovering = :d,
  //     suspect = :s, reporters = :meSet, epoch = :seenEpochPlus1, tat = :resumeAt (or tat = tat + :gap: a gap of
  //     slack at the seam) ADD version :1      IF epoch = :seenEpoch (attribute_not_exists(epoch) while never limited)
  lowerRate(seen: RateState, next: Decrease, client: string): Promise<{ ok: boolean; state: RateState }> {
    return this.op('rate', () => {
      if (this.item.epoch !== seen.epoch) return { ok: false, state: this.copy() };
      const { resumeAt, ...fields } = next;
      const tat = resumeAt ?? this.item.tat + WINDOW_MS / Math.max(MIN_RATE, next.base);
      this.write({ ...fields, tat, issued: 0, epoch: this.item.epoch + 1, reporters: [client] });
      return { ok: true, state: this.copy() };
    });
  }
  // ADD base :share, reporters :meSet, version :1   IF epoch = :epoch AND discovering = :true AND NOT contains(reporters, :me)
  reportShare(epoch: number, client: string, share: number): Promise<RateState> {
    return this.op('rate', () => {
      const i = this.item;
      if (i.epoch === epoch && i.discovering && !i.reporters.includes(client)) this.write({ base: (i.base ?? 0) + share, reporters: [...i.reporters, client] });
      return this.copy();
    });
  }
  protected write(fields: Partial<RateState>): void { this.item = { ...this.item, ...fields, version: this.item.version + 1 }; }
  protected copy(): RateState { return { ...this.item, reporters: [...this.item.reporters] }; }
  /** One request: half its latency on the way, the writes to one item applied one after another, half on the way back. */
  protected async op<T>(key: string | undefined, apply: () => T): Promise<T> {
    this.operations++;
    const latency = 5 + 10 * this.random();
    await this.clock.sleep(latency / 2);
    if (key !== undefined) {
      const at = Math.max(this.clock.now(), this.appliedUntil.get(key) ?? 0) + 1;
      this.appliedUntil.set(key, at);
      await this.clock.sleep(at - this.clock.now());
    }
    const result = apply();
    await this.clock.sleep(latency / 2);
    return result;
  }
}

/**
 * The first candidate, a ticket a write from items `slot#<epoch second>`: ADD taken :1 IF attribute_not_exists(taken)
 * OR taken < :rate; ticket i of second s is due at s × 1000 + i × 1000 / rate (if past, at once); a full second → the
 * next (each adapter remembers the first not full). The rate item comes back, counts and notes the ticket for free here
 * (a real adapter needs another request): its operations are a floor.
 */
export class SlotRateStore extends MemoryRateStore {
  private readonly taken = new Map<number, number>();
  private readonly firstOpen = new Map<string, number>();
  override async takeTickets(earliest: number, _seen: RateState, rate: number, _gapMs: number, _count: number, client: string): Promise<{ tickets: Ticket[]; state: RateState }> {
    for (let second = Math.max(Math.floor(earliest / WINDOW_MS), this.firstOpen.get(client) ?? 0); ; second++) {
      const i = await this.op(`slot#${second}`, () => {
        const taken = this.taken.get(second) ?? 0;
        return taken < rate ? (this.taken.set(second, taken + 1), taken) : -1;
      });
      if (i < 0) { this.firstOpen.set(client, second + 1); continue; }
      const sendAt = second * WINDOW_MS + (i * WINDOW_MS) / rate;
      this.write({ issued: this.item.issued + 1, tat: Math.max(this.item.tat, sendAt) });
      return { tickets: [{ sendAt, rate, epoch: this.item.epoch }], state: this.copy() };
    }
  }
}

interface SharedPermit { epoch: number; rate: number }

/** What a 429 to `permit` makes of the shared rate `s` (written only if `s` is still current); undefined: nothing. */
function decrease(s: RateState, permit: SharedPermit, now: number, share: number, pauseMs: number): Decrease | undefined {
  const at = { changedAt: now, discovering: false, suspect: false };
  // The burst's first 429: Scale's window is full of what the instances sent; their shares add up to the limit.
  if (permit.rate === Infinity) return { ...at, base: share, ceiling: null, holdTickets: PROBE_EVERY, discovering: true, resumeAt: now + pauseMs };
  const base = baseOf(s);
  if (permit.rate > base) {
    // A probe failed: keep the step before it, which held a whole window, and search between the two.
    let kept = base;
    for (const rate of probes(base, s.ceiling)) if (rate < permit.rate) kept = rate; else break;
    return { ...at, base: kept, ceiling: permit.rate, holdTickets: permit.rate - kept > 1 ? 0 : PROBE_EVERY, resumeAt: null };
  }
  // Refused at a rate that had held: jitter at the edge (one request less will do), or the limit fell: then another
  // comes before the lower rate has held (the window stays overfull); all wait it out, prove a far lower rate, search up.
  if (!s.suspect || dueTickets(s, now) >= stepTickets(base)) return { ...at, base: Math.max(MIN_RATE, base - 1), ceiling: base, holdTickets: PROBE_EVERY, suspect: true, resumeAt: null };
  const lower = Math.max(MIN_RATE, Math.floor(base * FALL_FACTOR));
  return { ...at, base: lower, ceiling: base, holdTickets: stepTickets(lower), resumeAt: now + pauseMs };
}

/** What one instance runs: unlimited, without a ticket, until a 429 is known; then tickets from the shared schedule. */
export class SharedFlow {
  private state: RateState = { ...UNLIMITED, version: -1 };
  private pausedUntil = -Infinity;
  private readonly accepted: number[] = [];
  /** Requests waiting for a ticket (given undefined: none needed now), and whether a write is taking some. */
  private readonly waiting: Array<(ticket: Ticket | undefined) => void> = [];
  private taking = false;
  /** The last epoch this instance wrote a 429 for: one write per overload, however many of its requests met it. */
  private reactedTo = -1;
  /** `marginMs` widens the window spacing tickets (jitter, clock error): at exactly the limit, a hair early is refused. */
  constructor(private readonly store: RateStore, private readonly clock: FlowClock, readonly id: string, private readonly marginMs = 2) {}
  /** A cold start reads the item once: an instance joining a limited burst keeps to the rate from its first request. */
  async start(): Promise<void> { this.learn(await this.store.read()); }
  async acquire(): Promise<SharedPermit> {
    for (;;) {
      if (this.pausedUntil > this.clock.now()) await this.clock.sleep(this.pausedUntil - this.clock.now());
      if (rateAt(this.state, this.clock.now()) === Infinity) return { epoch: this.state.epoch, rate: Infinity };
      const ticket = await new Promise<Ticket | undefined>((resolve) => {
        this.waiting.push(resolve);
        if (!this.taking) void this.take();
      });
      if (!ticket) continue;
      if (ticket.sendAt > this.clock.now()) await this.clock.sleep(ticket.sendAt - this.clock.now());
      return { epoch: ticket.epoch, rate: ticket.rate };
    }
  }
  settle(permit: SharedPermit, ok: boolean, retryAfterMs: number): void {
    const now = this.clock.now();
    while (this.accepted.length > 0 && this.accepted[0]! <= now - WINDOW_MS) this.accepted.shift();
    if (ok) return void this.accepted.push(now);
    // Retry-After holds the refused request back (its caller waits). While unlimited it holds the whole instance back;
    // with tickets, the schedule does (lower after this, paused after a fall).
    if (permit.rate === Infinity) this.pausedUntil = Math.max(this.pausedUntil, now + retryAfterMs);
    if (permit.epoch > this.reactedTo) void this.react(permit, now, this.accepted.length, retryAfterMs);
  }
  private async react(permit: SharedPermit, now: number, share: number, retryAfterMs: number): Promise<void> {
    this.reactedTo = permit.epoch;
    for (let attempt = 0; attempt < 3; attempt++) {
      const seen = this.state;
      if (permit.epoch < seen.epoch) {
        // Another instance lowered the rate for this overload already; a discovery still wants this one's share.
        const joins = seen.discovering && permit.rate === Infinity && share > 0 && now - seen.changedAt < retryAfterMs && !seen.reporters.includes(this.id);
        if (joins) this.learn(await this.store.reportShare(seen.epoch, this.id, share));
        return;
      }
      // The margin covers the instances' clocks at the seam of a pause too.
      const next = decrease(seen, permit, now, share, retryAfterMs + this.marginMs);
      if (!next) return;
      const answer = await this.store.lowerRate(seen, next, this.id);
      this.learn(answer.state);
      if (answer.ok) return;
    }
  }
  /** One write at a time per instance, for as many waiting requests as the horizon holds at this rate. */
  private async take(): Promise<void> {
    this.taking = true;
    while (this.waiting.length > 0) {
      const early = this.state.tat - HORIZON_MS - this.clock.now();
      if (early > 0) await this.clock.sleep(early);
      const now = this.clock.now();
      const rate = rateAt(this.state, now);
      if (rate === Infinity) {
        this.waiting.splice(0).forEach((resolve) => resolve(undefined));
        break;
      }
      const count = Math.min(this.waiting.length, Math.max(1, Math.floor((HORIZON_MS * rate) / WINDOW_MS)));
      const answer = await this.store.takeTickets(now + LEAD_MS, this.state, rate, (WINDOW_MS + this.marginMs) / rate, count, this.id);
      this.learn(answer.state);
      for (const ticket of answer.tickets) this.waiting.shift()!(ticket);
    }
    this.taking = false;
  }
  private learn(s: RateState): void { if (s.version >= this.state.version) this.state = s; }
}

/** A seeded linear congruential generator (Numerical Recipes' constants): every run prints the same figures. */
const seeded = (seed: number) => () => (seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32;

type Design = 'slot items' | 'one item';
interface Scenario { label: string; rate: number; change?: { atMs: number; rate: number }; skewMs?: number; marginMs?: number }

async function simulate(design: Design, scenario: Scenario) {
  const clock = new VirtualClock();
  const limit = new SlidingWindowLimit(scenario.rate);
  const store = design === 'slot items' ? new SlotRateStore(clock, seeded(7)) : new MemoryRateStore(clock, seeded(7));
  const skew = scenario.skewMs ?? 0;
  // The instances' clocks spread evenly over `skew` ms.
  const offset = (i: number) => (skew * i) / (INSTANCES - 1) - skew / 2;
  const flows = Array.from({ length: INSTANCES }, (_, i) => new SharedFlow(store, { now: () => clock.now() + offset(i), sleep: (ms) => clock.sleep(ms) }, `instance-${i}`, scenario.marginMs));
  let [untaken, done, finishedAt] = [MESSAGES, 0, 0];
  const send = async (pacer: SharedFlow, instance: number) => {
    for (;;) {
      const permit = await pacer.acquire();
      await clock.sleep(ROUND_TRIP_MS / 2);
      const ok = limit.admit(clock.now(), instance);
      await clock.sleep(ROUND_TRIP_MS / 2);
      pacer.settle(permit, ok, limit.retryAfterMs);
      if (ok) return void ((done++, (finishedAt = clock.now())));
      await clock.sleep(limit.retryAfterMs);
    }
  };
  const work = async (pacer: SharedFlow, instance: number) => {
    await pacer.start();
    while (untaken > 0) {
      const batch = Math.min(SLOTS, untaken);
      untaken -= batch;
      await Promise.all(Array.from({ length: batch }, () => send(pacer, instance)));
    }
  };
  // Instances start a little apart, as their first batches arrive.
  flows.forEach((flow, i) => void clock.sleep(i * 37).then(() => work(flow, i)));
  const change = scenario.change;
  if (change) void clock.sleep(change.atMs).then(() => void (limit.rate = change.rate));
  const rates: string[] = [];
  for (let t = 0; done < MESSAGES; ) {
    await clock.run((t += 100));
    if (t % 2_500 === 0 && t <= 30_000) rates.push(String(rateAt(store.item, t)).replace('Infinity', '∞'));
  }
  const { accepted, refused } = limit.between(0, Infinity);
  return { seconds: finishedAt / 1000, share429: refused / (accepted + refused), operations: store.operations, rates };
}

/** The least time a client could take: Scale's limit alone, or the concurrency without a limit. */
function bound({ rate, change }: Scenario): number {
  if (change) return change.atMs / 1000 + (MESSAGES - (rate * change.atMs) / 1000) / change.rate;
  return Number.isFinite(rate) ? MESSAGES / rate : (MESSAGES * ROUND_TRIP_MS) / (INSTANCES * SLOTS) / 1000;
}

const scenarios: Scenario[] = [...[5, 20, 50].map((rate) => ({ label: `R = ${rate}`, rate })), { label: 'no limit', rate: Infinity }];
for (const [from, to] of [[20, 50], [50, 20]] as const) scenarios.push({ label: `${from} → ${to} at 10 s`, rate: from, change: { atMs: 10_000, rate: to } });
const skewed = [0, 50].flatMap((marginMs) => [5, 20, 50].map((rate) => ({ label: `R = ${rate}, skew 50, margin ${marginMs}`, rate, skewMs: 50, marginMs })));

console.log('limit\t\t\t\tdesign\t\tseconds\tbound\tratio\t429s\tstore ops\tper request\tshared rate every 2.5 s to 30 s');
const runs = [...scenarios.flatMap((s) => (['slot items', 'one item'] as const).map((d) => [s, d] as const)), ...skewed.map((s) => [s, 'one item'] as const)];
for (const [scenario, design] of runs) {
  const r = await simulate(design, scenario);
  const b = bound(scenario);
  const figures = [r.seconds.toFixed(2), b.toFixed(2), (r.seconds / b).toFixed(3), `${(100 * r.share429).toFixed(1)} %`, String(r.operations).padEnd(8), (r.operations / MESSAGES).toFixed(2).padEnd(8)];
  console.log([scenario.label.padEnd(30), design.padEnd(12), ...figures, r.rates.join(' ')].join('\t'));
}
process.exit(0);
