/**
 * What `sfs-pipeline upload` puts where: the files the paths name, their keys, and which are scenes, manifests and
 * frames — refusing, before anything is uploaded, what the pipeline would keep but never process, or could not take.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { frameScopeOf, parseFrameManifest } from '../../lambdas/core/scenes/scene-content.js';
import { parseConfig, RoutingSchema, SCENE_SUFFIX, type Routing } from '../../lambdas/core/shared/config.js';
import { CliError, EXIT, printable } from './io.js';

export type ObjectKind = 'scene' | 'manifest' | 'frame';
export interface PlannedObject {
  kind: ObjectKind;
  file: string;
  key: string;
  size: number;
}

/** Routing as the config schema fills it in: its defaults and its checks of the manifest suffix. */
function routingWith(frameManifestSuffix?: string): Routing {
  // The schema requires a project; the value plays no part in what upload reads (suffix, frame scope, limits).
  return parseConfig(RoutingSchema, { project: 'upload', ...(frameManifestSuffix !== undefined ? { frameManifestSuffix } : {}) }, '--manifest-suffix');
}

/** The longest key S3 stores, in bytes of UTF-8. */
const MAX_KEY_BYTES = 1024;
/** A refusal lists this many problems, then counts the rest. */
const LISTED_PROBLEMS = 20;

interface Found {
  file: string;
  key: string;
  size: number;
  /** Found under a directory given (rather than named on the command line). */
  fromDirectory: boolean;
  /** A link found under a directory that leads out of it: where it leads. */
  leadsTo?: string;
}

const LEADING_SLASH = "it starts with '/' (the pipeline's keys have none, and routes would never match it)";
const DOT_SEGMENT = "it has a '.' or '..' segment, which URLs resolve away: Scale could not download the object";
const EMPTY_SEGMENT = "it has an empty segment ('//'), which URLs collapse: Scale could not download the object";

/**
 * Why a key would not work: S3 keeps `a/../b.sfs` or `a//b.sfs` as written, but the URL Scale downloads an
 * attachment by is normalised on the way (dot segments resolved, empty ones collapsed), so the signed URL names
 * another key and the paid task can only end in error.
 */
export function keyProblem(key: string): string | undefined {
  if (key.startsWith('/')) return LEADING_SLASH;
  const segments = key.split('/');
  if (segments.some((segment) => segment === '.' || segment === '..')) return DOT_SEGMENT;
  if (segments.some((segment) => segment === '')) return EMPTY_SEGMENT;
  return undefined;
}

/**
 * Refuses a --prefix every key would inherit a problem from. Its last segment is joined to each file's name
 * (`--prefix run-` gives run-scene.sfs), so only the segments before its last '/' must be whole folder names.
 */
export function checkPrefix(prefix: string): void {
  const folders = prefix.split('/').slice(0, -1);
  const problem = prefix.startsWith('/')
    ? LEADING_SLASH
    : folders.some((segment) => segment === '.' || segment === '..')
      ? DOT_SEGMENT
      : folders.some((segment) => segment === '')
        ? EMPTY_SEGMENT
        : undefined;
  if (problem) throw new CliError(`--prefix ${printable(JSON.stringify(prefix))}: ${problem}. Give folder names separated by single slashes, e.g. --prefix drives/2026-05/`, EXIT.usage);
}

/**
 * What to upload, frames first: the notification of a manifest starts its task, which requires every frame.
 * Refuses (usage error, nothing uploaded) whatever the pipeline would keep and never process, or could not take.
 * Under a directory, a link that leads out of it is skipped with a note — or refused when a manifest names it as a
 * frame — so a folder cannot carry local files from elsewhere (/etc/…) to S3 and Scale; a file named on the
 * command line may be a link.
 */
