import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../lambdas/core/tasks/dynamo-task-store.js';
import type { LocalPipeline } from '../local/pipeline.js';
import { cpuMeter } from './cpu.js';
import { s3ClientFor, sampleRss, startBenchPipeline, uploadScenes, type Bundles } from './pipeline-kit.js';
import { inParallel, median, round, sleep } from './stats.js';

export interface CallbackParameters {
  callbacks: number;
  /** Callbacks POSTed at once, as Scale would send them for a batch completing together. */
  postConcurrency: number;
  /** Writes in flight for the raw comparison: the callback path's own parallelism (its instances, one record at a time each). */
  rawConcurrency: number;
  /** Raw write runs; their median is compared. */
  rawRuns: number;
}

export interface CallbackFigures {
  parameters: CallbackParameters;
  /** First callback POSTed → the callback queue empty, every delivery done: callbacks applied per second. */
  callbackPath: { appliedPerSecond: number; seconds: number };
  /** The same items written straight to the DynamoDB emulator (through the same streaming front), per second. */
  rawWrites: { writesPerSecond: number; runs: number[] };
  ratio: number;
  /**
   * CPU ms per callback applied, and per raw write, by process: this one (every emulator — S3, DynamoDB, API Gateway,
   * SQS, the simulator — and the bench sending) and each function's instances. On a machine whose cores are all
   * busy, the ratio can be no better than the raw write's total over the callback's.
   */
  cpuMsPerItem: { callbacks: Record<string, number>; rawWrites: Record<string, number> };
  /** Peak RSS of each instance of the functions the callbacks run through, MB. */
  peakRssMb: Record<string, number[]>;
}

/** Callbacks sent before the measured ones: enough to start every callback and authorizer instance. */
const WARM_UP = 16;

type Item = Record<string, unknown> & { uniqueId: string; status: string; updatedAt: string };

/**
 * Callback throughput: M uploads become tasks that Scale completes but whose callbacks it holds back; then the
 * bench sends all M callbacks as Scale would (its bodies, its header, the signed URLs), and times them through
 * API Gateway, the authorizer, S3, the callback queue and function, to the applied record. Then it writes the
 * same M applied items straight to the DynamoDB emulator and compares.
 */
