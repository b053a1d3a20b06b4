import * as z from 'zod/mini';
import { checkAgainst, formatPath, quote, summarizeProblems } from '../../shared/validation.js';
import { DEFAULT_MAX_HEADER_BYTES, SFS_BINARY_MARKER_BYTES, SFS_DTYPES, SFS_SENSOR_TYPES, SFS_TIME_UNITS, type SfsItem } from './format.js';

/** A scene that cannot be accepted. The message says what is wrong, for people and for the task record. */
export class SfsFormatError extends Error {
  override readonly name = 'SfsFormatError';
}

type Sensor = { id: string | number; type: (typeof SFS_SENSOR_TYPES)[number]; [key: string]: unknown };

/*
 * Sensors and $items are checked by hand, element by element: a header may hold millions of them, and a schema
 * library's per-element cost (and its issue objects for every bad one) turns a hostile 8 MB header into minutes
 * of CPU. These checks cost well under a microsecond per element.
 */
const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const SENSOR_TYPES: ReadonlySet<string> = new Set(SFS_SENSOR_TYPES);

function problemsOfSensor(sensor: unknown): string[] {
  if (!isRecord(sensor)) return [': expected object'];
  const problems: string[] = [];
  if (sensor.id === undefined) problems.push('.id: has no id');
  else if (typeof sensor.id !== 'string' && typeof sensor.id !== 'number') problems.push('.id: id must be a string or number');
  if (sensor.type === undefined) problems.push('.type: has no type');
  else if (typeof sensor.type !== 'string' || !SENSOR_TYPES.has(sensor.type)) problems.push(`.type: has unknown type ${quote(sensor.type)} (expected ${SFS_SENSOR_TYPES.join(', ')})`);
  return problems;
}

function problemsOfItem(item: unknown): string[] {
  if (!isRecord(item)) return [': expected object'];
  const problems: string[] = [];
  const { keys, offset, length, dtype, shape } = item;
  if (!Array.isArray(keys) || keys.length === 0) problems.push('.keys: must name the path to the value');
  else if (keys.some((k) => typeof k !== 'string' && typeof k !== 'number')) problems.push('.keys: must hold strings and numbers only');
  if (!isCount(offset)) problems.push('.offset: must be a whole number >= 0');
  if (!isCount(length)) problems.push('.length: must be a whole number >= 0');
  if (typeof dtype !== 'string' || !Object.hasOwn(SFS_DTYPES, dtype)) problems.push(`.dtype: expected one of ${Object.keys(SFS_DTYPES).join(', ')}`);
  if (shape !== undefined && (!Array.isArray(shape) || !shape.every(isCount))) problems.push('.shape: must be a list of whole numbers >= 0');
  return problems;
}

/** Checks each element, naming the first few bad ones (one entry per element) and counting all of them. */
function checkElements(list: unknown[], path: string, problemsOf: (element: unknown) => string[]): { failed: number; named: string[] } {
  const named: string[] = [];
  let failed = 0;
  for (let i = 0; i < list.length; i++) {
    const problems = problemsOf(list[i]);
    if (problems.length === 0) continue;
    failed++;
    if (named.length < 20) named.push(problems.map((p) => `${path}[${i}]${p}`).join('; '));
  }
  return { failed, named };
}

/** The header's top level; sensors and $items are checked one element at a time (see checkEach). */
const SceneHeaderSchema = z.looseObject({
  version: z.string({ error: 'version is missing or not a string' }),
  // Only "is an array" here: a schema array would walk (and copy) millions of elements before the checks below.
  sensors: z.custom<unknown[]>(Array.isArray, { error: 'sensors is missing or not an array' }),
  time_unit: z.optional(z.enum(SFS_TIME_UNITS)),
  $items: z._default(z.custom<unknown[]>(Array.isArray, { error: '$items is not an array' }), []),
});

export type SceneHeader = Omit<z.infer<typeof SceneHeaderSchema>, 'sensors' | '$items'> & { sensors: Sensor[]; $items: SfsItem[] };

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
  const { sensors, $items } = parsed.value;
  for (const [list, path] of [[sensors, 'sensors'], [$items, '$items']] as const) {
    const checked = checkElements(list, path, path === 'sensors' ? problemsOfSensor : problemsOfItem);
    if (checked.failed > 0) {
      throw new SfsFormatError(`invalid scene header: ${checked.failed} of ${list.length} ${path} are invalid: ${summarizeProblems(checked.named, undefined, checked.failed)}`);
    }
  }
  const items = $items as SfsItem[];
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
  const structure = structureProblems(sensors as Sensor[], items);
  if (structure.count > 0) throw new SfsFormatError(`invalid scene header: ${summarizeProblems(structure.named, undefined, structure.count)}`);
  return { header: { ...parsed.value, sensors: sensors as Sensor[], $items: items }, binaryStart, items };
}

/**
 * Two sensors with one id, two items at one path, or two items sharing bytes: a reader would take one for the other,
 * so Scale would label something else than was recorded. Counted in full, named up to a few.
 */
function structureProblems(sensors: Sensor[], items: SfsItem[]): { named: string[]; count: number } {
  const named: string[] = [];
  let count = 0;
  const note = (problem: () => string) => (count++ < 20 ? void named.push(problem()) : undefined);
  const firstOf = <T>(values: T[], key: (value: T) => string, problem: (i: number, first: number) => string) => {
    const seen = new Map<string, number>();
    values.forEach((value, i) => {
      const first = seen.get(key(value));
      if (first === undefined) seen.set(key(value), i);
      else note(() => problem(i, first));
    });
  };
  firstOf(sensors, (sensor) => JSON.stringify(sensor.id), (i, first) => `sensors[${i}] has the id ${quote(sensors[i]!.id)} of sensors[${first}]`);
  firstOf(items, (item) => JSON.stringify(item.keys), (i, first) => `$items[${i}] (${formatPath(items[i]!.keys)}) names the same value as $items[${first}]`);
  const byOffset = items.flatMap((item, i) => (item.length > 0 ? [i] : [])).sort((a, b) => items[a]!.offset - items[b]!.offset);
  for (let k = 1; k < byOffset.length; k++) {
    const [before, after] = [items[byOffset[k - 1]!]!, items[byOffset[k]!]!];
    if (before.offset + before.length > after.offset) {
      note(() => `$items[${byOffset[k]}] (${formatPath(after.keys)}) starts at byte ${after.offset}, inside $items[${byOffset[k - 1]}] (${formatPath(before.keys)}, bytes ${before.offset}..${before.offset + before.length})`);
    }
  }
  return { named, count };
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