export async function planUpload(paths: string[], options: { prefix: string; manifestSuffix: string }, warn: (line: string) => void): Promise<PlannedObject[]> {
  checkPrefix(options.prefix);
  const routing = routingWith(options.manifestSuffix);
  const found: Found[] = [];
  const problems: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (!info) problems.push(`${printable(path)}: no such file or directory`);
    else if (info.isDirectory()) for (const file of await filesUnder(path)) found.push({ ...file, key: options.prefix + relative(path, file.file).split(sep).join('/'), fromDirectory: true });
    else found.push({ file: path, key: options.prefix + basename(path), size: info.size, fromDirectory: false });
  }
  const suffixes = [SCENE_SUFFIX, routing.frameManifestSuffix];
  const kindOf = (key: string): ObjectKind | undefined => (key.endsWith(SCENE_SUFFIX) ? 'scene' : key.endsWith(routing.frameManifestSuffix) ? 'manifest' : undefined);
  const inTree = found.filter((f) => f.leadsTo === undefined);
  // Links out of the tree are never read (not even as manifests), only looked for among the frames manifests name.
  const frameKeys = await framesNamed(inTree.filter((f) => kindOf(f.key) === 'manifest'), new Set(found.map((f) => f.key)), routing, warn);

  const planned = new Map<string, PlannedObject>();
  const skipped: string[] = [];
  const skippedLinks: string[] = [];
  for (const item of found) {
    const shown = printable(item.file);
    const kind = frameKeys.has(item.key) ? 'frame' : kindOf(item.key);
    const wrongCase = suffixes.find((suffix) => !item.key.endsWith(suffix) && item.key.toLowerCase().endsWith(suffix.toLowerCase()));
    const earlier = planned.get(item.key);
    const badKey = keyProblem(item.key);
    if (item.leadsTo !== undefined && kind === 'frame') {
      problems.push(`${shown}: a manifest names it as a frame, but it is a link to ${printable(item.leadsTo)}, outside the folder uploaded; links out of a folder are not uploaded: copy the file into the folder`);
    } else if (item.leadsTo !== undefined) skippedLinks.push(`${shown} → ${printable(item.leadsTo)}`);
    else if (kind !== 'frame' && wrongCase) {
      const fixed = item.file.slice(0, item.file.length - wrongCase.length) + wrongCase;
      problems.push(`${shown}: its suffix is "${printable(item.key.slice(-wrongCase.length))}", not "${wrongCase}"; S3's notification filters are case-sensitive, so the bucket would keep the file and nothing would process it. Rename it to ${printable(fixed)}`);
    } else if (!kind && item.fromDirectory) skipped.push(shown);
    else if (!kind) problems.push(`${shown}: neither a scene (${SCENE_SUFFIX}) nor a frame manifest (${routing.frameManifestSuffix}), so the pipeline would never process it (frames go with their manifest: upload the manifest's folder; another manifest suffix: --manifest-suffix)`);
    else if (item.size === 0) problems.push(`${shown}: the file is empty; the pipeline rejects empty uploads`);
    else if (Buffer.byteLength(item.key) > MAX_KEY_BYTES) problems.push(`${shown}: its key is ${Buffer.byteLength(item.key)} bytes of UTF-8; S3 keys hold at most ${MAX_KEY_BYTES} (shorten --prefix or the path)`);
    else if (badKey) problems.push(`${shown}: its key ${printable(item.key)} cannot be used: ${badKey}`);
    else if (earlier && earlier.file !== item.file) problems.push(`${shown}: its key ${printable(item.key)} is also the key of ${printable(earlier.file)}; the second upload would replace the first (upload them separately under another --prefix)`);
    else planned.set(item.key, { kind, file: item.file, key: item.key, size: item.size });
  }
  if (problems.length > 0) {
    const listed = problems.slice(0, LISTED_PROBLEMS).map((problem) => `\n  - ${problem}`).join('');
    const more = problems.length > LISTED_PROBLEMS ? `\n  … and ${problems.length - LISTED_PROBLEMS} more` : '';
    throw new CliError(`nothing was uploaded: ${problems.length} of the files cannot go to the pipeline as they are:${listed}${more}`, EXIT.usage);
  }
  if (skippedLinks.length > 0) warn(`skipped ${skippedLinks.length} link(s) leading out of the folder uploaded (only files inside it go up): ${listed(skippedLinks)}`);
  if (skipped.length > 0) warn(`skipped ${skipped.length} file(s) that are neither scenes (${SCENE_SUFFIX}), frame manifests (${routing.frameManifestSuffix}) nor frames a manifest names: ${listed(skipped)}`);
  const objects = [...planned.values()];
  if (!objects.some((o) => o.kind !== 'frame')) throw new CliError(`no scenes to upload in ${printable(paths.join(', '))}: no ${SCENE_SUFFIX} files or frame manifests (${routing.frameManifestSuffix}) there`, EXIT.notFound);
  return [...objects.filter((o) => o.kind === 'frame'), ...objects.filter((o) => o.kind !== 'frame')];
}

const listed = (items: string[]) => `${items.slice(0, 5).join(', ')}${items.length > 5 ? ', …' : ''}`;

/**
 * Every file under `dir` (recursively, in name order), following links to files but not to directories. A link
 * whose target lies outside `dir` is returned with `leadsTo` (its target), for the caller to skip or refuse.
 */
async function filesUnder(dir: string, root?: string): Promise<Array<{ file: string; size: number; leadsTo?: string }>> {
  const top = root ?? (await realpath(dir));
  const files: Array<{ file: string; size: number; leadsTo?: string }> = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      files.push(...(await filesUnder(path, top)));
      continue;
    }
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) continue;
    const target = entry.isSymbolicLink() ? await realpath(path).catch(() => path) : undefined;
    const inside = target === undefined || target.startsWith(top.endsWith(sep) ? top : `${top}${sep}`);
    files.push({ file: path, size: info.size, ...(inside ? {} : { leadsTo: target }) });
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
      warn(`${printable(manifest.file)}: ${printable(parsed.problem)}; the pipeline will reject this manifest`);
      continue;
    }
    const absent = parsed.frames.filter((key) => !keys.has(key));
    for (const key of parsed.frames) if (keys.has(key)) frames.add(key);
    if (absent.length > 0) warn(`${printable(manifest.file)}: ${absent.length} of its ${parsed.frames.length} frames are not in this upload (e.g. ${printable(absent[0]!)}); the pipeline rejects the manifest unless they are in the bucket already`);
  }
  return frames;
}
