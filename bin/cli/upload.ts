/**
 * `sfs-pipeline upload`: puts scenes into the pipeline's scenes bucket — after refusing, before anything is
 * uploaded, what the pipeline would keep but never process — frames before the manifests that name them, large
 * files in parts; with --wait, follows each scene to its final state.
 */
import { Upload } from '@aws-sdk/lib-storage';
import { Presets, SingleBar } from 'cli-progress';
import { createReadStream } from 'node:fs';
import { isRealVersionId, sceneUniqueId } from '../../lambdas/core/scenes/scene-identity.js';
import { SCENE_SUFFIX } from '../../lambdas/core/shared/config.js';
import type { RegisterCommand } from '../sfs-pipeline.js';
import { followUploads, outcomeDetail, parseDuration, type FollowedUpload, type UploadedVersion } from './follow.js';
import { CliError, EXIT, formatTable, jsonLine, printable, shellQuote, type CliIo } from './io.js';
import { checkPrefix, planUpload, type PlannedObject } from './upload-plan.js';
import { resolveTarget, withTarget, type PipelineTarget, type TargetOptions } from './target.js';

export type { ObjectKind, PlannedObject } from './upload-plan.js';
export interface UploadedObject extends PlannedObject, UploadedVersion {
  multipart: boolean;
}

const UPLOAD_CONCURRENCY = 4;

/** Uploads in order (all frames before any scene or manifest), a few at a time; stops at the first failure. */
export async function uploadObjects(target: PipelineTarget, objects: PlannedObject[], io: CliIo): Promise<UploadedObject[]> {
  const uploaded: UploadedObject[] = [];
  const bar = progressBar(io, objects);
  const loaded = new Map<string, number>();
  const progress = () => bar?.update([...loaded.values()].reduce((sum, n) => sum + n, 0), { files: uploaded.length });
  const one = async (object: PlannedObject) => {
    const startedAt = new Date().toISOString();
    const upload = new Upload({ client: target.s3, params: { Bucket: target.scenesBucket, Key: object.key, Body: createReadStream(object.file), ContentLength: object.size } });
    upload.on('httpUploadProgress', (p) => (loaded.set(object.key, p.loaded ?? 0), progress()));
    const answer = await upload.done().catch((err: Error) => {
      const before = uploaded.length > 0 ? ` (${uploaded.slice(0, 10).map((u) => u.key).join(', ')}${uploaded.length > 10 ? ', …' : ''})` : '';
      throw new CliError(`could not upload ${printable(object.file)} to s3://${target.scenesBucket}/${printable(object.key)}: ${err.message}. ${uploaded.length} of ${objects.length} files were uploaded before it stopped${printable(before)}; upload the others again`);
    });
    const eTag = (answer.ETag ?? '').replace(/"/g, '');
    uploaded.push({ ...object, bucket: target.scenesBucket, eTag, startedAt, multipart: upload.uploadId !== undefined, ...(answer.VersionId ? { versionId: answer.VersionId } : {}) });
    loaded.set(object.key, object.size);
    progress();
  };
  try {
    await eachLimited(objects.filter((o) => o.kind === 'frame'), one);
    await eachLimited(objects.filter((o) => o.kind !== 'frame'), one);
  } finally {
    bar?.stop();
  }
  // In the plan's order (they finish in any order), so the output reads like the folder.
  const byKey = new Map(uploaded.map((u) => [u.key, u]));
  return objects.map((o) => byKey.get(o.key)!);
}

async function eachLimited<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  const worker = async () => {
    while (failures.length === 0 && next < items.length) await work(items[next++]!).catch((err: unknown) => void failures.push(err));
  };
  await Promise.all(Array.from({ length: Math.min(UPLOAD_CONCURRENCY, items.length) }, worker));
  if (failures.length > 0) throw failures[0];
}

/** A bar of bytes uploaded, on io.err and only on a terminal. */
function progressBar(io: CliIo, objects: PlannedObject[]): SingleBar | undefined {
  if (!io.isTTY) return undefined;
  // cli-progress draws with escape sequences written to its stream; io.err is where a terminal's stderr is.
  const stream = { isTTY: true, columns: process.stderr.columns, write: (text: string) => io.err.write(text) };
  const bar = new SingleBar(
    { stream: stream as unknown as NodeJS.WritableStream, format: 'uploading [{bar}] {percentage}% | {files}/{count} files | {mb} MB', hideCursor: true },
    Presets.shades_classic,
  );
  const total = objects.reduce((sum, o) => sum + o.size, 0);
  bar.start(total, 0, { files: 0, count: objects.length, mb: (total / 1024 / 1024).toFixed(1) });
  return bar;
}

/** One line of --json output; `status`… only with --wait, and only for scenes and manifests. */
function outputOf(object: UploadedObject, followed: FollowedUpload | undefined, waited: string) {
  const { record } = followed ?? {};
  const uniqueId = record?.uniqueId ?? (object.kind !== 'frame' && isRealVersionId(object.versionId) ? sceneUniqueId(object) : undefined);
  return {
    kind: object.kind,
    file: object.file,
    bucket: object.bucket,
    key: object.key,
    size: object.size,
    versionId: object.versionId,
    eTag: object.eTag,
    multipart: object.multipart,
    uniqueId,
    ...(followed ? { status: record?.status, taskId: record?.taskId, detail: outcomeDetail(followed, waited), timedOut: !followed.final } : {}),
  };
}

