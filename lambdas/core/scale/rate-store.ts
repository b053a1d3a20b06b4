import type { FlowClock } from './flow-control.js';
import { afterTickets, micros, MIN_RATE, ticketsFrom, toMicros, UNLIMITED, WINDOW_MS, type Decrease, type RateState, type Ticket } from './rate-rules.js';

/**
 * Where the shared rate lives (rate-rules.ts): one item that every instance reads and writes with conditional
 * updates. Each method is one request (GetItem for `read`, one UpdateItem for the others, plus a consistent read
 * after a refused condition); `signal` aborts it. The in-memory adapter is below, the DynamoDB one beside it.
 */
export interface RateStore {
  /** The current state, read consistently; UNLIMITED when there is none. */
  read(signal?: AbortSignal): Promise<RateState>;
  /**
   * `count` tickets `gapMs` apart, the first due when the schedule is (`tat`, back to back: they prove the rate
   * held) or at `earliest` after a lull; none, with the current state, if `seen` is out of date.
   */
  takeTickets(request: TicketRequest, signal?: AbortSignal): Promise<{ tickets: Ticket[]; state: RateState }>;
  /** Writes `next` and opens the next epoch (no share reported yet), if `seen`'s epoch is still current (`ok: false` and the state if not). */
  lowerRate(seen: RateState, next: Decrease, signal?: AbortSignal): Promise<{ ok: boolean; state: RateState }>;
  /** Adds `share` to the base, once per instance, while the first 429's epoch is still discovering. */
  reportShare(epoch: number, instance: string, share: number, signal?: AbortSignal): Promise<RateState>;
}

export interface TicketRequest {
  /** Kept to the microsecond (toMicros), as every time in the schedule. */
  earliest: number;
  seen: RateState;
  rate: number;
  gapMs: number;
  count: number;
}

/** Whether the request goes on from the schedule (the condition takeTickets writes under). */
export const backToBack = (request: TicketRequest) => micros(request.seen.tat) >= micros(request.earliest);

/**
 * Where a decrease leaves the schedule: paused until `resumeAt`, or a gap of slack at the seam, so the first ticket
 * at the lower rate does not follow the last one at the higher rate too closely.
 */
export const slackAfterDecrease = (next: Decrease) => toMicros(WINDOW_MS / Math.max(MIN_RATE, next.base));

/**
 * The store in memory: for tests and virtual time, and the reference the DynamoDB adapter's conditions mirror.
 * Each method applies at once, when called; `reads` and `writes` count the requests a real store would get.
 */
export class MemoryRateStore implements RateStore {
  item: RateState = copy(UNLIMITED);
  reads = 0;
  writes = 0;

  async read(): Promise<RateState> {
    this.reads++;
    return copy(this.item);
  }

  async takeTickets(request: TicketRequest): Promise<{ tickets: Ticket[]; state: RateState }> {
    this.writes++;
    const { earliest, seen, rate, gapMs, count } = request;
    const { epoch, base, tat, issued } = this.item;
    const resumes = backToBack(request);
    // The base too: a discovery's shares change it within an epoch, and the tickets' rate comes from it.
    if (epoch !== seen.epoch || base !== seen.base || micros(tat) >= micros(earliest) !== resumes) {
      this.reads++;
      return { tickets: [], state: copy(this.item) };
    }
    const first = resumes ? tat : earliest;
    this.write({ tat: afterTickets(first, count, gapMs), issued: issued + (resumes ? count : 0) });
    return { tickets: ticketsFrom(first, count, gapMs, rate, epoch), state: copy(this.item) };
  }

  async lowerRate(seen: RateState, next: Decrease): Promise<{ ok: boolean; state: RateState }> {
    this.writes++;
    if (this.item.epoch !== seen.epoch) {
      this.reads++;
      return { ok: false, state: copy(this.item) };
    }
    const { resumeAt, ...fields } = next;
    const tat = resumeAt === null ? (micros(Number.isFinite(this.item.tat) ? this.item.tat : toMicros(next.changedAt)) + micros(slackAfterDecrease(next))) / 1e3 : toMicros(resumeAt);
    this.write({ ...fields, tat, issued: 0, epoch: this.item.epoch + 1, reporters: [] });
    return { ok: true, state: copy(this.item) };
  }

  async reportShare(epoch: number, instance: string, share: number): Promise<RateState> {
    this.writes++;
    const i = this.item;
    if (i.epoch === epoch && i.discovering && !i.reporters.includes(instance)) this.write({ base: (i.base ?? 0) + share, reporters: [...i.reporters, instance] });
    else this.reads++;
    return copy(this.item);
  }

  private write(fields: Partial<RateState>): void {
    this.item = { ...this.item, ...fields, version: this.item.version + 1 };
  }
}

const copy = (s: Readonly<RateState>): RateState => ({ ...s, reporters: [...s.reporters] });

const TIMED_OUT = Symbol('timed out');

/** A store request bounded by `timeoutMs` of `clock`: past it, aborted and failed. */
export async function within<T>(clock: FlowClock, timeoutMs: number, request: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const answer = await Promise.race([request(abort.signal), clock.sleep(timeoutMs).then(() => TIMED_OUT)]);
  if (answer !== TIMED_OUT) return answer as T;
  abort.abort();
  throw new Error(`the rate store did not answer within ${timeoutMs} ms`);
}
