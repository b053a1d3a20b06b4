import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPipeline, type LocalPipeline } from '../../../local/pipeline.js';
import { cli, jsonLines } from '../../helpers/cli.js';
import { clientsFor } from '../../helpers/local-pipeline.js';

const FRAMES = fileURLToPath(new URL('../../fixtures/frames/', import.meta.url));
type Point = { x: number; y: number; z: number; i: number; t: number };
type Frame = { timestamp: number; device_position: Record<string, number>; device_heading: Record<string, number>; points: Point[] };

let workDir: string;
let pipeline: LocalPipeline;
let c: ReturnType<typeof clientsFor>;
let packed: string;
let inputs: Frame[];

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'cli-pack-'));
  pipeline = await startLocalPipeline({ workDir, logs: { write: () => true } as never, visibilityTimeoutMs: 300, simulator: { completionDelayMs: 50 }, reconcileEveryMs: 3_600_000 });
  c = clientsFor(pipeline);
  const names = (await readdir(FRAMES)).sort();
  inputs = await Promise.all(names.map(async (name) => JSON.parse(await readFile(join(FRAMES, name), 'utf8')) as Frame));
  packed = join(workDir, 'drive.sfs');
}, 60_000);
afterAll(async () => {
  await pipeline?.close();
  await rm(workDir, { recursive: true, force: true });
});

/**
 * A reader written here from the format's description alone (not the product's reader): the JSON header ends at
 * the first zero byte, the binary section starts there with 4 zero bytes, items are little-endian typed arrays.
 */
function readIndependently(bytes: Buffer) {
  const binaryStart = bytes.indexOf(0);
  expect(binaryStart % 4).toBe(0);
  expect([...bytes.subarray(binaryStart, binaryStart + 4)]).toEqual([0, 0, 0, 0]);
  const header = JSON.parse(bytes.subarray(0, binaryStart).toString('utf8'));
  const items = new Map<string, { offset: number; length: number; dtype: string; shape?: number[] }>(header.$items.map((item: { keys: unknown[] }) => [item.keys.join('/'), item]));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const readers: Record<string, [number, (at: number) => number]> = {
    float32: [4, (at) => view.getFloat32(at, true)],
    float64: [8, (at) => view.getFloat64(at, true)],
    uint32: [4, (at) => view.getUint32(at, true)],
    uint8: [1, (at) => view.getUint8(at)],
  };
  const read = (path: string) => {
    const item = items.get(path)!;
    const [size, get] = readers[item.dtype]!;
    expect(binaryStart + item.offset + item.length).toBeLessThanOrEqual(bytes.length);
    const values = Array.from({ length: item.length / size }, (_, k) => get(binaryStart + item.offset + k * size));
    return { dtype: item.dtype, shape: item.shape, values };
  };
  return { header, binaryStart, items, read };
}

/** Frame files in a fresh folder of the work dir. */
async function framesDir(name: string, frames: Record<string, unknown>): Promise<string> {
  const dir = join(workDir, name);
  await mkdir(dir, { recursive: true });
  for (const [file, frame] of Object.entries(frames)) await writeFile(join(dir, file), typeof frame === 'string' ? frame : JSON.stringify(frame));
  return dir;
}
const sweep = (timestamp: number, points: unknown[] = [{ x: 1, y: 2, z: 3 }]) => ({ timestamp, device_position: { x: 0, y: 0, z: 0 }, device_heading: { x: 0, y: 0, z: 0, w: 1 }, points });

/** An .sfs made by hand: the header JSON padded with spaces, then the binary section. */
function handMade(header: object, binary: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  return Buffer.concat([json, Buffer.alloc(Math.ceil(json.length / 4) * 4 - json.length, 0x20), binary]);
}

