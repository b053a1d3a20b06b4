/**
 * `npm start`: a one-shot tour of the pipeline, offline. Builds the bundles `cdk deploy` ships, starts every
 * stand-in, uploads a few sample scenes, follows each to its Scale result, prints a summary and stops.
 * A requested stop (SIGINT, SIGTERM) at any point closes what it started, removes its files and exits 0. Its
 * temporary folder goes at exit too; after a failure only the functions' logs stay there (the path is printed).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { documentClient } from '../lambdas/core/tasks/dynamo-task-store.js';
import { sceneUniqueId } from '../lambdas/core/scenes/scene-identity.js';
import { writeSfsFile } from '../lambdas/core/scenes/sfs/writer.js';
import type { TaskRecord } from '../lambdas/core/tasks/task-record.js';
import { TaskReader } from '../lambdas/core/tasks/task-reader.js';
import { buildBundles } from '../local/build-bundles.js';
import { startLocalPipeline, type LocalPipeline } from '../local/pipeline.js';
import { buildSampleFrame, buildSampleScene } from '../local/sample-scenes.js';

const TIME_LIMIT_MS = 60_000;
const FINAL = new Set(['completed', 'error', 'canceled', 'rejected', 'create_failed']);
const started = Date.now();
const say = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}`);

const samples = [
  { key: 'demo/drive 2026-11-28/scene 01.sfs', scene: buildSampleScene({ lidarFrames: 3, pointsPerFrame: 2_000, seed: 1 }) },
  { key: 'demo/köln/nacht+regen 100%.sfs', scene: buildSampleScene({ lidarFrames: 5, pointsPerFrame: 5_000, seed: 2 }) },
  { key: 'demo/highway/long drive.sfs', scene: buildSampleScene({ lidarFrames: 20, pointsPerFrame: 60_000, cameraImageBytes: 200_000, cameraFrames: 20, seed: 3 }) },
];

const workDir = await mkdtemp(join(tmpdir(), 'scale-sfs-demo-'));
const logFile = join(workDir, 'function-logs.jsonl');
const logs = createWriteStream(logFile);
let building: Promise<unknown> | undefined;
let starting: Promise<LocalPipeline> | undefined;
let closing: Promise<void> | undefined;
/** Closes the pipeline once, however many times it is asked (pipeline.close() returns at once when called again). */
const closePipeline = () =>
  (closing ??= (async () => {
    const pipeline = await starting?.catch(() => undefined);
    await pipeline?.close();
    await new Promise<void>((resolve) => logs.end(resolve));
  })());

let stopping = false;
async function stop(signal: NodeJS.Signals) {
  if (stopping) return;
  stopping = true;
  console.error(`${signal}: stopping the demo`);
  setTimeout(() => (console.error('could not stop within 10 s'), process.exit(1)), 10_000).unref();
  // esbuild (its own process) writes into workDir while bundling: let it finish before removing the folder.
  await building?.catch(() => undefined);
  await closePipeline();
  await rm(workDir, { recursive: true, force: true });
  process.exit(0);
}
process.on('SIGINT', (signal) => void stop(signal));
process.on('SIGTERM', (signal) => void stop(signal));

