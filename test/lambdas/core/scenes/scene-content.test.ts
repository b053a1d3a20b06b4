import { describe, expect, it } from 'vitest';
import { checkSceneContent, parseFrameManifest, resolveFrameKey } from '../../../../lambdas/core/scenes/scene-content.js';
import type { SceneRef } from '../../../../lambdas/core/scenes/scene-identity.js';
import type { ObjectHead, SceneObjects } from '../../../../lambdas/core/scenes/scene-objects.js';
import { parseConfig, RoutingSchema } from '../../../../lambdas/core/shared/config.js';

/*
 * The content check before any paid task: the .sfs header read through a ranged GET of exactly the cap plus the
 * marker, and a manifest's frames HEADed (a bounded number at a time) and named when missing or empty. The bucket
 * is an in-memory stand-in that honours the byte count of a ranged GET, as S3 does.
 */

const routing = parseConfig(RoutingSchema, { project: 'p', maxHeaderBytes: 1024, maxManifestBytes: 1024, maxFrames: 40 }, 'routing');

interface Stored {
  body: Uint8Array;
  versionId?: string;
  eTag?: string;
}

function bucketOf(objects: Record<string, Stored>, options: { headDelayMs?: number; failReads?: Error } = {}) {
  const heads: string[] = [];
  let inFlight = 0;
  const stats = { heads, maxInFlight: 0, ranges: [] as number[] };
  const store: SceneObjects = {
    async head(ref): Promise<ObjectHead> {
      heads.push(ref.key);
      inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, options.headDelayMs ?? 0));
      inFlight--;
      const o = objects[ref.key];
      return o ? { exists: true, size: o.body.length, ...(o.versionId ? { versionId: o.versionId } : {}), ...(o.eTag ? { eTag: o.eTag } : {}) } : { exists: false };
    },
    async readPrefix(ref, bytes) {
      if (options.failReads) throw options.failReads;
      stats.ranges.push(bytes);
      const body = objects[ref.key]!.body.subarray(0, bytes);
      return (async function* () {
        yield body;
      })();
    },
    async presign(ref: SceneRef) {
      return { url: `https://s3.test/${ref.key}` };
    },
  };
  return { store, stats };
}

/** An .sfs whose JSON header is padded with spaces to exactly `headerBytes`, then the 4-byte marker. */
function sfsWithHeader(headerBytes: number, binary: number[] = [0, 0, 0, 0]): Uint8Array {
  const json = Buffer.from('{"version":"1.0","sensors":[]}');
  const header = Buffer.alloc(headerBytes, 0x20);
  json.copy(header);
  return Buffer.concat([header, Buffer.from(binary)]);
}

const checkSfs = (body: Uint8Array, options: { size?: number; failReads?: Error } = {}) => {
  const { store, stats } = bucketOf({ 's.sfs': { body } }, options);
  const result = checkSceneContent({ bucket: 'b', key: 's.sfs' }, 'sensor_fusion', { exists: true, size: options.size ?? body.length }, store, routing);
  return { result, stats };
};

describe('checking an .sfs upload', () => {
  it('reads exactly the header cap plus the marker, and accepts a header that fills the cap', async () => {
    const { result, stats } = checkSfs(sfsWithHeader(1024));
    expect(await result).toStrictEqual({ ok: true, sceneFormat: 'sensor_fusion', attachments: [{ bucket: 'b', key: 's.sfs' }] });
    expect(stats.ranges).toEqual([1028]);
  });

  it("refuses a header past the route's cap by naming the cap", async () => {
    const { result } = checkSfs(sfsWithHeader(1028));
    expect(await result).toStrictEqual({ ok: false, reason: 'not an .sfs scene: no zero byte within the first 1024 bytes (the header size cap)' });
  });

  it('checks the items against the size HEAD reported', async () => {
    const body = sfsWithHeader(1024);
    const { result } = checkSfs(body, { size: 1026 });
    expect(await result).toStrictEqual({ ok: false, reason: "not an .sfs scene: the file ends before the binary section's 4-byte marker does (truncated upload?)" });
  });

  it('passes a failing read on (to be retried), rather than calling the upload invalid', async () => {
    const { result } = checkSfs(sfsWithHeader(1024), { failReads: new Error('socket hang up') });
    await expect(result).rejects.toThrow('socket hang up');
  });
});

