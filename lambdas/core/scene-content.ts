import { posix } from 'node:path';
import * as z from 'zod/mini';
import type { Routing } from './config.js';
import { checkAgainst } from './validation.js';
import type { SceneFormat } from './scale/schemas.js';
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

const ManifestSchema = z.object({ frames: z.array(z.string().check(z.minLength(1, 'must not be empty'))) });

/**
 * Resolves a manifest entry to a key in the manifest's bucket: a leading '/' is from the bucket's root, anything
 * else from the manifest's folder. Undefined when it is not a key of this bucket (a URL, or '..' above the root).
 */
export function resolveFrameKey(manifestKey: string, entry: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) return undefined;
  const joined = entry.startsWith('/') ? entry : posix.join(posix.dirname(manifestKey), entry);
  const normal = posix.normalize(joined).replace(/^\/+/, '');
  if (normal.startsWith('../') || normal === '..' || normal === '.' || normal === '') return undefined;
  return normal;
}

/** Parses a manifest's text into frame keys, or says what is wrong with it. */
export function parseFrameManifest(text: string, manifestKey: string, maxFrames: number): { frames: string[] } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { problem: 'the frame manifest is not valid JSON; expected {"frames": ["<key>", …]}' };
  }
  const parsed = checkAgainst(ManifestSchema, json);
  if (!parsed.ok) return { problem: `the frame manifest is not {"frames": ["<key>", …]}: ${parsed.problems.join('; ')}` };
  const entries = parsed.value.frames;
  if (entries.length === 0) return { problem: 'the frame manifest lists no frames' };
  if (entries.length > maxFrames) return { problem: `the frame manifest lists ${entries.length} frames; at most ${maxFrames} are allowed` };
  const frames: string[] = [];
  const seen = new Map<string, number>();
  for (const [i, entry] of entries.entries()) {
    const key = resolveFrameKey(manifestKey, entry);
    if (key === undefined) return { problem: `frames[${i}] ${JSON.stringify(entry)} is not a key in the manifest's bucket` };
    const first = seen.get(key);
    if (first !== undefined) return { problem: `frames[${i}] repeats frames[${first}] (${key})` };
    seen.set(key, i);
    frames.push(key);
  }
  return { frames };
}

async function checkFrameManifest(ref: SceneRef, head: { size: number }, objects: SceneObjects, routing: Routing): Promise<SceneContent> {
  if (head.size > routing.maxManifestBytes) {
    return { ok: false, reason: `the frame manifest is ${head.size} bytes; at most ${routing.maxManifestBytes} are allowed` };
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of await objects.readPrefix(ref, head.size)) chunks.push(chunk);
  const manifest = parseFrameManifest(Buffer.concat(chunks).toString('utf8'), ref.key, routing.maxFrames);
  if ('problem' in manifest) return { ok: false, reason: manifest.problem };

  const heads = await mapLimited(manifest.frames, FRAME_HEAD_CONCURRENCY, (key) => objects.head({ bucket: ref.bucket, key }));
  const missing = manifest.frames.filter((_, i) => !heads[i]!.exists);
  const empty = manifest.frames.filter((_, i) => { const h = heads[i]!; return h.exists && h.size === 0; });
  if (missing.length > 0 || empty.length > 0) {
    const name = (keys: string[], what: string) =>
      keys.length === 0 ? [] : [`${keys.length} ${what}: ${keys.slice(0, NAMED_FRAMES).join(', ')}${keys.length > NAMED_FRAMES ? `, and ${keys.length - NAMED_FRAMES} more` : ''}`];
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
