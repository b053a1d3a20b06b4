import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeSfs, encodeSfsToBuffer, writeSfsFile } from '../../../../lambdas/core/scenes/sfs/writer.js';

/*
 * The writer's output byte for byte, on scenes small enough to spell out: the JSON as written, the spaces that pad it
 * to a multiple of 4, the zero bytes of the marker and of each alignment gap, and the item bytes. Expected files
 * are written out here literally, never read back through the product's reader.
 */

const dir = await mkdtemp(join(tmpdir(), 'sfs-bytes-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const text = (s: string) => Buffer.from(s, 'latin1');
const bytes = (...b: number[]) => Buffer.from(b);
const lengthsOf = (chunks: Iterable<Uint8Array>) => [...chunks].map((c) => c.length);

const EMPTY_JSON = '{"version":"1.0","sensors":[],"$items":[]}'; // 42 bytes
const TWO_DOUBLES_JSON =
  '{"version":"1.0","sensors":[],"v":"","w":"","$items":[' +
  '{"keys":["v"],"offset":8,"length":8,"dtype":"float64","shape":[1]},' +
  '{"keys":["w"],"offset":16,"length":8,"dtype":"float64","shape":[1]}]}'; // 190 bytes

describe('SFS writer: the bytes of a file', () => {
  it('pads a 42-byte header with 2 spaces to 44, then writes the 4-byte marker and nothing else', () => {
    expect(Buffer.byteLength(EMPTY_JSON)).toBe(42);
    const encoded = encodeSfs({ version: '1.0', sensors: [] });
    expect([encoded.binaryStart, encoded.size]).toEqual([44, 48]);
    expect(lengthsOf(encoded.chunks())).toEqual([42, 2, 4]);
    expect(encodeSfsToBuffer({ version: '1.0', sensors: [] })).toEqual(Buffer.concat([text(EMPTY_JSON), text('  '), bytes(0, 0, 0, 0)]));
  });

  it('writes no padding at all, not even an empty piece, when the header is a multiple of 4 already', () => {
    // One more field makes the JSON 48 bytes: no space follows it.
    const encoded = encodeSfs({ version: '1.0', sensors: [], n: 1 });
    expect([encoded.binaryStart, encoded.size]).toEqual([48, 52]);
    expect(lengthsOf(encoded.chunks())).toEqual([48, 4]);
    expect(Buffer.concat([...encoded.chunks()])).toEqual(Buffer.concat([text('{"version":"1.0","sensors":[],"n":1,"$items":[]}'), bytes(0, 0, 0, 0)]));
  });

  it('aligns the first item to byte 8 of the binary section, and writes adjacent items with no piece between them', () => {
    const scene = { version: '1.0', sensors: [], v: new Float64Array([1.5]), w: new Float64Array([-2]) };
    const encoded = encodeSfs(scene);
    expect(Buffer.byteLength(TWO_DOUBLES_JSON)).toBe(190);
    expect(encoded.header).toEqual(JSON.parse(TWO_DOUBLES_JSON));
    expect([encoded.binaryStart, encoded.size]).toEqual([192, 216]);
    // JSON, 2 spaces, marker and alignment gap (8 zero bytes), then v and w back to back.
    expect(lengthsOf(encoded.chunks())).toEqual([190, 2, 8, 8, 8]);
    expect(encodeSfsToBuffer(scene)).toEqual(
      Buffer.concat([
        text(TWO_DOUBLES_JSON),
        text('  '),
        bytes(0, 0, 0, 0, 0, 0, 0, 0),
        bytes(0, 0, 0, 0, 0, 0, 0xf8, 0x3f), // 1.5, little-endian float64
        bytes(0, 0, 0, 0, 0, 0, 0, 0xc0), // -2
      ]),
    );
  });

  it('ends the file with the last item, padded to no boundary', () => {
    const json = '{"version":"1.0","sensors":[],"b":"","$items":[{"keys":["b"],"offset":8,"length":3,"dtype":"bytes"}]}'; // 101 bytes
    const encoded = encodeSfs({ version: '1.0', sensors: [], b: new Uint8Array([7, 8, 9]) });
    expect([encoded.binaryStart, encoded.size]).toEqual([104, 115]);
    expect(lengthsOf(encoded.chunks())).toEqual([101, 3, 8, 3]);
    expect(Buffer.concat([...encoded.chunks()])).toEqual(Buffer.concat([text(json), text('   '), bytes(0, 0, 0, 0, 0, 0, 0, 0), bytes(7, 8, 9)]));
  });

  it('streams exactly those bytes to a file', async () => {
    const path = join(dir, 'two-doubles.sfs');
    const encoded = await writeSfsFile(path, { version: '1.0', sensors: [], v: new Float64Array([1.5]), w: new Float64Array([-2]) });
    expect(encoded.size).toBe(216);
    const file = await readFile(path);
    expect(file.length).toBe(216);
    expect(file.subarray(0, 192)).toEqual(Buffer.concat([text(TWO_DOUBLES_JSON), text('  ')]));
    expect([...file.subarray(192)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0xc0]);
  });
});