const manifest = (frames: unknown[]) => Buffer.from(JSON.stringify({ frames }));
const frame = (versionId?: string, eTag?: string): Stored => ({ body: Buffer.from('{}'), ...(versionId ? { versionId } : {}), ...(eTag ? { eTag } : {}) });

async function checkManifest(key: string, objects: Record<string, Stored>, options: { headDelayMs?: number } = {}) {
  const { store, stats } = bucketOf(objects, options);
  const size = objects[key]!.body.length;
  const result = await checkSceneContent({ bucket: 'b', key, versionId: 'mv' }, 'split_base64', { exists: true, size }, store, routing);
  return { result, stats };
}

describe('checking a frame manifest', () => {
  it('attaches the frames in order, each pinned to the version and ETag HEAD saw, and nothing it did not see', async () => {
    const { result, stats } = await checkManifest('d/m.frames.json', {
      'd/m.frames.json': { body: manifest(['0.json', '1.json', '2.json']) },
      'd/0.json': frame('v0', 'e0'),
      'd/1.json': frame(undefined, 'e1'),
      'd/2.json': frame(),
    });
    expect(result).toStrictEqual({
      ok: true,
      sceneFormat: 'split_base64',
      attachments: [
        { bucket: 'b', key: 'd/0.json', versionId: 'v0', eTag: 'e0' },
        { bucket: 'b', key: 'd/1.json', eTag: 'e1' },
        { bucket: 'b', key: 'd/2.json' },
      ],
      frameCount: 3,
    });
    expect(stats.heads.sort()).toEqual(['d/0.json', 'd/1.json', 'd/2.json']);
  });

  it('HEADs at most 16 frames at a time, each once', async () => {
    const names = Array.from({ length: 40 }, (_, i) => `${i}.json`);
    const objects: Record<string, Stored> = { 'd/m.frames.json': { body: manifest(names) } };
    for (const n of names) objects[`d/${n}`] = frame();
    const { result, stats } = await checkManifest('d/m.frames.json', objects, { headDelayMs: 2 });
    expect(result.ok).toBe(true);
    expect(stats.maxInFlight).toBe(16);
    expect(stats.heads).toHaveLength(40);
  });

  it('names only the empty frames when none is missing', async () => {
    const { result } = await checkManifest('d/m.frames.json', {
      'd/m.frames.json': { body: manifest(['a.json', 'b.json']) },
      'd/a.json': frame(),
      'd/b.json': { body: new Uint8Array(0) },
    });
    expect(result).toStrictEqual({ ok: false, reason: 'frames missing or empty — 1 empty: d/b.json' });
  });

  it('names ten missing frames in full and counts the ones past ten', async () => {
    const ten = Array.from({ length: 10 }, (_, i) => `${i}.json`);
    const named = ten.map((n) => `d/${n}`).join(', ');
    const exactlyTen = await checkManifest('d/m.frames.json', { 'd/m.frames.json': { body: manifest(ten) } });
    expect(exactlyTen.result).toStrictEqual({ ok: false, reason: `frames missing or empty — 10 missing: ${named}` });
    const twelve = await checkManifest('d/m.frames.json', { 'd/m.frames.json': { body: manifest([...ten, 'x.json', 'y.json']) }, 'd/y.json': { body: new Uint8Array(0) } });
    expect(twelve.result).toStrictEqual({ ok: false, reason: `frames missing or empty — 11 missing: ${named}, and 1 more; 1 empty: d/y.json` });
  });

  it('clips a long frame key in the reason', async () => {
    const long = `${'k'.repeat(200)}.json`;
    const { result } = await checkManifest('d/m.frames.json', { 'd/m.frames.json': { body: manifest([long]) } });
    expect(result).toStrictEqual({ ok: false, reason: `frames missing or empty — 1 missing: d/${'k'.repeat(117)}…` });
  });

  it('accepts a manifest exactly at the size limit and refuses one a byte larger', async () => {
    const padded = (bytes: number) => {
      const text = Buffer.alloc(bytes, 0x20);
      manifest(['a.json']).copy(text);
      return text;
    };
    const atLimit = await checkManifest('d/m.frames.json', { 'd/m.frames.json': { body: padded(1024) }, 'd/a.json': frame() });
    expect(atLimit.result.ok).toBe(true);
    const over = await checkManifest('d/m.frames.json', { 'd/m.frames.json': { body: padded(1025) }, 'd/a.json': frame() });
    expect(over.result).toStrictEqual({ ok: false, reason: 'the frame manifest is 1025 bytes; at most 1024 are allowed' });
  });

  it.each(['d//m.frames.json', '/d/m.frames.json'])('refuses a manifest under a key with an empty segment: %s', async (key) => {
    const { result, stats } = await checkManifest(key, { [key]: { body: manifest(['a.json']) } });
    expect(result).toStrictEqual({ ok: false, reason: "the frame manifest's key has an empty path segment ('//' or a leading '/'); upload it under a plain folder path" });
    expect(stats.heads).toEqual([]);
  });
});

