import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { s3ClientFor, sampleRss, startBenchPipeline, uploadScenes, type Bundles } from './pipeline-kit.js';
import { quantile, round, sleep, within } from './stats.js';

export interface BurstParameters {
  uploads: number;
  /** Scale's create requests per second (the simulator's rate limit); null: no limit at all. */
  rate: number | null;
  /** Seconds the simulator asks a refused client to wait (Retry-After). */
  retryAfterSeconds: number;
  /** Concurrent PUTs while uploading the burst. */
  uploadConcurrency: number;
  /** create-task instances (the event source's maximum concurrency). */
  maxConcurrency: number;
  /**
   * How long the simulator holds a new task before working on it (downloads, completion, callback). Scale's
   * labelling takes hours, so no callback competes with a burst of creations there; locally the simulator would
   * complete tasks within a second and its callbacks would share the emulators' one process with the burst.
   */
  scaleStartDelayMs: number;
  /** One Scale rate shared by the create-task instances (sharedRateLimit), or each instance its own. */
  flowControl: 'shared' | 'per instance';
}

export interface BurstFigures {
  parameters: BurstParameters;
  /** From the first upload until every upload has a task at Scale (the tasks' own created_at). */
  wallSeconds: number;
  /** N / R: the time Scale's limit alone needs; null without a limit. */
  boundSeconds: number | null;
  ratio: number | null;
  /** Tasks created per second over the wall time. */
  tasksPerSecond: number;
  /** Scale's own counts: every API request it answered, and those answered 429. */
  scaleRequests: number;
  rateLimited: number;
  share429: number;
  /** Uploads with more than one Scale task; uploads with none once the pipeline is idle. */
  duplicates: number;
  lost: number;
  deadLettered: number;
  /** Upload answered → task created at Scale, over every upload (the simulator adds no latency here). */
  uploadToTaskMs: { p50: number; p99: number };
  /** Deliveries of ingest messages (a failed one comes back after the visibility timeout). */
  deliveries: number;
  /** Peak RSS of each function instance during the burst, MB. */
  peakRssMb: Record<string, number[]>;
}

const SETTLE_LIMIT_MS = 30_000;

/**
 * One burst on a fresh local pipeline: N uploads as fast as S3 takes them while the Scale simulator allows R
 * API requests in any one-second window, timed until every upload has its task.
 */
export async function runBurst(parameters: BurstParameters, bundles: Bundles, workDir: string, log: (line: string) => void): Promise<BurstFigures> {
  const { uploads: count, rate, retryAfterSeconds } = parameters;
  const rateLimit = rate === null ? null : { requestsPerSecond: rate, retryAfterSeconds };
  const simulator = { rateLimit, startDelayMs: parameters.scaleStartDelayMs };
  const config = { maxConcurrency: parameters.maxConcurrency, sharedRateLimit: parameters.flowControl === 'shared' };
  const bench = await startBenchPipeline(workDir, bundles, { simulator, config });
  const { pipeline } = bench;
  const rss = sampleRss({ 'create-task': pipeline.pools.createTask, callback: pipeline.pools.callback, 'callback-auth': pipeline.pools.callbackAuth, 'task-events': pipeline.pools.taskEvents });
  try {
    const s3 = s3ClientFor(pipeline);
    const started = Date.now();
    const uploads = await uploadScenes(pipeline, s3, `burst-${count}-${rate ?? 'unlimited'}`, count, parameters.uploadConcurrency);
    log(`  uploaded ${count} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const wanted = new Set(uploads.map((u) => u.uniqueId));
    const firstTaskAt = new Map<string, number>();
    const taskCount = new Map<string, number>();
    const refresh = () => {
      firstTaskAt.clear();
      taskCount.clear();
      for (const { unique_id, task } of pipeline.scale.state().tasks) {
        if (!unique_id || !wanted.has(unique_id)) continue;
        const created = Date.parse(task.created_at);
        firstTaskAt.set(unique_id, Math.min(created, firstTaskAt.get(unique_id) ?? Infinity));
        taskCount.set(unique_id, (taskCount.get(unique_id) ?? 0) + 1);
      }
    };
    // Until every upload has a task, or nothing moves any more (then the missing ones are lost).
    let lastProgress = Date.now();
    let seen = 0;
    for (;;) {
      refresh();
      if (firstTaskAt.size === wanted.size) break;
      if (firstTaskAt.size > seen) {
        seen = firstTaskAt.size;
        lastProgress = Date.now();
      }
      if (Date.now() - lastProgress > SETTLE_LIMIT_MS) break;
      // The wall time comes from the tasks' own created_at: looking seldom costs no precision, and each look copies
      // the simulator's whole state in the process that runs every emulator.
      await sleep(1_000);
    }
    const counts = pipeline.scale.state().requests;
    const finished = Math.max(...firstTaskAt.values());
    // Then let every delivery end, so a late duplicate would be counted too.
    await within(pipeline.queue.idle(), SETTLE_LIMIT_MS);
    refresh();
    const wallSeconds = (finished - started) / 1000;
    const boundSeconds = rate === null ? null : count / rate;
    const deadLettered = (await readFile(pipeline.info.deadLetterFile, 'utf8')).split('\n').filter((l) => l.trim()).length;
    const latencies = uploads.flatMap((u) => (firstTaskAt.has(u.uniqueId) ? [firstTaskAt.get(u.uniqueId)! - u.uploadedAt] : []));
    return {
      parameters,
      wallSeconds: round(wallSeconds),
      boundSeconds,
      ratio: boundSeconds === null ? null : round(wallSeconds / boundSeconds, 3),
      tasksPerSecond: round(firstTaskAt.size / wallSeconds, 1),
      scaleRequests: counts.total,
      rateLimited: counts.rateLimited,
      share429: round(counts.total === 0 ? 0 : counts.rateLimited / counts.total, 4),
      duplicates: [...taskCount.values()].filter((n) => n > 1).length,
      lost: count - firstTaskAt.size,
      deadLettered,
      uploadToTaskMs: { p50: Math.round(quantile(latencies, 0.5) ?? NaN), p99: Math.round(quantile(latencies, 0.99) ?? NaN) },
      deliveries: pipeline.queue.stats.received,
      peakRssMb: await rss.stop(),
    };
  } finally {
    await rss.stop();
    await bench.close();
  }
}

/** Where a burst's pipeline keeps its data and logs. */
export const burstDir = (root: string, p: BurstParameters) => join(root, `burst-${p.uploads}-${p.rate ?? 'unlimited'}-${p.flowControl.replace(' ', '-')}`);
