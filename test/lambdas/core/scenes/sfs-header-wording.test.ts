import { describe, expect, it, vi } from 'vitest';
import { fileOf, reasonOf } from './sfs-bytes.js';

/*
 * What the reader's module-level parts say and allow: the header schema's own wording for each top-level field, and
 * the default header cap of 8 MiB. The reader is imported afresh inside each test (never at the top of the file), so
 * its schema and constants are built while the test runs: a fault planted in them by mutation testing is then
 * active here, as it would not be in a module loaded once before any test.
 */

async function freshReader() {
  vi.resetModules();
  return import('../../../../lambdas/core/scenes/sfs/reader.js');
}


describe("the header schema's wording", () => {
  it('names a version that is missing or not a string', async () => {
    const { parseSfsHeader } = await freshReader();
    for (const json of ['{"sensors":[]}', '{"version":1,"sensors":[]}']) {
      expect(reasonOf(() => parseSfsHeader(fileOf(json))), json).toBe('invalid scene header: version: version is missing or not a string');
    }
  });

  it('names sensors that are missing or not a list', async () => {
    const { parseSfsHeader } = await freshReader();
    for (const json of ['{"version":"1.0"}', '{"version":"1.0","sensors":{}}']) {
      expect(reasonOf(() => parseSfsHeader(fileOf(json))), json).toBe('invalid scene header: sensors: sensors is missing or not an array');
    }
  });

  it('names $items that is not a list, and reads a missing $items as no items', async () => {
    const { parseSfsHeader } = await freshReader();
    expect(reasonOf(() => parseSfsHeader(fileOf('{"version":"1.0","sensors":[],"$items":"none"}')))).toBe('invalid scene header: $items: $items is not an array');
    const file = fileOf('{"version":"1.0","sensors":[]}');
    const info = parseSfsHeader(file, { fileSize: file.length });
    expect([info.items, info.header.$items]).toEqual([[], []]);
  });
});

describe('the default header cap', () => {
  const MIB_8 = 8 * 1024 * 1024; // 8388608

  it('accepts a header of exactly 8 MiB when no cap is given', async () => {
    const { parseSfsHeader } = await freshReader();
    const file = Buffer.alloc(MIB_8 + 4, 0x20);
    Buffer.from('{"version":"1.0","sensors":[]}').copy(file);
    file.fill(0, MIB_8);
    expect(parseSfsHeader(file, { fileSize: file.length }).binaryStart).toBe(8388608);
  });

  it('names the cap of 8388608 bytes when the zero byte comes one byte later', async () => {
    const { parseSfsHeader } = await freshReader();
    const file = Buffer.alloc(MIB_8 + 1 + 4, 0x20);
    file.fill(0, MIB_8 + 1);
    expect(reasonOf(() => parseSfsHeader(file))).toBe('not an .sfs scene: no zero byte within the first 8388608 bytes (the header size cap)');
  });
});
