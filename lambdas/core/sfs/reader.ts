import * as z from 'zod/mini';
import { checkAgainst, checkEach, formatPath, quote, summarizeProblems } from '../validation.js';
import { DEFAULT_MAX_HEADER_BYTES, SFS_BINARY_MARKER_BYTES, SFS_DTYPES, SFS_SENSOR_TYPES, SFS_TIME_UNITS, type SfsItem } from './format.js';

/** A scene that cannot be accepted. The message says what is wrong, for people and for the task record. */
export class SfsFormatError extends Error {
  override readonly name = 'SfsFormatError';
}

const nonNegativeInt = z.number().check(z.int(), z.gte(0, 'must be a whole number >= 0'));

const ItemSchema = z.object({
  keys: z.array(z.union([z.string(), z.number()])).check(z.minLength(1, 'must name the path to the value')),
  offset: nonNegativeInt,
  length: nonNegativeInt,
  dtype: z.enum(Object.keys(SFS_DTYPES) as [keyof typeof SFS_DTYPES, ...Array<keyof typeof SFS_DTYPES>]),
  shape: z.optional(z.array(nonNegativeInt)),
});

const SensorSchema = z.looseObject({
  id: z.union([z.string(), z.number()], { error: (iss) => (iss.input === undefined ? 'has no id' : 'id must be a string or number') }),
  type: z.enum(SFS_SENSOR_TYPES, {
    error: (iss) => (iss.input === undefined ? 'has no type' : `has unknown type ${quote(iss.input)} (expected ${SFS_SENSOR_TYPES.join(', ')})`),
  }),
});

/** The header's top level; sensors and $items are checked one element at a time (see checkEach). */
const SceneHeaderSchema = z.looseObject({
  version: z.string({ error: 'version is missing or not a string' }),
  sensors: z.array(z.unknown(), { error: 'sensors is missing or not an array' }),
  time_unit: z.optional(z.enum(SFS_TIME_UNITS)),
  $items: z._default(z.array(z.unknown(), { error: '$items is not an array' }), []),
});

export type SceneHeader = Omit<z.infer<typeof SceneHeaderSchema>, 'sensors' | '$items'> & {
  sensors: Array<z.infer<typeof SensorSchema>>;
  $items: SfsItem[];
};

export interface SfsHeaderInfo {
  header: SceneHeader;
  /** Bytes of JSON plus padding: the binary section starts here. */
  binaryStart: number;
  items: SfsItem[];
}

export interface SfsReadOptions {
  /** Size of the whole file when known (HEAD / Content-Length): items must then lie inside it. */
  fileSize?: number;
  /** Largest header accepted. A header without its end within this many bytes is an error. */
  maxHeaderBytes?: number;
}

/**
 * Parses and validates a scene header from the first bytes of a file. `prefix` needs to hold the header plus
 * the binary marker, not the whole file: read `maxHeaderBytes + 4` bytes at most (a ranged GET).
 */
export function parseSfsHeader(prefix: Uint8Array, options: SfsReadOptions = {}): SfsHeaderInfo {
  const cap = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const end = prefix.subarray(0, cap + 1).indexOf(0);
  if (end === -1) {
    const looked = Math.min(prefix.length, cap);
    throw new SfsFormatError(
      prefix.length > cap
        ? `not an .sfs scene: no zero byte within the first ${cap} bytes (the header size cap)`
        : `not an .sfs scene: no zero byte within the first ${looked} bytes (the file ends before its header does)`,
    );
  }
  if (end === 0) throw new SfsFormatError('not an .sfs scene: the file starts with a zero byte (empty header)');
  return validateHeader(prefix.subarray(0, end), prefix, options.fileSize);
}