export async function runCallbacks(parameters: CallbackParameters, bundles: Bundles, workDir: string, log: (line: string) => void): Promise<CallbackFigures> {
  const bench = await startBenchPipeline(workDir, bundles, { simulator: { dropCallbacks: 1, completionDelayMs: 0 } });
  const { pipeline } = bench;
  try {
    const uploads = await uploadScenes(pipeline, s3ClientFor(pipeline), 'callbacks', WARM_UP + parameters.callbacks, 16);
    const all = uploads.map((u) => u.uniqueId);
    await untilCompletedAtScale(pipeline, new Set(all));
    await pipeline.queue.idle();
    await pipeline.events.settled();
    log(`  ${all.length} tasks completed at Scale, callbacks held back`);
    const tasksOf = (ids: string[]) => pipeline.scale.state().tasks.filter((t) => t.unique_id !== undefined && ids.includes(t.unique_id));
    const post = (ids: string[]) =>
      inParallel(tasksOf(ids), parameters.postConcurrency, async ({ task }) => {
        // What the simulator itself would have sent (lifecycle.ts `deliver`).
        const body = JSON.stringify({ task, response: task.response ?? {}, task_id: task.task_id, status: task.status });
        const answer = await fetch(task.callback_url!, { method: 'POST', headers: { 'content-type': 'application/json', 'scale-callback-auth': pipeline.secrets.callbackAuthKey }, body });
        await answer.body?.cancel();
        if (answer.status !== 200) throw new Error(`callback for ${task.unique_id} answered ${answer.status}`);
      });
    // A few callbacks first, so that every callback and authorizer instance is warm: throughput, not cold starts.
    await post(all.slice(0, WARM_UP));
    await pipeline.callbackQueue.idle();
    await pipeline.events.settled();
    const ids = all.slice(WARM_UP);
    const started = Date.now();
    const pools = { callback: pipeline.pools.callback, 'callback-auth': pipeline.pools.callbackAuth, 'task-events': pipeline.pools.taskEvents };
    const cpu = cpuMeter(pools);
    await cpu.ready;
    const rss = sampleRss({ callback: pipeline.pools.callback, 'callback-auth': pipeline.pools.callbackAuth, 'task-events': pipeline.pools.taskEvents });
    await post(ids);
    await pipeline.callbackQueue.idle();
    const seconds = (Date.now() - started) / 1000;
    const cpuCallbacks = await cpu.stop(ids.length);
    const peakRssMb = await rss.stop();
    const items = await readItems(pipeline, ids);
    const notApplied = items.filter((item) => item.status !== 'completed');
    if (notApplied.length > 0 || items.length !== ids.length) throw new Error(`${ids.length - items.length + notApplied.length} callbacks were not applied`);
    await pipeline.events.settled();

    const runs: number[] = [];
    const cpuRaw = cpuMeter({});
    await cpuRaw.ready;
    for (let run = 1; run <= parameters.rawRuns; run++) runs.push(await rawWrites(pipeline, items, run, parameters.rawConcurrency));
    const cpuRawWrites = await cpuRaw.stop(items.length * parameters.rawRuns);
    const callbackRate = items.length / seconds;
    const rawRate = median(runs)!;
    return {
      parameters,
      callbackPath: { appliedPerSecond: round(callbackRate, 1), seconds: round(seconds) },
      rawWrites: { writesPerSecond: round(rawRate, 1), runs: runs.map((r) => round(r, 1)) },
      ratio: round(callbackRate / rawRate, 3),
      cpuMsPerItem: { callbacks: cpuCallbacks, rawWrites: cpuRawWrites },
      peakRssMb,
    };
  } finally {
    await bench.close();
  }
}

async function untilCompletedAtScale(pipeline: LocalPipeline, ids: Set<string>, limitMs = 120_000): Promise<void> {
  const until = Date.now() + limitMs;
  for (;;) {
    const done = pipeline.scale.state().tasks.filter((t) => t.unique_id !== undefined && ids.has(t.unique_id) && t.settled && t.status === 'completed');
    if (done.length === ids.size) return;
    if (Date.now() > until) throw new Error(`only ${done.length} of ${ids.size} tasks completed at Scale`);
    await sleep(1_000);
  }
}

function tableClient(pipeline: LocalPipeline) {
  const { info } = pipeline;
  return documentClient(new DynamoDBClient({ region: info.region, endpoint: info.dynamodbEndpoint, credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey } }));
}

async function readItems(pipeline: LocalPipeline, ids: string[]): Promise<Item[]> {
  const doc = tableClient(pipeline);
  const chunks = Array.from({ length: Math.ceil(ids.length / 100) }, (_, i) => ids.slice(i * 100, i * 100 + 100));
  const pages = await Promise.all(
    chunks.map(async (chunk) => {
      const out = await doc.send(new BatchGetCommand({ RequestItems: { [pipeline.info.tasksTable]: { Keys: chunk.map((uniqueId) => ({ uniqueId })), ConsistentRead: true } } }));
      return (out.Responses?.[pipeline.info.tasksTable] ?? []) as Item[];
    }),
  );
  return pages.flat();
}

/** Writes copies of the items (new keys, same content) through the DynamoDB front the functions use; answers writes/s. */
async function rawWrites(pipeline: LocalPipeline, items: Item[], run: number, concurrency: number): Promise<number> {
  const doc = tableClient(pipeline);
  const started = Date.now();
  await inParallel(items, concurrency, (item) => doc.send(new PutCommand({ TableName: pipeline.info.tasksTable, Item: { ...item, uniqueId: `${item.uniqueId}-raw-${run}` } })));
  return items.length / ((Date.now() - started) / 1000);
}
