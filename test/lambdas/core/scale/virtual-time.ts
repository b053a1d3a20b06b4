import { FlowControl, type FlowClock, type FlowControlOptions, type Permit } from '../../../../lambdas/core/scale/flow-control.js';

/**
 * Virtual time for flow-control tests: `sleep` parks the caller until `run` advances the clock to its wake-up
 * time, so minutes of pacing take milliseconds and no test sleeps.
 */
export class VirtualClock implements FlowClock {
  private time = 0;
  private timers: Array<{ at: number; seq: number; wake: () => void }> = [];
  private seq = 0;
  /** Every sleep asked for, in ms (a test can show that nothing waited). */
  readonly sleeps: number[] = [];

  now(): number {
    return this.time;
  }

  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    return new Promise((wake) => this.timers.push({ at: this.time + Math.max(0, ms), seq: this.seq++, wake }));
  }

  /**
   * Runs timers in time order until `until` (ms), until nothing is left, or until `done()` says so, letting promise
   * chains settle between.
   */
  async run(until = Infinity, done?: () => boolean): Promise<void> {
    for (;;) {
      await settle();
      if (done?.()) return;
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.timers.shift();
      this.time = Math.max(this.time, next.at);
      next.wake();
    }
    if (Number.isFinite(until)) this.time = Math.max(this.time, until);
  }
}

/** Lets every pending promise callback run (they never wait on real I/O here). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A stand-in for Scale's limiter as the simulator has it: at most `rate` accepted requests in any one-second
 * window (refused ones do not count), 429 with Retry-After otherwise. The rate can change while running.
 */
export class SlidingWindowLimit {
  private readonly accepted: number[] = [];
  readonly answers: Array<{ at: number; instance: number; ok: boolean }> = [];

  constructor(
    public rate: number,
    readonly retryAfterMs = 1_000,
  ) {}

  admit(at: number, instance: number): boolean {
    while (this.accepted.length > 0 && this.accepted[0]! <= at - 1_000) this.accepted.shift();
    const ok = this.accepted.length < this.rate;
    if (ok) this.accepted.push(at);
    this.answers.push({ at, instance, ok });
    return ok;
  }

  /** Answers of [from, to) virtual ms. */
  between(from: number, to: number) {
    const window = this.answers.filter((a) => a.at >= from && a.at < to);
    return { accepted: window.filter((a) => a.ok).length, refused: window.filter((a) => !a.ok).length };
  }
}

export interface Fleet {
  clock: VirtualClock;
  limit: SlidingWindowLimit;
  flows: FlowControl[];
  /** Runs until `untilMs` of virtual time (again and again, each run going on from the last). */
  run(untilMs: number): Promise<void>;
}

/**
 * Instances that always have work (`concurrency` requests in flight each, as a batch processed in parallel),
 * each with its own flow control, sending through `limit` with a fixed round trip.
 */
export function fleet(options: { instances: number; concurrency: number; limit: SlidingWindowLimit; roundTripMs?: number; flow?: FlowControlOptions }): Fleet {
  const clock = new VirtualClock();
  const roundTripMs = options.roundTripMs ?? 20;
  const flows = Array.from({ length: options.instances }, () => new FlowControl({ ...options.flow, clock }));
  // Workers never stop: time simply stops advancing at the end of a run, and a later run goes on from there.
  const worker = async (flow: FlowControl, instance: number) => {
    for (;;) {
      const turn = await flow.acquire(Infinity);
      if (!turn.ok) throw new Error(`no turn without a deadline: ${turn.reason}`);
      await clock.sleep(roundTripMs / 2);
      const ok = options.limit.admit(clock.now(), instance);
      await clock.sleep(roundTripMs / 2);
      flow.settle(turn.permit, { rateLimited: !ok, retryAfterMs: ok ? undefined : options.limit.retryAfterMs });
    }
  };
  let started = false;
  return {
    clock,
    limit: options.limit,
    flows,
    async run(untilMs: number) {
      if (!started) {
        started = true;
        // Instances start a little apart, as their first batches arrive.
        flows.forEach((flow, i) => Array.from({ length: options.concurrency }, () => void clock.sleep(i * 37).then(() => worker(flow, i))));
      }
      await clock.run(untilMs);
    },
  };
}

/** Asks for a turn (by `latestStart`); a refused turn fails the test with its reason. */
export async function send(flow: FlowControl, latestStart = Infinity): Promise<Permit> {
  const turn = await flow.acquire(latestStart);
  if (!turn.ok) throw new Error(turn.reason);
  return turn.permit;
}

/** Waits for a turn, running virtual time until it comes. */
export async function sendWhenDue(flow: FlowControl, clock: VirtualClock): Promise<Permit> {
  const permit = send(flow);
  await clock.run();
  return permit;
}

/** A flow control whose first 429 came with `accepted` of its requests let through, all sent and answered at 0 ms. */
export async function limitedAt(accepted: number, options: FlowControlOptions = {}): Promise<{ flow: FlowControl; clock: VirtualClock }> {
  const clock = new VirtualClock();
  const flow = new FlowControl({ ...options, clock });
  const permits = await Promise.all(Array.from({ length: accepted + 1 }, () => send(flow)));
  for (const permit of permits.slice(0, accepted)) flow.settle(permit, { rateLimited: false });
  flow.settle(permits[accepted]!, { rateLimited: true });
  return { flow, clock };
}

/** Asks for `count` turns at once (no deadline) and gives their permits in the order asked. */
export function sendMany(flow: FlowControl, count: number): Promise<Permit[]> {
  return Promise.all(Array.from({ length: count }, () => send(flow)));
}
