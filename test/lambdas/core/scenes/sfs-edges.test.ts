import { describe, expect, it } from 'vitest';
import { parseSfsHeader, readSfsHeader } from '../../../../lambdas/core/scenes/sfs/reader.js';
import { encodeSfs, encodeSfsToBuffer } from '../../../../lambdas/core/scenes/sfs/writer.js';
import { asyncReasonOf, fileOf, reasonOf } from './sfs-bytes.js';

/*
 * Header parsing at its exact bounds: the size cap, the end of a short prefix, the marker, the item layout. Files
 * are built byte by byte (sfs-bytes.ts), never by the product's writer, and every reason is compared whole.
 */

const ascii = (text: string) => Buffer.from(text, 'latin1');

/** One byte per chunk, counting what the reader pulled: the finest grain a stream can have. */
function byteStream(bytes: Uint8Array) {
  const counter = { pulled: 0 };
  async function* gen() {
    for (let i = 0; i < bytes.length; i++) {
      counter.pulled++;
      yield bytes.subarray(i, i + 1);
    }
  }
  return { stream: gen(), counter };
}

const EMPTY_SCENE = '{"version":"1.0","sensors":[]}'; // 30 bytes: padded to 32

describe('SFS header: the size cap and the end of the prefix', () => {
  it('accepts a header exactly as long as the cap, and names the cap when the zero byte comes one byte later', () => {
    const header = fileOf(EMPTY_SCENE); // 32 header bytes, the zero at index 32
    expect(parseSfsHeader(header, { maxHeaderBytes: 32, fileSize: header.length }).binaryStart).toBe(32);
    expect(reasonOf(() => parseSfsHeader(header, { maxHeaderBytes: 31 }))).toBe('not an .sfs scene: no zero byte within the first 31 bytes (the header size cap)');
  });

  it('tells a prefix that ends exactly at the cap, or before it, from a header that outgrows the cap', () => {
    const spaces = (n: number) => Buffer.alloc(n, 0x20);
    expect(reasonOf(() => parseSfsHeader(spaces(16), { maxHeaderBytes: 16 }))).toBe(
      'not an .sfs scene: no zero byte within the first 16 bytes (the file ends before its header does)',
    );
    expect(reasonOf(() => parseSfsHeader(spaces(17), { maxHeaderBytes: 16 }))).toBe('not an .sfs scene: no zero byte within the first 16 bytes (the header size cap)');
    // Shorter than the cap: the count is of the bytes there were.
    expect(reasonOf(() => parseSfsHeader(spaces(10), { maxHeaderBytes: 16 }))).toBe(
      'not an .sfs scene: no zero byte within the first 10 bytes (the file ends before its header does)',
    );
    expect(reasonOf(() => parseSfsHeader(spaces(10)))).toBe('not an .sfs scene: no zero byte within the first 10 bytes (the file ends before its header does)');
  });

  it('rejects a file that starts with its zero byte', () => {
    expect(reasonOf(() => parseSfsHeader(new Uint8Array(8)))).toBe('not an .sfs scene: the file starts with a zero byte (empty header)');
  });

  it('rejects a header that is JSON but not an object, in one reason for null, a number and an array', () => {
    for (const json of ['null', '1234', '[1,2]', '"ab"']) {
      expect(reasonOf(() => parseSfsHeader(fileOf(json))), json).toBe('not an .sfs scene: the header is not a JSON object');
    }
  });

  it('rejects invalid UTF-8 even inside a JSON string, where a lenient decoder would let it through', () => {
    const file = fileOf(Buffer.concat([ascii('{"version":"'), Buffer.from([0xc3, 0x28]), ascii('","sensors":[]}')]));
    expect(reasonOf(() => parseSfsHeader(file, { fileSize: file.length }))).toMatch(/^not an \.sfs scene: the header is not valid UTF-8 JSON \(.+\)$/);
  });

  it('reads a marker cut short by the prefix as truncation, not as a bad marker, and leaves it alone without the size', () => {
    // Only two marker bytes arrived, the second not zero: too few to judge the marker by.
    const prefix = fileOf(EMPTY_SCENE, [0, 1]);
    expect(reasonOf(() => parseSfsHeader(prefix, { fileSize: prefix.length }))).toBe(
      "not an .sfs scene: the file ends before the binary section's 4-byte marker does (truncated upload?)",
    );
    expect(parseSfsHeader(prefix).binaryStart).toBe(32);
  });
});

