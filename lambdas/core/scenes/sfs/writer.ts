import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SFS_BINARY_MARKER_BYTES, type SfsDtype, type SfsItem, type SfsKeyPath } from './format.js';

/** A value that goes to the binary section: a typed array, or raw bytes (camera images, video). */
export type SfsBinary =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array;

/** Plain JSON with typed arrays wherever binary data belongs. */
export type SfsValue = null | boolean | number | string | SfsBinary | SfsValue[] | { [key: string]: SfsValue };

export interface EncodedSfs {
  /** The JSON header as written (binary values replaced by "" and listed in $items). */
  header: Record<string, unknown>;
  /** Total size of the file in bytes. */
  size: number;
  /** Offset of the binary section from the start of the file. */
  binaryStart: number;
  /** The file's bytes, in order, as views over the caller's arrays: nothing is copied. */
  chunks(): Generator<Uint8Array>;
}

const ALIGNMENT = 8;

function dtypeOf(value: SfsBinary, asBytes: boolean): SfsDtype {
  if (value instanceof Float32Array) return 'float32';
  if (value instanceof Float64Array) return 'float64';
  if (value instanceof Int8Array) return 'int8';
  if (value instanceof Int16Array) return 'int16';
  if (value instanceof Uint16Array) return 'uint16';
  if (value instanceof Int32Array) return 'int32';
  if (value instanceof Uint32Array) return 'uint32';
  return asBytes ? 'bytes' : 'uint8';
}

function isBinary(value: unknown): value is SfsBinary {
  return ArrayBuffer.isView(value) && !(value instanceof DataView) && !(value instanceof BigInt64Array) && !(value instanceof BigUint64Array);
}

/** Whether the Uint8Array at `keys` is raw bytes (dtype `bytes`: images, video) or numbers (dtype `uint8`: intensities). */
export type SfsBytesAt = (keys: SfsKeyPath) => boolean;

/**
 * Lays out a scene: walks the value, moves every typed array to the binary section, and returns the header plus
 * a generator of the file's bytes. Uint8Array values are written as `bytes` (image/video payloads) unless
 * `bytesAt` says they are numbers; use `shape` via `shapes` to describe multi-dimensional arrays (e.g. positions
 * as [n, 3]).
 */
export function encodeSfs(
  scene: Record<string, SfsValue>,
  shapes: (keys: SfsKeyPath, value: SfsBinary) => number[] | undefined = defaultShape,
  bytesAt: SfsBytesAt = () => true,
): EncodedSfs {
  const items: SfsItem[] = [];
  const payloads: SfsBinary[] = [];
  let cursor = SFS_BINARY_MARKER_BYTES;

  const walk = (value: SfsValue, keys: SfsKeyPath): unknown => {
    if (isBinary(value)) {
      cursor = Math.ceil(cursor / ALIGNMENT) * ALIGNMENT;
      const shape = shapes(keys, value);
      items.push({ keys, offset: cursor, length: value.byteLength, dtype: dtypeOf(value, bytesAt(keys)), ...(shape ? { shape } : {}) });
      payloads.push(value);
      cursor += value.byteLength;
      return '';
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, [...keys, i]));
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, [...keys, k])]));
    }
    return value;
  };

  const body = walk(scene, []) as Record<string, unknown>;
  const header = { ...body, $items: items };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const headerLength = Math.ceil(json.length / 4) * 4;
  const binaryStart = headerLength;
  const size = binaryStart + Math.max(cursor, SFS_BINARY_MARKER_BYTES);

  function* chunks(): Generator<Uint8Array> {
    yield json;
    if (headerLength > json.length) yield Buffer.alloc(headerLength - json.length, 0x20);
    let written = 0;
    for (let i = 0; i < payloads.length; i++) {
      const item = items[i]!;
      const payload = payloads[i]!;
      const gap = item.offset - written;
      if (gap > 0) yield new Uint8Array(gap);
      yield new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
      written = item.offset + item.length;
    }
    if (written < SFS_BINARY_MARKER_BYTES) yield new Uint8Array(SFS_BINARY_MARKER_BYTES - written);
  }

  return { header, size, binaryStart, chunks };
}

/** Lidar positions and colors are [n, 3]; everything else is one-dimensional. */
function defaultShape(keys: SfsKeyPath, value: SfsBinary): number[] | undefined {
  const last = keys[keys.length - 1];
  if ((last === 'positions' || last === 'colors') && value.length % 3 === 0) return [value.length / 3, 3];
  if (value instanceof Uint8Array) return undefined;
  return [value.length];
}

/** The whole file in one buffer: for small scenes only. */
export function encodeSfsToBuffer(scene: Record<string, SfsValue>): Buffer {
  return Buffer.concat([...encodeSfs(scene).chunks()]);
}

/** Streams the scene to a file without assembling it in memory. Returns the encoded description. */
export async function writeSfsFile(path: string, scene: Record<string, SfsValue>): Promise<EncodedSfs> {
  const encoded = encodeSfs(scene);
  await pipeline(Readable.from(encoded.chunks(), { objectMode: false }), createWriteStream(path));
  return encoded;
}
