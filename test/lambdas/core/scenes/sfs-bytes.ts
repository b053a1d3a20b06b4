import { expect } from 'vitest';

/** SFS files built byte by byte for reader tests, never by the product's writer, and the reason a read is refused with. */

/** JSON padded with spaces to a multiple of 4, then `binary` (by default the bare 4-byte marker). */
export function fileOf(json: string | Buffer, binary: ArrayLike<number> = [0, 0, 0, 0]): Buffer {
  const bytes = typeof json === 'string' ? Buffer.from(json, 'utf8') : json;
  const padded = Buffer.alloc(Math.ceil(bytes.length / 4) * 4, 0x20);
  bytes.copy(padded);
  return Buffer.concat([padded, Buffer.from(Array.from(binary))]);
}

/** The message of the SfsFormatError `run` throws; fails the test if it throws nothing. */
export function reasonOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect((err as Error).name).toBe('SfsFormatError');
    return (err as Error).message;
  }
  throw new Error('accepted');
}

export async function asyncReasonOf(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (err) {
    expect((err as Error).name).toBe('SfsFormatError');
    return (err as Error).message;
  }
  throw new Error('accepted');
}