/** Runs the tour; its exit code, unless a stop was requested meanwhile (stop() then decides). */
async function tour(): Promise<number> {
  say('building the function bundles (the same esbuild options as cdk deploy)…');
  const bundles = await (building = buildBundles(join(workDir, 'bundles')));
  for (const [name, bundle] of Object.entries(bundles)) say(`  ${name}: ${(bundle.bytes / 1024).toFixed(0)} KB`);
  if (stopping) return 0;

  starting = startLocalPipeline({ workDir, bundles, logs });
  const pipeline = await starting;
  const { info } = pipeline;
  say(`pipeline up: S3 ${info.s3Endpoint}, DynamoDB ${info.dynamodbEndpoint}, Scale simulator ${info.scaleApiUrl}, callbacks ${info.callbackUrl}`);
  say(`function logs: ${logFile}`);

  let exitCode = 1;
  try {
    const aws = { region: info.region, credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey } };
    const s3 = new S3Client({ ...aws, endpoint: info.s3Endpoint, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED' });
    const reader = new TaskReader(documentClient(new DynamoDBClient({ ...aws, endpoint: info.dynamodbEndpoint })), info.tasksTable);

    const uploads = [];
    // A frame scene: three LiDAR frames and a manifest listing them (relative to its own folder), for split_base64.
    for (const i of [0, 1, 2]) {
      await s3.send(new PutObjectCommand({ Bucket: info.bucket, Key: `demo/frames/lidar/${i}.json`, Body: JSON.stringify(buildSampleFrame(i, 500)) }));
    }
    const manifestKey = 'demo/frames/drive 3 frames.frames.json';
    const manifest = await s3.send(new PutObjectCommand({ Bucket: info.bucket, Key: manifestKey, Body: JSON.stringify({ frames: ['lidar/0.json', 'lidar/1.json', 'lidar/2.json'] }) }));
    say(`uploaded s3://${info.bucket}/${manifestKey} (3 LiDAR frames)`);
    uploads.push({ key: manifestKey, uniqueId: sceneUniqueId({ bucket: info.bucket, key: manifestKey, versionId: manifest.VersionId, eTag: manifest.ETag!.replace(/"/g, '') }), last: 'not yet recorded', record: undefined as TaskRecord | undefined });

    for (const { key, scene } of samples) {
      const file = join(workDir, `scene-${uploads.length}.sfs`);
      await writeSfsFile(file, scene);
      const { size } = await stat(file);
      const put = await s3.send(new PutObjectCommand({ Bucket: info.bucket, Key: key, Body: createReadStream(file), ContentLength: size }));
      const uniqueId = sceneUniqueId({ bucket: info.bucket, key, versionId: put.VersionId, eTag: put.ETag!.replace(/"/g, '') });
      say(`uploaded s3://${info.bucket}/${key} (${(size / 1024).toFixed(0)} KB)`);
      uploads.push({ key, uniqueId, last: 'not yet recorded', record: undefined as TaskRecord | undefined });
    }

    while (!stopping && Date.now() - started < TIME_LIMIT_MS && uploads.some((u) => !FINAL.has(u.last))) {
      for (const upload of uploads) {
        const record = await reader.get(upload.uniqueId);
        if (!record || record.status === upload.last) continue;
        const frames = record.frameCount ? `, ${record.frameCount} frames` : '';
        const detail = record.taskId ? ` (task ${record.taskId}${frames})` : record.reason ? ` (${record.reason})` : '';
        say(`${upload.key}: ${upload.record ? `${upload.last} → ` : ''}${record.status}${detail}`);
        upload.last = record.status;
        upload.record = record;
      }
      await new Promise((resolve) => setTimeout(resolve, 150));
    }

    if (stopping) return 0;
    console.log('\nSummary');
    for (const { key, last, record } of uploads) {
      const where = record?.responseJson
        ? `response inline in DynamoDB (${record.responseJson.length} bytes)`
        : record?.responseRef
          ? `response in s3://${record.responseRef.bucket}/${record.responseRef.key}`
          : 'no response';
      console.log(`  ${key}\n    task ${record?.taskId ?? '-'} · ${last} · ${where}`);
      // The task events downstream jobs get, from the bus's file (the stream's pipe may be a moment behind).
      const statuses = await eventsOf(info.eventsFile, record?.uniqueId);
      console.log(`    events: ${statuses.length > 0 ? statuses.join(' → ') : 'none yet'}`);
      for (const file of record?.resultFiles ?? []) {
        console.log(`    result file: ${file.key ? `s3://${file.bucket}/${file.key} (${file.bytes} bytes, sha256 ${file.sha256?.slice(0, 12)}…)` : `not copied: ${file.error}`}`);
      }
    }
    const unfinished = uploads.filter((u) => u.last !== 'completed');
    if (unfinished.length === 0) {
      console.log(`\nAll ${uploads.length} scenes completed in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
      exitCode = 0;
    } else {
      for (const u of unfinished) console.error(`NOT COMPLETED within ${TIME_LIMIT_MS / 1000} s: ${u.key} (last state: ${u.last})`);
      console.error(`Function logs kept in ${logFile}`);
    }
  } finally {
    await closePipeline();
    if (!stopping) await removeWorkDir({ keepLogs: exitCode !== 0 });
  }
  return exitCode;
}

/** Removes the temporary work folder; after a failure, all but the functions' logs, which explain it. */
async function removeWorkDir({ keepLogs }: { keepLogs: boolean }): Promise<void> {
  if (!keepLogs) return rm(workDir, { recursive: true, force: true });
  const entries = await readdir(workDir).catch(() => []);
  for (const entry of entries) if (entry !== basename(logFile)) await rm(join(workDir, entry), { recursive: true, force: true });
}

tour().then(
  (exitCode) => {
    if (!stopping) process.exit(exitCode);
  },
  (err: unknown) => {
    // Once a stop is under way, failures of the tour (its servers are closing under it) are expected.
    if (stopping) return;
    console.error(err);
    void closePipeline()
      .then(() => removeWorkDir({ keepLogs: true }))
      .finally(() => {
        console.error(`Function logs kept in ${logFile}`);
        process.exit(1);
      });
  },
);

/** The statuses of one upload's task events on the local bus, in order. */
async function eventsOf(eventsFile: string, uniqueId: string | undefined): Promise<string[]> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const lines = (await readFile(eventsFile, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    const statuses = lines.map((line) => JSON.parse(line) as { detail: { uniqueId: string; status: string } }).filter((e) => e.detail.uniqueId === uniqueId).map((e) => e.detail.status);
    if (statuses.at(-1) === 'completed' || Date.now() > deadline) return statuses;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
