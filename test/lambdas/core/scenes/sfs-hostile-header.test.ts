import { describe, expect, it } from 'vitest';
import { parseSfsHeader } from '../../../../lambdas/core/scenes/sfs/reader.js';

/*
 * A header may be as large as the cap (8 MiB) and hold millions of bad elements. The reason names a few and counts
 * the rest; holding a text for every bad element on the way (hundreds of MB for this header) would take a small
 * function's memory, so the heap must not grow by anything near that while one is checked.
 */

describe('a hostile header of 4 million bad items', () => {
  it('is refused with a bounded reason, holding no text per bad element', () => {
    const count = 4_000_000;
    const json = Buffer.from(JSON.stringify({ version: '1.0', sensors: [], $items: new Array(count).fill(7) }));
    const file = Buffer.concat([json, Buffer.alloc((4 - (json.length % 4)) % 4, 0x20), Buffer.alloc(4)]);
    expect(file.length).toBeLessThanOrEqual(8 * 1024 * 1024);
    const heapBefore = process.memoryUsage().heapUsed;
    let reason = '';
    try {
      parseSfsHeader(file);
    } catch (err) {
      reason = (err as Error).message;
    }
    const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
    expect(reason).toMatch(/^invalid scene header: 4000000 of 4000000 \$items are invalid: \$items\[0\]: expected object; .* … and 39999\d\d more problems$/);
    // About 600 MB if every bad element kept its text; a few tens for the parsed header itself.
    expect(grownMb).toBeLessThan(200);
  });
});
