import type { FlowClock } from '../../../../lambdas/core/scale/flow-control.js';
import type { Decrease, RateState } from '../../../../lambdas/core/scale/rate-rules.js';
import { MemoryRateStore, type RateStore, type TicketRequest } from '../../../../lambdas/core/scale/rate-store.js';
import { SharedFlowControl, type SharedFlowControlOptions } from '../../../../lambdas/core/scale/shared-flow-control.js';
import { SlidingWindowLimit, VirtualClock } from './virtual-time.js';

/** A seeded linear congruential generator (Numerical Recipes' constants): every run takes the same times. */
export const seeded = (seed: number) => () => (seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32;

/**
 * The in-memory store as DynamoDB would be on virtual time: each request takes 5–15 ms (seeded), half of it on
 * the way there; writes to the one item apply one after another, 1 ms each. It can fail (every request rejects
 * with `failure`) or hang (no answer ever) on demand.
 */
export class LaggingRateStore implements RateStore {
  readonly memory = new MemoryRateStore();
  /** Requests that reached the store, by kind. */
  readonly calls = { read: 0, takeTickets: 0, lowerRate: 0, reportShare: 0 };
  failure: Error | 'hang' | undefined;
  private appliedUntil = 0;
  private readonly random = seeded(7);

  constructor(private readonly clock: VirtualClock) {}

  get writes(): number {
    return this.calls.takeTickets + this.calls.lowerRate + this.calls.reportShare;
  }

  read(): Promise<RateState> {
    return this.request('read', () => this.memory.read());
  }
  takeTickets(request: TicketRequest) {
    return this.request('takeTickets', () => this.memory.takeTickets(request));
  }
  lowerRate(seen: RateState, next: Decrease) {
    return this.request('lowerRate', () => this.memory.lowerRate(seen, next));
  }
  reportShare(epoch: number, instance: string, share: number) {
    return this.request('reportShare', () => this.memory.reportShare(epoch, instance, share));
  }

  private async request<T>(kind: keyof LaggingRateStore['calls'], apply: () => Promise<T>): Promise<T> {
    this.calls[kind]++;
    const latency = 5 + 10 * this.random();
    await this.clock.sleep(latency / 2);
    if (this.failure === 'hang') return new Promise<T>(() => undefined);
    if (this.failure) throw this.failure;
    if (kind !== 'read') {
      const at = Math.max(this.clock.now(), this.appliedUntil) + 1;
      this.appliedUntil = at;
      await this.clock.sleep(at - this.clock.now());
    }
    const result = await apply();
    await this.clock.sleep(latency / 2);
    return result;
  }
}

export interface BurstScenario {
  /** Scale's limit, requests per second (Infinity: none); `change` sets another one at `atMs`. */
  rate: number;
  change?: { atMs: number; rate: number };
  messages?: number;
  instances?: number;
  /** The instances' clocks spread evenly over this many ms. */
  skewMs?: number;
  options?: SharedFlowControlOptions;
  /** Stop here (virtual ms) even if messages are left. */
  stopAtMs?: number;
  /** Time Scale works on an accepted request before answering (a 429 answers at once), ms. */
  createMs?: number;
}

/**
 * A burst through five instances as create-task runs it: each takes batches of ten messages while any are left and
 * sends them concurrently, 30 ms a round trip; a refused request waits its Retry-After (1 s) and asks again, as the
 * Scale client does. Runs until every message was accepted (or `stopAtMs`); answers the time it took, Scale's
 * answers, the store and the instances.
 */
export async function runBurst(scenario: BurstScenario) {
  const clock = new VirtualClock();
  const limit = new SlidingWindowLimit(scenario.rate);
  const store = new LaggingRateStore(clock);
  const instances = scenario.instances ?? 5;
  const skew = scenario.skewMs ?? 0;
  const clockOf = (i: number): FlowClock => {
    const offset = instances > 1 ? (skew * i) / (instances - 1) - skew / 2 : 0;
    return { now: () => clock.now() + offset, sleep: (ms) => clock.sleep(ms) };
  };
  const flows = Array.from({ length: instances }, (_, i) => new SharedFlowControl(store, { instanceId: `instance-${i}`, ...scenario.options, clock: clockOf(i) }));
  const messages = scenario.messages ?? 1_000;
  let [untaken, done, finishedAt] = [messages, 0, 0];
  const send = async (flow: SharedFlowControl, instance: number) => {
    for (;;) {
      const turn = await flow.acquire(Infinity);
      if (!turn.ok) throw new Error(turn.reason);
      await clock.sleep(15);
      const ok = limit.admit(clock.now(), instance);
      await clock.sleep(15 + (ok ? (scenario.createMs ?? 0) : 0));
      flow.settle(turn.permit, { rateLimited: !ok, retryAfterMs: ok ? undefined : limit.retryAfterMs });
      if (ok) return void ((done++, (finishedAt = clock.now())));
      await clock.sleep(limit.retryAfterMs);
    }
  };
  const work = async (flow: SharedFlowControl, instance: number) => {
    while (untaken > 0) {
      const batch = Math.min(10, untaken);
      untaken -= batch;
      await Promise.all(Array.from({ length: batch }, () => send(flow, instance)));
    }
  };
  // Instances start a little apart, as their first batches arrive.
  flows.forEach((flow, i) => void clock.sleep(i * 37).then(() => work(flow, i)));
  const change = scenario.change;
  if (change) void clock.sleep(change.atMs).then(() => void (limit.rate = change.rate));
  /** The shared rate every 2.5 s of the run (Infinity: unlimited). */
  const sharedRates: number[] = [];
  for (let t = 0; done < messages && t < (scenario.stopAtMs ?? Infinity); ) {
    await clock.run((t += 100));
    if (t % 2_500 === 0) sharedRates.push(flows[0]!.state().rate ?? Infinity);
    if (t > 3_600_000) throw new Error(`not done in an hour of virtual time: ${done} of ${messages}`);
  }
  const { accepted, refused } = limit.between(0, Infinity);
  return { clock, limit, store, flows, seconds: finishedAt / 1000, share429: refused / (accepted + refused), sharedRates };
}