describe('SFS header: sensors, time units and items', () => {
  it('accepts every documented sensor type and time unit', () => {
    const sensors = ['camera', 'lidar', 'radar', 'odometry', 'points'].map((type, id) => ({ id, type }));
    for (const time_unit of ['microseconds', 'nanoseconds']) {
      const file = fileOf(JSON.stringify({ version: '1.0', sensors, time_unit }));
      const { header } = parseSfsHeader(file, { fileSize: file.length });
      expect(header.sensors.map((s) => s.type)).toEqual(['camera', 'lidar', 'radar', 'odometry', 'points']);
      expect(header.time_unit).toBe(time_unit);
    }
  });

  it('names what is wrong with a sensor, in full', () => {
    const file = fileOf(JSON.stringify({ version: '1.0', sensors: [{ id: true, type: 7 }, { id: 'a', type: 'lidar' }, { id: 'b' }, null] }));
    expect(reasonOf(() => parseSfsHeader(file))).toBe(
      'invalid scene header: 3 of 4 sensors are invalid: sensors[0].id: id must be a string or number; ' +
        'sensors[0].type: has unknown type 7 (expected camera, lidar, radar, odometry, points); sensors[2].type: has no type; sensors[3]: expected object',
    );
  });

  it('names what is wrong with an item, in full', () => {
    const items = [
      { keys: [], offset: 4.5, length: -1, dtype: 'uint8' },
      { keys: ['a', true], offset: 4, length: 1, dtype: 7, shape: [1, -1] },
      { keys: ['b'], offset: 4, length: 1, dtype: 'uint8', shape: 3 },
      { offset: 4, length: 1, dtype: 'uint8' },
      null,
      // A one-element list would pass for its only string were the dtype looked up without a type check.
      { keys: ['c'], offset: 4, length: 1, dtype: ['uint8'] },
    ];
    expect(reasonOf(() => parseSfsHeader(fileOf(JSON.stringify({ version: '1.0', sensors: [], $items: items }))))).toBe(
      'invalid scene header: 6 of 6 $items are invalid: ' +
        '$items[0].keys: must name the path to the value; $items[0].offset: must be a whole number >= 0; $items[0].length: must be a whole number >= 0; ' +
        '$items[1].keys: must hold strings and numbers only; $items[1].dtype: expected one of int8, uint8, int16, uint16, int32, uint32, float32, float64, bytes; ' +
        '$items[1].shape: must be a list of whole numbers >= 0; $items[2].shape: must be a list of whole numbers >= 0; $items[3].keys: must name the path to the value; ' +
        '$items[4]: expected object; $items[5].dtype: expected one of int8, uint8, int16, uint16, int32, uint32, float32, float64, bytes',
    );
  });

  it('refuses $items that is not a list, and takes a missing one as no items', () => {
    expect(reasonOf(() => parseSfsHeader(fileOf('{"version":"1.0","sensors":[],"$items":{}}')))).toBe('invalid scene header: $items: $items is not an array');
    expect(parseSfsHeader(fileOf(EMPTY_SCENE)).items).toEqual([]);
  });

  it('names the marker overlap without calling it a truncated upload', () => {
    const file = fileOf('{"version":"1.0","sensors":[],"$items":[{"keys":["m"],"offset":2,"length":2,"dtype":"uint8"}]}', new Uint8Array(12));
    expect(reasonOf(() => parseSfsHeader(file, { fileSize: file.length }))).toBe(
      'invalid scene header: $items[0] (m) spans bytes 2..4 of the binary section, which holds 12 bytes',
    );
  });

  it('calls an item that ends exactly at the end of the file no truncated upload, however it overlaps the marker', () => {
    const file = fileOf('{"version":"1.0","sensors":[],"$items":[{"keys":["m"],"offset":0,"length":12,"dtype":"uint8"}]}', new Uint8Array(12));
    expect(reasonOf(() => parseSfsHeader(file, { fileSize: file.length }))).toBe(
      'invalid scene header: $items[0] (m) spans bytes 0..12 of the binary section, which holds 12 bytes',
    );
  });

  it('shows at most 8 dimensions of a shape that does not match the bytes', () => {
    const shape = [1, 1, 1, 1, 1, 1, 1, 1, 2, 3];
    const file = fileOf(JSON.stringify({ version: '1.0', sensors: [], $items: [{ keys: ['p'], offset: 4, length: 4, dtype: 'int16', shape }] }), new Uint8Array(8));
    expect(reasonOf(() => parseSfsHeader(file, { fileSize: file.length }))).toBe(
      'invalid scene header: $items[0] (p) declares int16 × [1, 1, 1, 1, 1, 1, 1, 1] = 12 bytes but holds 4',
    );
  });
});

