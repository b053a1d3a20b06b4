// npx tsx bench/flow-model.ts: the flow control alone, on virtual time (no CPU, I/O or emulators in play).
// Five create-task instances share Scale's limit of R requests/s (a sliding one-second window, Retry-After 1 s) and
// 1,000 messages; each either takes batches of ten and finishes a batch before taking the next (as a Lambda
// invocation does), or always has a request in flight per slot (no batches). Prints the time to send them all
// against N / R, the 429 share, and each instance's rate partway through.
import { FlowControl } from '../lambdas/core/scale/flow-control.js';
import { SlidingWindowLimit, VirtualClock } from '../test/lambdas/core/scale/virtual-time.js';

const INSTANCES = 5;
const SLOTS = 10;
const MESSAGES = 1_000;
const ROUND_TRIP_MS = 30;

async function simulate(rate: number, batches: boolean) {
  const clock = new VirtualClock();
  const limit = new SlidingWindowLimit(rate);
  const flows = Array.from({ length: INSTANCES }, () => new FlowControl({ clock }));
  let untaken = MESSAGES;
  let sent = 0;
  const send = async (flow: FlowControl, instance: number) => {
    for (;;) {
      const turn = await flow.acquire(Infinity);
      if (!turn.ok) throw new Error(turn.reason);
      await clock.sleep(ROUND_TRIP_MS / 2);
      const ok = limit.admit(clock.now(), instance);
      await clock.sleep(ROUND_TRIP_MS / 2);
      flow.settle(turn.permit, { rateLimited: !ok, retryAfterMs: ok ? undefined : limit.retryAfterMs });
      if (ok) return void sent++;
    }
  };
  const slot = async (flow: FlowControl, instance: number) => {
    while (untaken > 0) {
      untaken--;
      await send(flow, instance);
    }
  };
  const slots = async (flow: FlowControl, instance: number) => {
    await Promise.all(Array.from({ length: SLOTS }, () => slot(flow, instance)));
  };
  const batchesOf = async (flow: FlowControl, instance: number) => {
    while (untaken > 0) {
      const batch = Math.min(SLOTS, untaken);
      untaken -= batch;
      await Promise.all(Array.from({ length: batch }, () => send(flow, instance)));
    }
  };
  flows.forEach((flow, i) => {
    // Instances start a little apart, as their first batches arrive.
    void clock.sleep(i * 37).then(() => (batches ? batchesOf(flow, i) : slots(flow, i)));
  });
  let t = 0;
  let ratesAt10s = '';
  while (sent < MESSAGES) {
    t += 100;
    await clock.run(t);
    if (t === 10_000) ratesAt10s = flows.map((f) => f.state().rate?.toFixed(1) ?? '∞').join(' ');
  }
  const { accepted, refused } = limit.between(0, t);
  const bound = MESSAGES / rate;
  return { seconds: t / 1000, bound, ratio: t / 1000 / bound, share429: refused / (accepted + refused), ratesAt10s };
}

console.log('R\tmode\t\tseconds\tN/R\tratio\t429s\trates at 10 s (requests/s per instance)');
for (const rate of [5, 20, 50]) {
  for (const batches of [true, false]) {
    const r = await simulate(rate, batches);
    console.log(`${rate}\t${batches ? 'batches of 10' : 'no batches'}\t${r.seconds.toFixed(1)}\t${r.bound}\t${r.ratio.toFixed(3)}\t${(100 * r.share429).toFixed(1)} %\t${r.ratesAt10s}`);
  }
}
process.exit(0);