describe('sfs-pipeline pack', () => {
  it('packs the sample frames into a scene the pipeline accepts: one Scale task, completed', async () => {
    const run = await cli('pack', FRAMES, '--out', packed);
    const size = (await stat(packed)).size;
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toBe(`wrote ${packed}: 3 frames, 12 points, ${size.toLocaleString('en-US')} bytes (lidar "lidar", microseconds 1700000000000000..1700000000200000)\n`);

    const upload = await c.put('packed/drive.sfs', await readFile(packed));
    const record = await c.settled(upload.uniqueId);
    expect(record.status).toBe('completed');
    expect(c.tasksFor(upload.uniqueId)).toHaveLength(1);
  }, 40_000);

  it('writes what an independent reader finds: float32 positions, intensities, point times, frame times, poses', async () => {
    const { header, read } = readIndependently(await readFile(packed));
    expect(header).toMatchObject({ version: '1.0', time_unit: 'microseconds', metadata: { source: 'sfs-pipeline pack' } });
    expect(header.sensors).toHaveLength(1);
    expect(header.sensors[0]).toMatchObject({ id: 'lidar', type: 'lidar', coordinates: 'world' });
    expect(header.sensors[0].frames.map((f: { timestamp: number }) => f.timestamp)).toEqual([1700000000000000, 1700000000100000, 1700000000200000]);

    inputs.forEach((input, j) => {
      const positions = read(`sensors/0/frames/${j}/points/positions`);
      expect(positions).toMatchObject({ dtype: 'float32', shape: [input.points.length, 3] });
      expect(positions.values).toEqual(input.points.flatMap((p) => [p.x, p.y, p.z].map(Math.fround)));
      expect(read(`sensors/0/frames/${j}/points/intensities`)).toEqual({ dtype: 'uint8', shape: [input.points.length], values: input.points.map((p) => p.i) });
      expect(read(`sensors/0/frames/${j}/points/timestamps`)).toEqual({ dtype: 'uint32', shape: [input.points.length], values: input.points.map((p) => p.t) });
    });
    expect(read('sensors/0/poses/timestamps')).toEqual({ dtype: 'float64', shape: [3], values: [1700000000000000, 1700000000100000, 1700000000200000] });
    // [x, y, z, qx, qy, qz, qw]: device_position, then device_heading exactly as the frames give it.
    expect(read('sensors/0/poses/values')).toEqual({
      dtype: 'float64',
      shape: [3, 7],
      values: [0, 0, 1.8, 0, 0, 0, 1, 1.5, 0.02, 1.8, 0, 0, 0.0499792, 0.9987503, 3.01, 0.09, 1.79, 0, 0, 0.0998334, 0.9950042],
    });
  });

  it('orders frames by timestamp, whatever their names or the order given, with the options asked for', async () => {
    const dir = await framesDir('unordered', { 'a.json': sweep(20), 'b.json': sweep(10, [{ x: 1, y: 1, z: 1 }, { x: 2, y: 2, z: 2 }]), 'c.json': sweep(0) });
    const out = join(workDir, 'unordered.sfs');
    const run = await cli('pack', join(dir, 'a.json'), dir, '--out', out, '--sensor-id', 'roof_lidar', '--time-unit', 'nanoseconds', '--json');
    expect(run.code).toBe(0);
    const bytes = await readFile(out);
    expect(jsonLines(run.stdout)).toEqual([{ out, frames: 3, points: 4, bytes: bytes.length, sensorId: 'roof_lidar', timeUnit: 'nanoseconds', firstTimestamp: 0, lastTimestamp: 20 }]);
    const { header, read } = readIndependently(bytes);
    expect(header.time_unit).toBe('nanoseconds');
    expect(header.sensors[0].id).toBe('roof_lidar');
    expect(header.sensors[0].frames.map((f: { timestamp: number }) => f.timestamp)).toEqual([0, 10, 20]);
    expect(read('sensors/0/frames/1/points/positions').values).toEqual([1, 1, 1, 2, 2, 2]);
  });

  it('refuses, writing nothing, a frame that is invalid, unreadable or not JSON, naming the file and field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ 'bad.json': sweep(1, [{ x: 1, y: 2, z: 3 }, { x: 1, y: 2, z: 3e39 }]) }, 'bad.json: 1 of 2 points are invalid: points[1].z: must be at most 3.4028234663852886e+38'],
      [{ 'cut.json': '{"timestamp": 1, "points": [' }, 'cut.json: not valid JSON'],
      [{ 'mixed.json': sweep(1, [{ x: 1, y: 2, z: 3, i: 5 }, { x: 1, y: 2, z: 3 }]) }, 'mixed.json: points[1].i: missing, while points[0] has one; give every point of a frame an intensity or none'],
      [{ 'one.json': sweep(7), 'two.json': sweep(7) }, 'one.json and {dir}/two.json: both have timestamp 7; each sweep needs a time of its own'],
    ];
    for (const [k, [frames, says]] of cases.entries()) {
      const [dir, out] = [join(workDir, `refused-${k}`), join(workDir, `refused-${k}.sfs`)];
      const run = await cli('pack', await framesDir(`refused-${k}`, frames), '--out', out);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`sfs-pipeline: ${dir}/`);
      expect(run.stderr).toContain(says.replace('{dir}', dir));
      expect(run.stderr).toContain('nothing was written');
      await expect(stat(out)).rejects.toThrow(/ENOENT/);
    }
  });

  it('refuses an empty folder (3), an existing --out unless --force, a missing path and bad options (2)', async () => {
    const empty = await framesDir('empty', { 'notes.txt': 'not a frame' });
    expect(await cli('pack', empty, '--out', join(workDir, 'empty.sfs'))).toMatchObject({ code: 3, stderr: expect.stringContaining('no frame files in') });
    const existing = join(workDir, 'existing.sfs');
    await writeFile(existing, 'keep me');
    expect(await cli('pack', FRAMES, '--out', existing)).toMatchObject({ code: 2, stderr: expect.stringContaining('already exists; add --force to replace it') });
    expect(await readFile(existing, 'utf8')).toBe('keep me');
    expect((await cli('pack', FRAMES, '--out', existing, '--force')).code).toBe(0);
    expect(Buffer.compare(await readFile(existing), await readFile(packed))).toBe(0);
    expect(await cli('pack', join(workDir, 'nowhere'), '--out', join(workDir, 'n.sfs'))).toMatchObject({ code: 2, stderr: expect.stringContaining('no such file or directory') });
    expect((await cli('pack', FRAMES, '--out', join(workDir, 't.sfs'), '--time-unit', 'seconds')).code).toBe(2);
    expect((await cli('pack', FRAMES, '--out', join(workDir, 's.sfs'), '--sensor-id', 'a b')).code).toBe(2);
    expect((await cli('pack', FRAMES)).code).toBe(2);
  });

  it('says what it does not pack: camera image URLs and device ids', async () => {
    const dir = await framesDir('extras', { 'f.json': { ...sweep(1, [{ x: 1, y: 2, z: 3, d: 1 }]), images: [{ image_url: 'https://example.com/0.jpg' }] } });
    const run = await cli('pack', dir, '--out', join(workDir, 'extras.sfs'));
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("note: 1 frame(s) name camera images; an .sfs embeds its images' bytes, so these URLs are not packed");
    expect(run.stderr).toContain("note: the points' device ids (d) are not packed");
  });
});

