/**
 * `sfs-pipeline upload`: puts scenes into the pipeline's scenes bucket — after refusing, before anything is
 * uploaded, what the pipeline would keep but never process — frames before the manifests that name them, large
 * files in parts; with --wait, follows each scene to its final state.
 */
import { Upload } from '@aws-sdk/lib-storage';
import { Presets, SingleBar } from 'cli-progress';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { frameScopeOf, parseFrameManifest } from '../../lambdas/core/scenes/scene-content.js';
import { isRealVersionId, sceneUniqueId } from '../../lambdas/core/scenes/scene-identity.js';
import { parseConfig, RoutingSchema, SCENE_SUFFIX, type Routing } from '../../lambdas/core/shared/config.js';
import type { RegisterCommand } from '../sfs-pipeline.js';
import { followUploads, outcomeDetail, parseDuration, type FollowedUpload, type UploadedVersion } from './follow.js';
import { CliError, EXIT, formatTable, jsonLine, type CliIo } from './io.js';
import { resolveTarget, withTarget, type PipelineTarget, type TargetOptions } from './target.js';

export type ObjectKind = 'scene' | 'manifest' | 'frame';
export interface PlannedObject {
  kind: ObjectKind;
  file: string;
  key: string;
  size: number;
}
export interface UploadedObject extends PlannedObject, UploadedVersion {
  multipart: boolean;
}

/** Routing as the config schema fills it in: its defaults and its checks of the manifest suffix. */
function routingWith(frameManifestSuffix?: string): Routing {
  // The schema requires a project; the value plays no part in what upload reads (suffix, frame scope, limits).
  return parseConfig(RoutingSchema, { project: 'upload', ...(frameManifestSuffix !== undefined ? { frameManifestSuffix } : {}) }, '--manifest-suffix');
}

/** The longest key S3 stores, in bytes of UTF-8. */
const MAX_KEY_BYTES = 1024;
const UPLOAD_CONCURRENCY = 4;
/** A refusal lists this many problems, then counts the rest. */
const LISTED_PROBLEMS = 20;

interface Found {
  file: string;
  key: string;
  size: number;
  /** Found under a directory given (rather than named on the command line). */
  fromDirectory: boolean;
}

/**
 * What to upload, frames first: the notification of a manifest starts its task, which requires every frame.
 * Refuses (usage error, nothing uploaded) whatever the pipeline would keep and never process, or could not take.
 */
export async function planUpload(paths: string[], options: { prefix: string; manifestSuffix: string }, warn: (line: string) => void): Promise<PlannedObject[]> {
  const routing = routingWith(options.manifestSuffix);
  const found: Found[] = [];
  const problems: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (!info) problems.push(`${path}: no such file or directory`);
    else if (info.isDirectory()) for (const file of await filesUnder(path)) found.push({ ...file, key: options.prefix + relative(path, file.file).split(sep).join('/'), fromDirectory: true });
    else found.push({ file: path, key: options.prefix + basename(path), size: info.size, fromDirectory: false });
  }
  const suffixes = [SCENE_SUFFIX, routing.frameManifestSuffix];
  const kindOf = (key: string): ObjectKind | undefined => (key.endsWith(SCENE_SUFFIX) ? 'scene' : key.endsWith(routing.frameManifestSuffix) ? 'manifest' : undefined);
  const frameKeys = await framesNamed(found.filter((f) => kindOf(f.key) === 'manifest'), new Set(found.map((f) => f.key)), routing, warn);

  const planned = new Map<string, PlannedObject>();
  const skipped: string[] = [];
  for (const item of found) {
    const kind = frameKeys.has(item.key) ? 'frame' : kindOf(item.key);
    const wrongCase = suffixes.find((suffix) => !item.key.endsWith(suffix) && item.key.toLowerCase().endsWith(suffix.toLowerCase()));
    const earlier = planned.get(item.key);
    if (kind !== 'frame' && wrongCase) {
      const fixed = item.file.slice(0, item.file.length - wrongCase.length) + wrongCase;
      problems.push(`${item.file}: its suffix is "${item.key.slice(-wrongCase.length)}", not "${wrongCase}"; S3's notification filters are case-sensitive, so the bucket would keep the file and nothing would process it. Rename it to ${fixed}`);
    } else if (!kind && item.fromDirectory) skipped.push(item.file);
    else if (!kind) problems.push(`${item.file}: neither a scene (${SCENE_SUFFIX}) nor a frame manifest (${routing.frameManifestSuffix}), so the pipeline would never process it (frames go with their manifest: upload the manifest's folder; another manifest suffix: --manifest-suffix)`);
    else if (item.size === 0) problems.push(`${item.file}: the file is empty; the pipeline rejects empty uploads`);
    else if (Buffer.byteLength(item.key) > MAX_KEY_BYTES) problems.push(`${item.file}: its key is ${Buffer.byteLength(item.key)} bytes of UTF-8; S3 keys hold at most ${MAX_KEY_BYTES} (shorten --prefix or the path)`);
    else if (earlier && earlier.file !== item.file) problems.push(`${item.file}: its key ${item.key} is also the key of ${earlier.file}; the second upload would replace the first (upload them separately under another --prefix)`);
    else planned.set(item.key, { kind, file: item.file, key: item.key, size: item.size });
  }
  if (problems.length > 0) {
    const listed = problems.slice(0, LISTED_PROBLEMS).map((problem) => `\n  - ${problem}`).join('');
    const more = problems.length > LISTED_PROBLEMS ? `\n  … and ${problems.length - LISTED_PROBLEMS} more` : '';
    throw new CliError(`nothing was uploaded: ${problems.length} of the files cannot go to the pipeline as they are:${listed}${more}`, EXIT.usage);
  }
  if (skipped.length > 0) warn(`skipped ${skipped.length} file(s) that are neither scenes (${SCENE_SUFFIX}), frame manifests (${routing.frameManifestSuffix}) nor frames a manifest names: ${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? ', …' : ''}`);
  const objects = [...planned.values()];
  if (!objects.some((o) => o.kind !== 'frame')) throw new CliError(`no scenes to upload in ${paths.join(', ')}: no ${SCENE_SUFFIX} files or frame manifests (${routing.frameManifestSuffix}) there`, EXIT.notFound);
  return [...objects.filter((o) => o.kind === 'frame'), ...objects.filter((o) => o.kind !== 'frame')];
}

