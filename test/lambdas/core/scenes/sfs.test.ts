import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSfsHeader, readSfsHeader, SfsFormatError } from '../../../../lambdas/core/scenes/sfs/reader.js';
import { encodeSfs, encodeSfsToBuffer, writeSfsFile } from '../../../../lambdas/core/scenes/sfs/writer.js';
import { buildSampleScene } from '../../../../local/sample-scenes.js';

const dir = await mkdtemp(join(tmpdir(), 'sfs-test-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

function fileWithHeader(headerJson: string, binary: Uint8Array = new Uint8Array(4)): Buffer {
  const json = Buffer.from(headerJson, 'utf8');
  const padded = Buffer.alloc(Math.ceil(json.length / 4) * 4, 0x20);
  json.copy(padded);
  return Buffer.concat([padded, binary]);
}

/** Yields `bytes` in chunks and counts how much the consumer pulled. */
function countingStream(bytes: Uint8Array, chunkSize: number) {
  const counter = { pulled: 0 };
  async function* gen() {
    for (let i = 0; i < bytes.length; i += chunkSize) {
      const chunk = bytes.subarray(i, i + chunkSize);
      counter.pulled += chunk.length;
      yield chunk;
    }
  }
  return { stream: gen(), counter };
}

describe('SFS round trip', () => {
  it('writes a scene whose header, padding, marker and $items offsets read back exactly', () => {
    const scene = buildSampleScene({ lidarFrames: 3, pointsPerFrame: 10, cameraImageBytes: 33 });
    const file = encodeSfsToBuffer(scene);
    const { header, binaryStart, items } = parseSfsHeader(file, { fileSize: file.length });

    expect(binaryStart % 4).toBe(0);
    expect([...file.subarray(binaryStart, binaryStart + 4)]).toEqual([0, 0, 0, 0]);
    expect(header.version).toBe('1.0');
    expect(header.sensors.map((s) => [s.id, s.type])).toEqual([['lidar', 'lidar'], ['cam_front', 'camera']]);

    const sensors = scene.sensors as Array<Record<string, unknown>>;
    const lidarFrames = sensors[0]!.frames as Array<{ points: { positions: Float32Array; intensities: Uint8Array } }>;
    const positionsItem = items.find((i) => i.keys.join('/') === 'sensors/0/frames/2/points/positions');
    expect(positionsItem).toMatchObject({ dtype: 'float32', length: 10 * 3 * 4, shape: [10, 3] });
    const start = binaryStart + positionsItem!.offset;
    const copy = new Uint8Array(file.subarray(start, start + positionsItem!.length));
    expect(new Float32Array(copy.buffer)).toEqual(lidarFrames[2]!.points.positions);

    const imageItem = items.find((i) => i.keys.join('/') === 'sensors/1/images/0/content');
    expect(imageItem).toMatchObject({ dtype: 'bytes', length: 33 });
    const image = file.subarray(binaryStart + imageItem!.offset, binaryStart + imageItem!.offset + 33);
    expect(Buffer.compare(image, Buffer.from((sensors[1]!.images as Array<{ content: Uint8Array }>)[0]!.content))).toBe(0);

    // Every binary value is "" in the JSON and every item lies inside the file.
    const rawJson = JSON.parse(file.subarray(0, binaryStart).toString('utf8'));
    expect(rawJson.sensors[0].frames[0].points.positions).toBe('');
    // Every typed array and byte string of the scene is an item: the loop below checks each of them.
    const binaryValues = (value: unknown): number =>
      ArrayBuffer.isView(value) ? 1 : value !== null && typeof value === 'object' ? Object.values(value).reduce((n: number, v) => n + binaryValues(v), 0) : 0;
    expect(binaryValues(scene)).toBeGreaterThan(6);
    expect(items).toHaveLength(binaryValues(scene));
    for (const item of items) expect(binaryStart + item.offset + item.length).toBeLessThanOrEqual(file.length);
  });

  it('streams a tens-of-MB scene to disk and reads its header from the first bytes only', async () => {
    const path = join(dir, 'large.sfs');
    const scene = buildSampleScene({ lidarFrames: 20, pointsPerFrame: 130_000, cameraImageBytes: 200_000 });
    const encoded = await writeSfsFile(path, scene);
    const { size } = await stat(path);
    expect(size).toBe(encoded.size);
    expect(size).toBeGreaterThan(30 * 1024 * 1024);

    let pulled = 0;
    const source = createReadStream(path, { highWaterMark: 16 * 1024 });
    source.on('data', (c) => (pulled += c.length));
    const info = await readSfsHeader(source, { fileSize: size });
    source.destroy();
    expect(info.items).toHaveLength(20 * 2 + 4 + 1);
    expect(info.header.sensors).toHaveLength(2);
    expect(pulled).toBeLessThan(info.binaryStart + 64 * 1024);
  });

  it('writes an item-less scene with just the 4-byte marker', () => {
    const file = encodeSfsToBuffer({ version: '1.0', sensors: [] });
    const { binaryStart, items } = parseSfsHeader(file, { fileSize: file.length });
    expect(items).toEqual([]);
    expect(file.length).toBe(binaryStart + 4);
  });

  it('describes the encoded layout without copying the arrays', () => {
    const positions = new Float32Array([1, 2, 3]);
    const chunks = [...encodeSfs({ version: '1.0', sensors: [{ id: 1, type: 'points', positions }] }).chunks()];
    expect(chunks.some((c) => c.buffer === positions.buffer)).toBe(true);
  });
});

describe('SFS header validation', () => {
  const reject = (file: Uint8Array, message: RegExp | string, options = {}) =>
    expect(() => parseSfsHeader(file, { fileSize: file.length, ...options })).toThrowError(
      expect.objectContaining({ name: 'SfsFormatError', message: typeof message === 'string' ? expect.stringContaining(message) : expect.stringMatching(message) }),
    );

  it('rejects a file with no zero byte within the cap', () => {
    const file = Buffer.alloc(2048, 0x20);
    reject(file, 'no zero byte within the first 1024 bytes (the header size cap)', { maxHeaderBytes: 1024 });
  });

  it('rejects a file that ends before its header does', () => {
    reject(Buffer.from('{"version":"1.0"', 'utf8'), 'file ends before its header does');
  });

  it('rejects a header that is not JSON', () => {
    reject(fileWithHeader('{"version": "1.0", sensors: []}'), 'not valid UTF-8 JSON');
  });

  it('rejects a header that is not UTF-8', () => {
    reject(Buffer.concat([Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), Buffer.alloc(4)]), 'not valid UTF-8 JSON');
  });

  it('rejects a header that is not padded to 4 bytes', () => {
    reject(Buffer.concat([Buffer.from('{"a":1}'), Buffer.alloc(4)]), 'not padded to a multiple of 4');
  });

  it.each([
    ['its second', [0, 1, 0, 0]],
    ['its third', [0, 0, 1, 0]],
    ['its fourth', [0, 0, 0, 1]],
  ])('rejects a binary section whose marker has %s byte set', (_name, marker) => {
    reject(fileWithHeader('{"version":"1.0","sensors":[]}', Buffer.from(marker)), 'does not begin with 4 zero bytes');
  });

  it('names the sensor without an id', () => {
    reject(fileWithHeader('{"version":"1.0","sensors":[{"id":"a","type":"lidar"},{"id":"b","type":"camera"},{"type":"radar"}]}'), 'sensors[2].id: has no id');
  });

  it('names an unknown sensor type', () => {
    reject(fileWithHeader('{"version":"1.0","sensors":[{"id":"a","type":"sonar"}]}'), 'sensors[0].type: has unknown type "sonar"');
  });

  it('requires version and sensors', () => {
    reject(fileWithHeader('{"sensors":[]}'), 'version: version is missing');
    reject(fileWithHeader('{"version":"1.0"}'), 'sensors: sensors is missing');
  });

  it('rejects an unknown time_unit', () => {
    reject(fileWithHeader('{"version":"1.0","sensors":[],"time_unit":"fortnights"}'), 'time_unit: expected one of "microseconds", "nanoseconds"');
  });

  it('rejects $items that point outside the file when its size is known', () => {
    const header = '{"version":"1.0","sensors":[],"$items":[{"keys":["a"],"offset":8,"length":100,"dtype":"float32"}]}';
    const file = fileWithHeader(header, new Uint8Array(16));
    reject(file, /\$items\[0\] \(a\) spans bytes 8\.\.108 of the binary section, which holds 16 bytes/);
    // Without the size (only a prefix was read) the same header is accepted.
    expect(parseSfsHeader(file).items).toHaveLength(1);
  });

  it('rejects an item that overlaps the 4-byte marker, and accepts one that starts right after it', () => {
    // Offsets count from the start of the binary section, whose first 4 bytes are the marker, not data.
    const itemAt = (offset: number, length: number) =>
      fileWithHeader(`{"version":"1.0","sensors":[],"$items":[{"keys":["m"],"offset":${offset},"length":${length},"dtype":"uint8"}]}`, new Uint8Array(4 + 8));
    for (const [offset, length] of [[0, 4], [0, 1], [3, 1], [2, 4], [0, 12]] as const) {
      reject(itemAt(offset, length), `$items[0] (m) spans bytes ${offset}..${offset + length} of the binary section, which holds 12 bytes`);
    }
    const fits = itemAt(4, 8);
    expect(parseSfsHeader(fits, { fileSize: fits.length }).items).toEqual([{ keys: ['m'], offset: 4, length: 8, dtype: 'uint8' }]);
  });

  it('accepts an item ending exactly at the end of the file, and rejects it one byte further', () => {
    const file = fileWithHeader('{"version":"1.0","sensors":[],"$items":[{"keys":["p"],"offset":4,"length":8,"dtype":"float32","shape":[2]}]}', new Uint8Array(4 + 8));
    expect(parseSfsHeader(file, { fileSize: file.length }).items).toHaveLength(1);
    reject(file, '$items[0] (p) spans bytes 4..12 of the binary section, which holds 11 bytes (truncated upload?)', { fileSize: file.length - 1 });
  });

  it('rejects two sensors with one id, two items at one path, and items sharing bytes', () => {
    const scene = (sensors: string, items: string, binary = 4 + 16) => fileWithHeader(`{"version":"1.0","sensors":[${sensors}],"$items":[${items}]}`, new Uint8Array(binary));
    const lidar = (id: string) => `{"id":${id},"type":"lidar"}`;
    const item = (key: string, offset: number, length: number) => `{"keys":["${key}"],"offset":${offset},"length":${length},"dtype":"uint8"}`;
    reject(scene(`${lidar('"top"')},${lidar('"top"')}`, ''), 'invalid scene header: sensors[1] has the id "top" of sensors[0]');
    reject(scene('', `${item('a', 4, 4)},${item('a', 8, 4)}`), '$items[1] (a) names the same value as $items[0]');
    reject(scene('', `${item('a', 4, 8)},${item('b', 11, 4)}`), '$items[1] (b) starts at byte 11, inside $items[0] (a, bytes 4..12)');
    // Listed out of order, overlapping all the same.
    reject(scene('', `${item('b', 8, 4)},${item('a', 4, 5)}`), '$items[0] (b) starts at byte 8, inside $items[1] (a, bytes 4..9)');
    // Adjacent items, an empty item at another's offset, and ids 1 and "1" (a number and a string) are fine.
    for (const ok of [scene(`${lidar('1')},${lidar('"1"')}`, `${item('a', 4, 8)},${item('b', 12, 8)},${item('c', 4, 0)}`)]) {
      expect(parseSfsHeader(ok, { fileSize: ok.length }).items).toHaveLength(3);
    }
    // Counted in full, named up to a few: 1,000 sensors with one id.
    const many = scene(Array.from({ length: 1_000 }, () => lidar('"x"')).join(','), '');
    reject(many, /sensors\[1\] has the id "x" of sensors\[0\];.* … and 9\d\d more problems$/);
  });

  it('rejects malformed $items', () => {
    reject(fileWithHeader('{"version":"1.0","sensors":[],"$items":[{"keys":["a"],"offset":-1,"length":1,"dtype":"float128"}]}'), /\$items\[0\]\.offset.*\$items\[0\]\.dtype/);
  });

  it('rejects an item whose bytes do not match its dtype and shape', () => {
    const item = (extra: string) => `{"version":"1.0","sensors":[],"$items":[{"keys":["p"],"offset":4,${extra}}]}`;
    reject(fileWithHeader(item('"length":24,"dtype":"float32","shape":[2,4]'), new Uint8Array(4 + 24)), '$items[0] (p) declares float32 × [2, 4] = 32 bytes but holds 24');
    reject(fileWithHeader(item('"length":6,"dtype":"float32"'), new Uint8Array(4 + 6)), '$items[0] (p) is 6 bytes, not a whole number of float32 elements (4 bytes each)');
    const fits = fileWithHeader(item('"length":24,"dtype":"float32","shape":[2,3]'), new Uint8Array(4 + 24));
    expect(parseSfsHeader(fits, { fileSize: fits.length }).items).toHaveLength(1);
  });

  it('rejects a scene cut short inside its binary section or its marker', () => {
    const scene = encodeSfsToBuffer(buildSampleScene({ pointsPerFrame: 100 }));
    const { binaryStart } = parseSfsHeader(scene, { fileSize: scene.length });
    // The upload ends a few bytes early: the last item no longer fits (HEAD tells the size; the prefix is the same).
    reject(scene, /spans bytes .* which holds \d+ bytes \(truncated upload\?\)/, { fileSize: scene.length - 3 });
    // The upload ends right after the header, inside the 4-byte marker.
    reject(scene.subarray(0, binaryStart + 2), "the file ends before the binary section's 4-byte marker does (truncated upload?)");
  });

  it('keeps its word short whatever the header holds, and never overflows the stack', () => {
    const messageOf = (file: Buffer) => {
      try {
        parseSfsHeader(file, { fileSize: file.length });
      } catch (err) {
        expect(err).toBeInstanceOf(SfsFormatError);
        return (err as Error).message;
      }
      throw new Error('accepted a hostile header');
    };
    const empties = messageOf(fileWithHeader(JSON.stringify({ version: '1.0', sensors: Array.from({ length: 50_000 }, () => ({})) })));
    expect(empties).toMatch(/^invalid scene header: 50000 of 50000 sensors are invalid: sensors\[0\]\.id: has no id; sensors\[0\]\.type: has no type; /);
    expect(empties).toMatch(/… and 499\d\d more problems$/);
    expect(Buffer.byteLength(empties)).toBeLessThanOrEqual(1200);
    const longType = messageOf(fileWithHeader(JSON.stringify({ version: '1.0', sensors: [{ id: 'a', type: 'x'.repeat(450_000) }] })));
    expect(longType).toMatch(/^invalid scene header: 1 of 1 sensors are invalid: sensors\[0\]\.type: has unknown type "x{59}…" \(expected camera/);
    expect(longType.length).toBeLessThan(300);
    const items = messageOf(fileWithHeader(JSON.stringify({ version: '1.0', sensors: [], $items: Array.from({ length: 100_000 }, () => 7) })));
    expect(items).toMatch(/^invalid scene header: 100000 of 100000 \$items are invalid: \$items\[0\]: expected object; .*… and 999\d\d more problems$/);
    const deep = messageOf(fileWithHeader(`{"version":"1.0","sensors":${'['.repeat(100_000)}${']'.repeat(100_000)}}`));
    expect(deep).toBe('invalid scene header: 1 of 1 sensors are invalid: sensors[0]: expected object');
  });

  it('enforces the cap on a stream without reading the rest', async () => {
    const file = Buffer.alloc(10 * 1024 * 1024, 0x20); // 10 MiB of "header" with no end
    const { stream, counter } = countingStream(file, 4096);
    await expect(readSfsHeader(stream, { maxHeaderBytes: 64 * 1024 })).rejects.toThrow(SfsFormatError);
    expect(counter.pulled).toBeLessThanOrEqual(64 * 1024 + 4096);
  });

  it('stops pulling once the header and marker are in', async () => {
    const file = encodeSfsToBuffer(buildSampleScene({ pointsPerFrame: 50_000 }));
    const { stream, counter } = countingStream(file, 1024);
    const info = await readSfsHeader(stream, { fileSize: file.length });
    expect(info.header.sensors).toHaveLength(2);
    expect(counter.pulled).toBeLessThanOrEqual(info.binaryStart + 4 + 1024);
    expect(counter.pulled).toBeLessThan(file.length / 10);
  });
});