describe('sfs-pipeline inspect', () => {
  it('prints what the header declares and that the pipeline would accept it (exit 0)', async () => {
    const run = await cli('inspect', packed);
    expect(run.code).toBe(0);
    for (const line of ['version    1.0', 'time unit  microseconds', 'items      11 in $items', 'metadata   source', 'sensors    1', '  lidar  lidar  3       12      3', 'verdict    acceptable: the pipeline would create a task for it']) {
      expect(run.stdout).toContain(`${line}`);
    }
  });

  it('--json: one document with the declaration, counted from the header alone', async () => {
    const bytes = await readFile(packed);
    const { binaryStart, items } = readIndependently(bytes);
    const run = await cli('inspect', packed, '--json');
    expect(run.code).toBe(0);
    expect(jsonLines(run.stdout)).toEqual([
      {
        file: packed,
        size: bytes.length,
        acceptable: true,
        declaration: {
          version: '1.0',
          timeUnit: 'microseconds',
          sensorCount: 1,
          sensors: [{ id: 'lidar', type: 'lidar', frames: 3, points: 12, poses: 3 }],
          itemCount: 11,
          binaryStart,
          binaryBytes: bytes.length - binaryStart,
          itemsEnd: Math.max(...[...items.values()].map((i) => i.offset + i.length)),
          metadataKeys: ['source'],
        },
      },
    ]);
  });

  it('says why a corrupt file would be rejected (exit 1): truncated, garbage, not JSON, items past the end or mis-sized, empty', async () => {
    const good = await readFile(packed);
    const { binaryStart } = readIndependently(good);
    const corrupt: Array<[string, Uint8Array, string]> = [
      ['truncated.sfs', good.subarray(0, good.length - 10), `which holds ${good.length - 10 - binaryStart} bytes (truncated upload?)`],
      ['garbage.sfs', Buffer.from('hello, this is not a scene'), 'not an .sfs scene: no zero byte within the first 26 bytes (the file ends before its header does)'],
      ['not-json.sfs', Buffer.concat([Buffer.from('{"version": "1.0", '), Buffer.alloc(5, 0x20), Buffer.alloc(8)]), 'not an .sfs scene: the header is not valid UTF-8 JSON'],
      ['past-end.sfs', handMade({ version: '1.0', sensors: [], blob: '', $items: [{ keys: ['blob'], offset: 8, length: 1000, dtype: 'bytes' }] }, new Uint8Array(16)), '$items[0] (blob) spans bytes 8..1008 of the binary section, which holds 16 bytes (truncated upload?)'],
      ['mis-sized.sfs', handMade({ version: '1.0', sensors: [], p: '', $items: [{ keys: ['p'], offset: 8, length: 20, dtype: 'float32', shape: [2, 3] }] }, new Uint8Array(28)), '$items[0] (p) declares float32 × [2, 3] = 24 bytes but holds 20'],
      ['empty.sfs', new Uint8Array(0), 'the object is empty (0 bytes)'],
    ];
    for (const [name, bytes, why] of corrupt) {
      const file = join(workDir, name);
      await writeFile(file, bytes);
      const text = await cli('inspect', file);
      expect([name, text.code]).toEqual([name, 1]);
      expect(text.stdout).toMatch(/^verdict +rejected: /m);
      expect(text.stdout).toContain(why);
      const [json] = jsonLines<{ acceptable: boolean; reason: string }>((await cli('inspect', file, '--json')).stdout);
      expect(json).toMatchObject({ acceptable: false, reason: expect.stringContaining(why) });
    }
    // A truncated file still says what its header declares.
    expect((await cli('inspect', join(workDir, 'truncated.sfs'))).stdout).toContain('  lidar  lidar  3       12      3');
  });

  it('gives the very reason the pipeline records when it rejects the upload', async () => {
    const truncated = (await readFile(packed)).subarray(0, 1000);
    await writeFile(join(workDir, 'cut.sfs'), truncated);
    const [inspected] = jsonLines<{ reason: string }>((await cli('inspect', join(workDir, 'cut.sfs'), '--json')).stdout);
    const upload = await c.put('packed/truncated.sfs', truncated);
    const record = await c.settled(upload.uniqueId);
    expect(record.status).toBe('rejected');
    expect(record.reason).toBe(inspected!.reason);
    expect(c.tasksFor(upload.uniqueId)).toHaveLength(0);
  }, 30_000);

  it('reads only the header: a 3 GiB scene (a sparse file) is checked without reading its items', async () => {
    const header = { version: '1.0', sensors: [{ id: 'cam', type: 'camera', images: [{ content: '' }] }], $items: [{ keys: ['sensors', 0, 'images', 0, 'content'], offset: 8, length: 3 * 2 ** 30, dtype: 'bytes' }] };
    const start = handMade(header, new Uint8Array(8));
    const file = join(workDir, 'huge.sfs');
    const handle = await open(file, 'w');
    await handle.write(start);
    await handle.truncate(start.length + 3 * 2 ** 30);
    await handle.close();
    const run = await cli('inspect', file, '--json');
    // Reading it whole would fail outright: Node reads at most 2 GiB into one buffer.
    expect(run.code).toBe(0);
    expect(jsonLines(run.stdout)[0]).toMatchObject({ acceptable: true, size: start.length + 3 * 2 ** 30, declaration: { itemsEnd: 8 + 3 * 2 ** 30, sensors: [{ id: 'cam', type: 'camera', frames: 1, points: null, poses: null }] } });
    await rm(file);
  });

  it('applies --max-header-bytes as the stack would, and refuses usage errors (exit 2)', async () => {
    const small = await cli('inspect', packed, '--max-header-bytes', '1024');
    expect(small.code).toBe(1);
    expect(small.stdout).toContain('rejected: not an .sfs scene: no zero byte within the first 1024 bytes (the header size cap)');
    expect(await cli('inspect', join(workDir, 'missing.sfs'))).toMatchObject({ code: 2, stderr: expect.stringContaining('no such file') });
    expect((await cli('inspect', packed, '--max-header-bytes', 'lots')).code).toBe(2);
    expect((await cli('inspect')).code).toBe(2);
  });
});