/** Every file under `dir` (recursively, following links to files but not to directories), in name order. */
async function filesUnder(dir: string): Promise<{ file: string; size: number }[]> {
  const files: { file: string; size: number }[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(path)));
    else {
      const info = await stat(path).catch(() => undefined);
      if (info?.isFile()) files.push({ file: path, size: info.size });
    }
  }
  return files;
}

/** Keys of the upload that its manifests name as frames (resolved as the pipeline resolves them); warns of the rest. */
async function framesNamed(manifests: Found[], keys: Set<string>, routing: Routing, warn: (line: string) => void): Promise<Set<string>> {
  const frames = new Set<string>();
  for (const manifest of manifests) {
    // Judged by the pipeline in the end (with the stack's limits): here only read for its frames.
    if (manifest.size === 0 || manifest.size > 16 * 1024 * 1024) continue;
    const parsed = parseFrameManifest(await readFile(manifest.file, 'utf8'), manifest.key, routing.maxFrames, frameScopeOf(manifest.key, routing));
    if ('problem' in parsed) {
      warn(`${manifest.file}: ${parsed.problem}; the pipeline will reject this manifest`);
      continue;
    }
    const absent = parsed.frames.filter((key) => !keys.has(key));
    for (const key of parsed.frames) if (keys.has(key)) frames.add(key);
    if (absent.length > 0) warn(`${manifest.file}: ${absent.length} of its ${parsed.frames.length} frames are not in this upload (e.g. ${absent[0]}); the pipeline rejects the manifest unless they are in the bucket already`);
  }
  return frames;
}

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
      throw new CliError(`could not upload ${object.file} to s3://${target.scenesBucket}/${object.key}: ${err.message}. ${uploaded.length} of ${objects.length} files were uploaded before it stopped${before}; upload the others again`);
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
would process it), a named file that is neither ${SCENE_SUFFIX} nor a manifest, an empty file, a key over 1024 bytes.

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
      if (options.prefix.startsWith('/')) throw new CliError(`--prefix ${options.prefix} starts with '/': the pipeline's keys have no leading slash (routes would never match it); drop it`, EXIT.usage);
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
            onChange: (upload, record, previous) => io.err.write(`${upload.key}: ${previous ? `${previous} → ` : ''}${record.status}${record.taskId ? ` (task ${record.taskId})` : ''}\n`),
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
        if (!options.wait) io.err.write(`follow them with: sfs-pipeline status s3://${target.scenesBucket}/<key>, or upload with --wait\n`);
      } finally {
        target.close();
      }
    });
};