interface UploadOptions extends TargetOptions {
  prefix: string;
  manifestSuffix?: string;
  wait?: boolean;
  timeout: string;
  json?: boolean;
}

export const registerUpload: RegisterCommand = (program, context) => {
  withTarget(program.command('upload'))
    .description("Upload scenes (.sfs files, frame manifests with their frames) to the pipeline's scenes bucket; with --wait, follow each to its final state")
    .argument('<paths...>', '.sfs files, frame manifests, or directories (searched recursively)')
    .option('--prefix <prefix>', 'put before each key as is: end it with / for a folder', '')
    .option('--manifest-suffix <suffix>', "the suffix of frame manifests (default: the deployed routing.frameManifestSuffix)")
    .option('--wait', 'follow each scene until its task record is final; exit 0 only if every one completed')
    .option('--timeout <duration>', 'how long --wait waits in all: 90s, 30m, 2h', '30m')
    .option('--json', 'one JSON document per uploaded object (frames too), instead of a table')
    .addHelpText(
      'after',
      `
Keys: --prefix, then the file's name; for a directory, its path below that directory (a/b.sfs). A directory
uploads its ${SCENE_SUFFIX} files and frame manifests, and the frames its manifests name, before those manifests (a
manifest starts its task, which requires every frame); other files in it are skipped, with a note on stderr.
Files larger than 5 MiB go up in parts (multipart upload).

Refused before anything is uploaded: a suffix in the wrong case (.SFS: S3's filters are case-sensitive, nothing
would process it), a named file that is neither ${SCENE_SUFFIX} nor a manifest, an empty file, a key over 1024 bytes,
a key with a '.', '..' or empty segment (--prefix ../, a//: URLs resolve those away, so Scale could not download it).
In a directory, links that lead out of it are skipped with a note, or refused when a manifest names them as
frames (files named on the command line may be links).

--json fields: kind (scene, manifest, frame), file, bucket, key, size, versionId, eTag, multipart, uniqueId;
with --wait also status, taskId, detail (why it did not complete), timedOut.

Exit codes: 0 uploaded (with --wait: every scene completed); 1 an upload failed, or with --wait a scene ended
otherwise (rejected, error, canceled, create_failed, failed) or was still open at --timeout; 2 refused, nothing
uploaded, or a bad option; 3 no scenes in the paths given.

Examples:
  $ sfs-pipeline upload drive-0412.sfs --stack ScaleSfsPipeline --prefix incoming/2026-11/
  $ sfs-pipeline upload ./capture/ --local /tmp/pipeline.json --wait --timeout 10m
  $ sfs-pipeline upload a.sfs b.sfs --stack ScaleSfsPipeline --wait --json | jq -r 'select(.status != "completed") | .key'
`,
    )
    .action(async (paths: string[], options: UploadOptions) => {
      const { io } = context;
      const timeoutMs = parseDuration(options.timeout);
      if (timeoutMs === undefined) throw new CliError(`--timeout ${options.timeout} is not a duration: give one such as 90s, 30m or 2h`, EXIT.usage);
      checkPrefix(options.prefix);
      const target = await resolveTarget(options);
      try {
        let objects: PlannedObject[];
        try {
          const manifestSuffix = options.manifestSuffix ?? target.routing.frameManifestSuffix;
          objects = await planUpload(paths, { prefix: options.prefix, manifestSuffix }, (line) => io.err.write(`${line}\n`));
        } catch (err) {
          if ((err as Error).name === 'ConfigError') throw new CliError((err as Error).message, EXIT.usage);
          throw err;
        }
        const uploaded = await uploadObjects(target, objects, io);
        const scenes = uploaded.filter((o) => o.kind !== 'frame');
        let followed: FollowedUpload<UploadedObject>[] | undefined;
        if (options.wait) {
          io.err.write(`waiting up to ${options.timeout} for ${scenes.length} scene(s) on ${target.label}…\n`);
          followed = await followUploads(scenes, (bucket, key) => target.store.findByKey(bucket, key, 25), {
            timeoutMs,
            onChange: (upload, record, previous) => io.err.write(`${printable(upload.key)}: ${previous ? `${previous} → ` : ''}${record.status}${record.taskId ? ` (task ${printable(record.taskId)})` : ''}\n`),
          });
          if (!followed.every((item) => item.record?.status === 'completed')) context.exitCode = EXIT.failure;
        }
        const lines = uploaded.map((object) => outputOf(object, followed?.find((item) => item.upload === object), options.timeout));
        if (options.json) {
          for (const line of lines) io.out.write(jsonLine(line));
          return;
        }
        const shown = lines.filter((line) => line.kind !== 'frame');
        io.out.write(
          options.wait
            ? formatTable(['KEY', 'STATUS', 'TASK', 'DETAIL'], shown.map((l) => [l.key, l.status ?? 'not recorded', l.taskId, l.detail]))
            : formatTable(['KEY', 'KIND', 'BYTES', 'VERSION', 'UNIQUE ID'], shown.map((l) => [l.key, l.kind, l.size, l.versionId, l.uniqueId])),
        );
        const frames = uploaded.length - scenes.length;
        if (frames > 0) io.out.write(`and ${frames} frame(s), uploaded before their manifests\n`);
        if (!options.wait) io.err.write(`follow them with: sfs-pipeline status ${shellQuote(`s3://${target.scenesBucket}/`)}KEY, or upload with --wait\n`);
      } finally {
        target.close();
      }
    });
};
