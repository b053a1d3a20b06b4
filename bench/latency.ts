import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../lambdas/core/tasks/dynamo-task-store.js';
import type { LocalPipeline } from '../local/pipeline.js';
import { s3ClientFor, startBenchPipeline, uploadScenes, type Bundles, type Upload } from './pipeline-kit.js';
import { quantile, sleep } from './stats.js';

export interface LatencyParameters {
  uploads: number;
  /** Uploads per second, one at a time: a steady trickle, so that no queue forms and latency is the path's own. */
  uploadsPerSecond: number;
}

export interface LatencyFigures {
  parameters: LatencyParameters;
  /** S3 answered the PUT → Scale created the task (its created_at, taken as the request arrives). */
  uploadToTaskMs: { p50: number; p99: number };
  /**
   * Scale POSTed the completion callback → the record reads as completed (looked at every 10 ms): the simulator's
   * own work (download, labelling) comes before, and is not counted.
   */
  callbackToAppliedMs: { p50: number; p99: number };
}

const SETTLE_LIMIT_MS = 60_000;
const POLL_MS = 10;

/** Latency of the two paths, one upload at a time, on a fresh pipeline with no rate limit. */
export async function runLatency(parameters: LatencyParameters, bundles: Bundles, workDir: string): Promise<LatencyFigures> {
  const bench = await startBenchPipeline(workDir, bundles);
  const { pipeline } = bench;
  try {
    const s3 = s3ClientFor(pipeline);
    const doc = tableClient(pipeline);
    // A first upload through every function, so that the figures are of warm instances.
    const [warm] = await uploadScenes(pipeline, s3, 'latency-warm-up', 1, 1);
    await completedAt(doc, pipeline, warm!.uniqueId);
    const uploads: Upload[] = [];
    const watched: Array<Promise<number>> = [];
    for (let i = 0; i < parameters.uploads; i++) {
      const next = Date.now() + 1000 / parameters.uploadsPerSecond;
      const [upload] = await uploadScenes(pipeline, s3, `latency/${i}`, 1, 1);
      uploads.push(upload!);
      watched.push(completedAt(doc, pipeline, upload!.uniqueId));
      await sleep(Math.max(0, next - Date.now()));
    }
    const applied = await Promise.all(watched);
    const tasks = new Map(pipeline.scale.state().tasks.flatMap((t) => (t.unique_id ? [[t.unique_id, t] as const] : [])));
    const toTask = uploads.map((u) => Date.parse(tasks.get(u.uniqueId)!.task.created_at) - u.uploadedAt);
    const toApplied = uploads.map((u, i) => {
      const sent = tasks.get(u.uniqueId)!.callbacks.find((c) => c.kind === 'completed')!.attempts[0]!.at;
      return applied[i]! - Date.parse(sent);
    });
    const p = (samples: number[]) => ({ p50: Math.round(quantile(samples, 0.5)!), p99: Math.round(quantile(samples, 0.99)!) });
    return { parameters, uploadToTaskMs: p(toTask), callbackToAppliedMs: p(toApplied) };
  } finally {
    await bench.close();
  }
}

function tableClient(pipeline: LocalPipeline) {
  const { info } = pipeline;
  return documentClient(new DynamoDBClient({ region: info.region, endpoint: info.dynamodbEndpoint, credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey } }));
}

/**
 * When the record first reads as completed: looked at every POLL_MS (the figure's resolution). The record's own
 * updatedAt would not do: the callback function stamps it as it starts applying, before copying result files.
 */
async function completedAt(doc: ReturnType<typeof tableClient>, pipeline: LocalPipeline, uniqueId: string): Promise<number> {
  const until = Date.now() + SETTLE_LIMIT_MS;
  for (;;) {
    const { Item } = await doc.send(new GetCommand({ TableName: pipeline.info.tasksTable, Key: { uniqueId }, ConsistentRead: true }));
    if (Item?.status === 'completed') return Date.now();
    if (Date.now() > until) throw new Error(`${uniqueId} did not complete within ${SETTLE_LIMIT_MS / 1000} s (status ${String(Item?.status)})`);
    await sleep(POLL_MS);
  }
}
