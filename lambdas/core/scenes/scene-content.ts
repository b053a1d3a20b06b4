import { posix } from 'node:path';
import * as z from 'zod/mini';
import type { Routing } from '../shared/config.js';
import { routeFor } from './routing.js';
import { checkAgainst, checkEach, clip, quote, summarizeProblems } from '../shared/validation.js';
import type { SceneFormat } from '../scale/schemas.js';
import type { SceneRef } from './scene-identity.js';
import type { ObjectHead, SceneObjects } from './scene-objects.js';
import { SFS_BINARY_MARKER_BYTES } from './sfs/format.js';
import { readSfsHeader, SfsFormatError } from './sfs/reader.js';

/** What a checked upload gives Scale: the objects to attach, in order, and how Scale should read them. */
export type SceneContent =
  | { ok: true; sceneFormat: SceneFormat; attachments: SceneRef[]; frameCount?: number }
  | { ok: false; reason: string };

/** HEADs of frames run this many at a time. */
const FRAME_HEAD_CONCURRENCY = 16;
/** A rejection names at most this many missing or empty frames, then counts the rest. */
const NAMED_FRAMES = 10;

export function sceneFormatOf(key: string, routing: Routing): SceneFormat {
  return key.endsWith(routing.frameManifestSuffix) ? 'split_base64' : 'sensor_fusion';
}

/** Checks an upload's content before any paid task exists: a valid .sfs header, or a manifest of existing frames. */
export async function checkSceneContent(
  ref: SceneRef,
  format: SceneFormat,
  head: Extract<ObjectHead, { exists: true }>,
  objects: SceneObjects,
  routing: Routing,
): Promise<SceneContent> {
  return format === 'split_base64' ? checkFrameManifest(ref, head, objects, routing) : checkSfs(ref, head, objects, routing);
}

async function checkSfs(ref: SceneRef, head: { size: number }, objects: SceneObjects, routing: Routing): Promise<SceneContent> {
  try {
    const prefix = await objects.readPrefix(ref, routing.maxHeaderBytes + SFS_BINARY_MARKER_BYTES);
    await readSfsHeader(prefix, { fileSize: head.size, maxHeaderBytes: routing.maxHeaderBytes });
    return { ok: true, sceneFormat: 'sensor_fusion', attachments: [ref] };
  } catch (err) {
    if (err instanceof SfsFormatError) return { ok: false, reason: err.message };
    throw err;
  }
}

const ManifestSchema = z.object({ frames: z.array(z.unknown(), { error: 'expected an array of frame keys' }) });
const FrameEntrySchema = z.string({ error: 'expected a key (string)' }).check(z.minLength(1, 'must not be empty'));

/**
 * Where a manifest's frames may live: its own folder, or (widened by `frameScope: "route"`) the prefix of the
 * route it matched. Ends with '/' unless it is a route prefix that does not; '' is the bucket's root.
 */
export function frameScopeOf(manifestKey: string, routing: Routing): string {
  const folder = posix.dirname(manifestKey) === '.' ? '' : `${posix.dirname(manifestKey)}/`;
  const route = routing.frameScope === 'route' ? routeFor(manifestKey, routing).route : undefined;
  // Config refuses a route prefix that is not a folder for this scope; never widen to one all the same.
  return route?.endsWith('/') ? route : folder;
}

/**
 * Resolves a manifest entry to a key of the manifest's bucket inside `scope`: relative to the manifest's folder,
 * or to the scope's root when it starts with '/'. Undefined when it is not a key there (a URL, or a path that
 * climbs out of the scope): write access to one prefix must never expose another's objects.
 */
export function resolveFrameKey(manifestKey: string, entry: string, scope: string): string | undefined {
  // Empty segments ('a//b') are rejected rather than collapsed: 'x//y.json' is another object than 'x/y.json'.
  if (/^[a-z][a-z0-9+.-]*:/i.test(entry) || entry.includes('\\') || entry.includes('\0') || entry.includes('//')) return undefined;
  // A frame names a file: an entry ending in '.' or '..' names a folder (it would resolve to the folder's own key).
  const last = entry.split('/').at(-1);
  if (last === '.' || last === '..') return undefined;
  const base = entry.startsWith('/') ? `/${scope}` : `/${posix.dirname(manifestKey)}/`;
  const normal = posix.normalize(posix.join(base, entry));
  // Normalizing from an absolute base clamps '..' at the root, so compare against the scope, not for '..'.
  const key = normal.slice(1);
  // An empty key (the bucket's root) is the scope itself or outside it.
  if (key.endsWith('/') || !key.startsWith(scope) || key === scope) return undefined;
  // Climbing out and back in ("../own-folder/x") is fine; climbing above the bucket's root is not.
  if (climbsAboveRoot(posix.dirname(manifestKey), entry)) return undefined;
  return key;
}