describe('manifest entries', () => {
  it('accepts exactly the frame limit, and says what is wrong with each bad entry', () => {
    const forty = Array.from({ length: 40 }, (_, i) => `${i}.json`);
    expect(parseFrameManifest(JSON.stringify({ frames: forty }), 'd/m.frames.json', 40, 'd/')).toEqual({ frames: forty.map((n) => `d/${n}`) });
    expect(parseFrameManifest('{"frames":["a.json",3,""]}', 'd/m.frames.json', 40, 'd/')).toEqual({
      problem: 'the frame manifest is not {"frames": ["<key>", …]}: 2 of 3 entries are invalid: frames[1]: expected a key (string); frames[2]: must not be empty',
    });
    expect(parseFrameManifest('{"frames":3}', 'd/m.frames.json', 40, 'd/')).toEqual({ problem: 'the frame manifest is not {"frames": ["<key>", …]}: frames: expected an array of frame keys' });
    expect(parseFrameManifest('{"frames":', 'd/m.frames.json', 40, 'd/')).toEqual({ problem: 'the frame manifest is not valid JSON; expected {"frames": ["<key>", …]}' });
  });

  it("names the bucket as the scope of a manifest at the bucket's root", () => {
    expect(parseFrameManifest('{"frames":["../a.json"]}', 'm.frames.json', 40, '')).toEqual({
      problem: 'frames[0] "../a.json" is not a key inside the bucket; frames must stay within the manifest\'s bucket',
    });
  });

  it('refuses URL schemes in any case, and a NUL, but takes a colon later in a key as part of its name', () => {
    for (const entry of ['S3:a.json', 'C:a.json', 'git+ssh:a.json', 'x-y.z:a.json', 'a\0b.json', 'a\\b.json']) {
      expect(resolveFrameKey('d/m.frames.json', entry, 'd/'), JSON.stringify(entry)).toBeUndefined();
    }
    expect(resolveFrameKey('d/m.frames.json', 'f/t:12.json', 'd/')).toBe('d/f/t:12.json');
    expect(resolveFrameKey('d/m.frames.json', '1a:b.json', 'd/')).toBe('d/1a:b.json');
    expect(resolveFrameKey('d/m.frames.json', 'a_b:c.json', 'd/')).toBe('d/a_b:c.json');
  });

  it('refuses climbing above the root through "." or a leading "/", and a key that is the scope itself', () => {
    expect(resolveFrameKey('m.frames.json', './../x.json', '')).toBeUndefined();
    expect(resolveFrameKey('m.frames.json', '/../x.json', '')).toBeUndefined();
    expect(resolveFrameKey('m.frames.json', './x.json', '')).toBe('x.json');
    expect(resolveFrameKey('d/m.frames.json', 'x', 'd/x')).toBeUndefined();
  });

  it('lets a relative entry go down and back up, but never above the root a leading "/" starts from', () => {
    expect(resolveFrameKey('m.frames.json', 'a/../x.json', '')).toBe('x.json');
    expect(resolveFrameKey('d/m.frames.json', 'e/f/../../../d/x.json', 'd/')).toBe('d/x.json');
    // '/' is the scope's root: nothing lies above it, not even on the way back into the scope.
    expect(resolveFrameKey('d/m.frames.json', '/../d/x.json', 'd/')).toBeUndefined();
    expect(resolveFrameKey('d/e/m.frames.json', '/e/../../d/x.json', 'd/')).toBeUndefined();
  });

  it('takes any other name as it is, spaces and punctuation included', () => {
    for (const name of ['a b.json', 'x!', '#1 (copy).json']) {
      expect(resolveFrameKey('m.frames.json', name, ''), name).toBe(name);
      expect(resolveFrameKey('d/m.frames.json', name, 'd/'), name).toBe(`d/${name}`);
    }
  });
});
