import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FunctionName } from '../lib/bundling.js';
import { sceneUniqueId } from '../lambdas/core/scenes/scene-identity.js';
import { encodeSfsToBuffer } from '../lambdas/core/scenes/sfs/writer.js';
import { startLocalPipeline, type LocalPipeline, type LocalPipelineOptions } from '../local/pipeline.js';
import { buildSampleScene } from '../local/sample-scenes.js';
import { inParallel } from './stats.js';

export type Bundles = Record<FunctionName, { path: string; bytes: number }>;

/** A small but complete scene: what a burst uploads, N times under N keys. */
export const BENCH_SCENE = encodeSfsToBuffer(buildSampleScene({ lidarFrames: 2, pointsPerFrame: 64 }));

/** Starts the local pipeline for one measurement, its functions' logs in a file beside its data. */
export async function startBenchPipeline(workDir: string, bundles: Bundles, options: Partial<LocalPipelineOptions> = {}) {
  await mkdir(workDir, { recursive: true });
  const logFile = join(workDir, 'functions.log');
  const logs = createWriteStream(logFile);
  const pipeline = await startLocalPipeline({ workDir, bundles, logs, ...options });
  return {
    pipeline,
    logFile,
    async close() {
      await pipeline.close();
      await new Promise<void>((resolve) => logs.end(resolve));
    },
  };
}

export function s3ClientFor(pipeline: LocalPipeline): S3Client {
  const { info } = pipeline;
  return new S3Client({
    region: info.region,
    endpoint: info.s3Endpoint,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
    // Enough sockets for the upload concurrency; the SDK warns when it queues.
    requestHandler: { httpAgent: { maxSockets: 64 } },
  });
}

export interface Upload {
  key: string;
  uniqueId: string;
  /** Epoch ms when S3 answered the PUT (S3 notifies before it answers). */
  uploadedAt: number;
}

/** PUTs `count` copies of the bench scene under distinct keys, `concurrency` at a time; answers each upload's identity. */
export async function uploadScenes(pipeline: LocalPipeline, s3: S3Client, prefix: string, count: number, concurrency: number): Promise<Upload[]> {
  const keys = Array.from({ length: count }, (_, i) => `${prefix}/scene ${String(i).padStart(5, '0')}.sfs`);
  const answered = await inParallel(keys, concurrency, async (key) => {
    const out = await s3.send(new PutObjectCommand({ Bucket: pipeline.info.bucket, Key: key, Body: BENCH_SCENE }));
    return { key, versionId: out.VersionId, eTag: out.ETag!.replace(/"/g, ''), uploadedAt: Date.now() };
  });
  return answered.map((put) => {
    const event = pipeline.notified.find((n) => n.key === put.key && n.versionId === put.versionId && n.eventName?.startsWith('ObjectCreated:'));
    if (!event) throw new Error(`no S3 notification for ${put.key}`);
    return { key: put.key, uniqueId: sceneUniqueId(event), uploadedAt: put.uploadedAt };
  });
}

/** Peak resident set size (VmHWM) of a process in bytes, from Linux's /proc; undefined where there is none. */
export async function peakRssBytes(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const kb = status ? /^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1] : undefined;
  return kb === undefined ? undefined : Number(kb) * 1024;
}

/** Keeps the highest peak RSS seen per process of the given pools, sampling every `everyMs` until stopped. */
export function sampleRss(pools: Record<string, { pids(): number[] }>, everyMs = 500) {
  const peaks = new Map<string, Map<number, number>>();
  const sample = async () => {
    for (const [name, pool] of Object.entries(pools)) {
      const perPid = peaks.get(name) ?? new Map<number, number>();
      peaks.set(name, perPid);
      for (const pid of pool.pids()) {
        const bytes = await peakRssBytes(pid);
        if (bytes !== undefined) perPid.set(pid, Math.max(bytes, perPid.get(pid) ?? 0));
      }
    }
  };
  const timer = setInterval(() => void sample(), everyMs);
  return {
    /** Samples once more, stops, and answers the peaks in MB per function (one figure per instance). */
    async stop(): Promise<Record<string, number[]>> {
      clearInterval(timer);
      await sample();
      return Object.fromEntries([...peaks].map(([name, perPid]) => [name, [...perPid.values()].map((b) => Math.round(b / 1024 / 1024))]));
    },
  };
}