function validateHeader(headerBytes: Uint8Array, prefix: Uint8Array, fileSize: number | undefined): SfsHeaderInfo {
  const binaryStart = headerBytes.length;
  if (binaryStart % 4 !== 0) {
    throw new SfsFormatError(`not an .sfs scene: the header is ${binaryStart} bytes, not padded to a multiple of 4`);
  }
  const marker = prefix.subarray(binaryStart, binaryStart + SFS_BINARY_MARKER_BYTES);
  if (marker.length === SFS_BINARY_MARKER_BYTES && marker.some((b) => b !== 0)) {
    throw new SfsFormatError('not an .sfs scene: the binary section does not begin with 4 zero bytes');
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw new SfsFormatError(`not an .sfs scene: the header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new SfsFormatError('not an .sfs scene: the header is not a JSON object');
  }
  const parsed = checkAgainst(SceneHeaderSchema, json);
  if (!parsed.ok) throw new SfsFormatError(`invalid scene header: ${summarizeProblems(parsed.problems)}`);
  const sensors = checkEach(SensorSchema, parsed.value.sensors, 'sensors');
  if (!sensors.ok) throw new SfsFormatError(`invalid scene header: ${sensors.failed} of ${parsed.value.sensors.length} sensors are invalid: ${summarizeProblems(sensors.problems, undefined, sensors.failed)}`);
  const checkedItems = checkEach(ItemSchema, parsed.value.$items, '$items');
  if (!checkedItems.ok) throw new SfsFormatError(`invalid scene header: ${checkedItems.failed} of ${parsed.value.$items.length} $items are invalid: ${summarizeProblems(checkedItems.problems, undefined, checkedItems.failed)}`);
  const items = checkedItems.value as SfsItem[];
  const itemProblems = items.flatMap((item, i) => itemSizeProblems(item, i));
  if (fileSize !== undefined) {
    const binaryBytes = fileSize - binaryStart;
    // The binary section always begins with its 4-byte marker; a file that ends before it was cut short.
    if (binaryBytes < SFS_BINARY_MARKER_BYTES) {
      throw new SfsFormatError("not an .sfs scene: the file ends before the binary section's 4-byte marker does (truncated upload?)");
    }
    items.forEach((item, i) => {
      if (item.offset < SFS_BINARY_MARKER_BYTES || item.offset + item.length > binaryBytes) {
        itemProblems.push(
          `$items[${i}] (${formatPath(item.keys)}) spans bytes ${item.offset}..${item.offset + item.length} ` +
            `of the binary section, which holds ${Math.max(binaryBytes, 0)} bytes${item.offset + item.length > binaryBytes ? ' (truncated upload?)' : ''}`,
        );
      }
    });
  }
  if (itemProblems.length > 0) throw new SfsFormatError(`invalid scene header: ${summarizeProblems(itemProblems)}`);
  return { header: { ...parsed.value, sensors: sensors.value, $items: items }, binaryStart, items };
}

/** An item's byte length must be what its dtype and shape declare: a mismatch means Scale would misread it. */
function itemSizeProblems(item: SfsItem, i: number): string[] {
  const element = SFS_DTYPES[item.dtype];
  const where = `$items[${i}] (${formatPath(item.keys)})`;
  if (item.length % element !== 0) return [`${where} is ${item.length} bytes, not a whole number of ${item.dtype} elements (${element} bytes each)`];
  if (item.shape === undefined) return [];
  const declared = item.shape.reduce((product, n) => product * n, element);
  return declared === item.length ? [] : [`${where} declares ${item.dtype} × [${item.shape.slice(0, 8).join(', ')}] = ${declared} bytes but holds ${item.length}`];
}

/**
 * Reads a header from a byte stream (an S3 GetObject body, a fetch body), pulling only until the header's end
 * plus the binary marker or the cap, whichever comes first. The rest of the stream is left unread.
 */
export async function readSfsHeader(stream: AsyncIterable<Uint8Array>, options: SfsReadOptions = {}): Promise<SfsHeaderInfo> {
  const cap = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const chunks: Uint8Array[] = [];
  let total = 0;
  let zeroAt = -1;
  for await (const chunk of stream) {
    const found = zeroAt === -1 ? chunk.indexOf(0) : -1;
    if (found !== -1) zeroAt = total + found;
    chunks.push(chunk);
    total += chunk.length;
    if (zeroAt !== -1 && total >= zeroAt + SFS_BINARY_MARKER_BYTES) break;
    if (zeroAt === -1 && total > cap) break;
  }
  const prefix = Buffer.concat(chunks, total);
  return parseSfsHeader(prefix, options);
}