function climbsAboveRoot(folder: string, entry: string): boolean {
  let depth = entry.startsWith('/') ? 0 : folder === '.' ? 0 : folder.split('/').length;
  for (const part of entry.split('/')) {
    if (part === '..') depth--;
    else if (part !== '' && part !== '.') depth++;
    if (depth < 0) return true;
  }
  return false;
}

/** Parses a manifest's text into frame keys inside `scope`, or says what is wrong with it (bounded). */
export function parseFrameManifest(text: string, manifestKey: string, maxFrames: number, scope: string): { frames: string[] } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { problem: 'the frame manifest is not valid JSON; expected {"frames": ["<key>", …]}' };
  }
  const parsed = checkAgainst(ManifestSchema, json);
  if (!parsed.ok) return { problem: `the frame manifest is not {"frames": ["<key>", …]}: ${summarizeProblems(parsed.problems)}` };
  const entries = parsed.value.frames;
  if (entries.length === 0) return { problem: 'the frame manifest lists no frames' };
  // Counted before anything else is checked, so a huge list costs nothing more.
  if (entries.length > maxFrames) return { problem: `the frame manifest lists ${entries.length} frames; at most ${maxFrames} are allowed` };
  const strings = checkEach(FrameEntrySchema, entries, 'frames');
  if (!strings.ok) return { problem: `the frame manifest is not {"frames": ["<key>", …]}: ${strings.failed} of ${entries.length} entries are invalid: ${summarizeProblems(strings.problems, undefined, strings.failed)}` };
  const frames: string[] = [];
  const seen = new Map<string, number>();
  const where = scope === '' ? 'the bucket' : `${quote(scope, 200)}`;
  for (const [i, entry] of strings.value.entries()) {
    const key = resolveFrameKey(manifestKey, entry, scope);
    if (key === undefined) return { problem: `frames[${i}] ${quote(entry, 200)} is not a key inside ${where}; frames must stay within the manifest's ${scope === '' ? 'bucket' : 'scope'}` };
    const first = seen.get(key);
    if (first !== undefined) return { problem: `frames[${i}] repeats frames[${first}] (${quote(key, 200)})` };
    seen.set(key, i);
    frames.push(key);
  }
  return { frames };
}

async function checkFrameManifest(ref: SceneRef, head: { size: number }, objects: SceneObjects, routing: Routing): Promise<SceneContent> {
  if (head.size > routing.maxManifestBytes) {
    return { ok: false, reason: `the frame manifest is ${head.size} bytes; at most ${routing.maxManifestBytes} are allowed` };
  }
  // Frame keys are resolved against the manifest's folder, which must then be a plain path.
  if (ref.key.includes('//') || ref.key.startsWith('/')) {
    return { ok: false, reason: "the frame manifest's key has an empty path segment ('//' or a leading '/'); upload it under a plain folder path" };
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of await objects.readPrefix(ref, head.size)) chunks.push(chunk);
  const manifest = parseFrameManifest(Buffer.concat(chunks).toString('utf8'), ref.key, routing.maxFrames, frameScopeOf(ref.key, routing));
  if ('problem' in manifest) return { ok: false, reason: manifest.problem };

  const heads = await mapLimited(manifest.frames, FRAME_HEAD_CONCURRENCY, (key) => objects.head({ bucket: ref.bucket, key }));
  const missing = manifest.frames.filter((_, i) => !heads[i]!.exists);
  const empty = manifest.frames.filter((_, i) => { const h = heads[i]!; return h.exists && h.size === 0; });
  if (missing.length > 0 || empty.length > 0) {
    const name = (keys: string[], what: string) =>
      keys.length === 0 ? [] : [`${keys.length} ${what}: ${keys.slice(0, NAMED_FRAMES).map((k) => clip(k, 120)).join(', ')}${keys.length > NAMED_FRAMES ? `, and ${keys.length - NAMED_FRAMES} more` : ''}`];
    return { ok: false, reason: `frames missing or empty — ${[...name(missing, 'missing'), ...name(empty, 'empty')].join('; ')}` };
  }
  const attachments = manifest.frames.map((key, i) => {
    const frame = heads[i] as Extract<ObjectHead, { exists: true }>;
    // Pinned to the version checked here, so the task sees the frames as they were at submission.
    return { bucket: ref.bucket, key, ...(frame.versionId ? { versionId: frame.versionId } : {}), ...(frame.eTag ? { eTag: frame.eTag } : {}) };
  });
  return { ok: true, sceneFormat: 'split_base64', attachments, frameCount: attachments.length };
}

async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