describe('SFS header from a stream', () => {
  it('pulls exactly the header and the 4-byte marker, however many zero bytes follow', async () => {
    const file = fileOf('{"version":"1.0","sensors":[],"$items":[{"keys":["z"],"offset":4,"length":64,"dtype":"uint8"}]}', new Uint8Array(4 + 64));
    const { stream, counter } = byteStream(file);
    const info = await readSfsHeader(stream, { fileSize: file.length });
    expect(info.binaryStart).toBe(96);
    expect(counter.pulled).toBe(96 + 4);
  });

  it('accepts a header exactly as long as the cap, and stops one byte past the cap when none ends there', async () => {
    const fits = byteStream(fileOf(EMPTY_SCENE));
    expect((await readSfsHeader(fits.stream, { maxHeaderBytes: 32 })).binaryStart).toBe(32);
    const endless = byteStream(Buffer.alloc(100, 0x20));
    expect(await asyncReasonOf(() => readSfsHeader(endless.stream, { maxHeaderBytes: 16 }))).toBe(
      'not an .sfs scene: no zero byte within the first 16 bytes (the header size cap)',
    );
    expect(endless.counter.pulled).toBe(17);
  });
});

describe('SFS header from a stream in chunks of 11 bytes', () => {
  // The 32-byte header's zero byte is the last byte of the third chunk (bytes 22..32): the marker runs into the fourth.
  function chunkStream(bytes: Uint8Array) {
    const counter = { pulled: 0 };
    async function* gen() {
      for (let i = 0; i < bytes.length; i += 11) {
        const chunk = bytes.subarray(i, i + 11);
        counter.pulled += chunk.length;
        yield chunk;
      }
    }
    return { stream: gen(), counter };
  }

  it('reads on past the chunk that holds the zero byte until the whole marker is in, then stops', async () => {
    const file = fileOf(EMPTY_SCENE, new Uint8Array(4 + 40));
    const { stream, counter } = chunkStream(file);
    expect((await readSfsHeader(stream, { fileSize: file.length })).binaryStart).toBe(32);
    expect(counter.pulled).toBe(44);
  });

  it('reads the rest of the marker of a header exactly as long as the cap, though the bytes read pass the cap', async () => {
    const file = fileOf(EMPTY_SCENE, new Uint8Array(4 + 40));
    const { stream, counter } = chunkStream(file);
    expect((await readSfsHeader(stream, { fileSize: file.length, maxHeaderBytes: 32 })).binaryStart).toBe(32);
    expect(counter.pulled).toBe(44);
  });

  it('sees a marker byte that arrives in the chunk after the zero byte', async () => {
    const file = fileOf(EMPTY_SCENE, [0, 0, 0, 1, 0, 0, 0, 0]);
    expect(await asyncReasonOf(() => readSfsHeader(chunkStream(file).stream, { fileSize: file.length }))).toBe(
      'not an .sfs scene: the binary section does not begin with 4 zero bytes',
    );
  });
});

describe('SFS writer: element types', () => {
  it('writes each typed array with its own dtype and a one-dimensional shape, and Uint8Array as bytes', () => {
    const scene = {
      version: '1.0',
      sensors: [],
      v: {
        i8: new Int8Array([-1]),
        u8: new Uint8Array([1]),
        i16: new Int16Array([-2]),
        u16: new Uint16Array([2]),
        i32: new Int32Array([-3]),
        u32: new Uint32Array([3]),
        f32: new Float32Array([0.5]),
        f64: new Float64Array([0.25]),
      },
    };
    const file = encodeSfsToBuffer(scene);
    const { items } = parseSfsHeader(file, { fileSize: file.length });
    expect(items.map((i) => [i.keys.join('.'), i.dtype, i.offset, i.length, i.shape])).toEqual([
      ['v.i8', 'int8', 8, 1, [1]],
      ['v.u8', 'bytes', 16, 1, undefined],
      ['v.i16', 'int16', 24, 2, [1]],
      ['v.u16', 'uint16', 32, 2, [1]],
      ['v.i32', 'int32', 40, 4, [1]],
      ['v.u32', 'uint32', 48, 4, [1]],
      ['v.f32', 'float32', 56, 4, [1]],
      ['v.f64', 'float64', 64, 8, [1]],
    ]);
  });

  it('gives positions and colors the shape [n, 3] only when their length is a multiple of 3', () => {
    const shapes = encodeSfs({
      positions: new Float32Array(6),
      colors: new Uint8Array(3),
      odd: { positions: new Float32Array(4) },
    }).header.$items as Array<{ keys: unknown[]; shape?: number[] }>;
    expect(shapes.map((i) => [i.keys.join('.'), i.shape])).toEqual([
      ['positions', [2, 3]],
      ['colors', [1, 3]],
      ['odd.positions', [4]],
    ]);
  });

  it('never writes a DataView or a 64-bit integer array as bytes: no dtype describes them', () => {
    const view = encodeSfs({ v: new DataView(new ArrayBuffer(8)) } as never);
    expect([view.header, view.size]).toEqual([{ v: {}, $items: [] }, view.binaryStart + 4]);
    expect(() => encodeSfs({ v: new BigInt64Array(1) } as never)).toThrow(TypeError);
    expect(() => encodeSfs({ v: new BigUint64Array(1) } as never)).toThrow(TypeError);
  });
});
