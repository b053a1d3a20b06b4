/**
 * The simulator's own reading of a .sfs scene, from the format facts in SCALE-API.md rather than the product's
 * reader, so a bug there is not mirrored here: a UTF-8 JSON header padded with spaces to a multiple of 4 bytes and
 * ending at the first zero byte, then a binary section that begins with 4 zero bytes; `$items` list the binary
 * values, their `offset` counted from the start of the binary section. It reads what Scale needs before work can
 * start: the sensors, how many frames they hold, and whether every item's bytes are in the file.
 */

const MARKER_BYTES = 4;
/** No header size limit is published: this is far above any real header, yet stops a file with no zero byte. */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;
const SENSOR_TYPES: readonly unknown[] = ['camera', 'lidar', 'radar', 'odometry', 'points'];
const TIME_UNITS: readonly unknown[] = ['microseconds', 'nanoseconds'];

export interface SceneSummary {
  sensors: number;
  /** The most frames any one sensor holds: the length of the sequence to label. */
  frames: number;
  /** Where the binary section starts (the header's length, padding included). */
  binaryStart: number;
  items: Array<{ offset: number; length: number }>;
}

export type SceneReading = { ok: true; scene: SceneSummary } | { ok: false; problem: string };

/**
 * Pulls chunks until the header's end and the 4 marker bytes have arrived (or the cap is passed), and reads the
 * header. The stream is not cancelled: the caller goes on reading it, to count the file's bytes.
 */
export async function readSceneHeader(stream: AsyncIterable<Uint8Array>): Promise<SceneReading> {
  const iterator = stream[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let end = -1;
  while (end === -1 ? total <= MAX_HEADER_BYTES : total < end + MARKER_BYTES) {
    const next = await iterator.next();
    if (next.done) break;
    const zero = end === -1 ? next.value.indexOf(0) : -1;
    if (zero !== -1) end = total + zero;
    chunks.push(next.value);
    total += next.value.length;
  }
  const prefix = Buffer.concat(chunks, total);
  if (end === -1) {
    return problem(total > MAX_HEADER_BYTES ? `no zero byte (end of header) in the first ${MAX_HEADER_BYTES} bytes` : 'the file ends before its header does (no zero byte)');
  }
  if (end === 0) return problem('the file starts with a zero byte: it has no header');
  if (end % 4 !== 0) return problem(`the header is ${end} bytes, not padded to a multiple of 4`);
  const marker = prefix.subarray(end, end + MARKER_BYTES);
  if (marker.length < MARKER_BYTES) return problem('the file ends before the 4 zero bytes that begin the binary section');
  if (marker.some((byte) => byte !== 0)) return problem('the binary section does not begin with 4 zero bytes');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(prefix.subarray(0, end)));
  } catch {
    return problem('the header is not UTF-8 JSON');
  }
  return summarize(header, end);
}

function summarize(header: unknown, binaryStart: number): SceneReading {
  if (!isObject(header)) return problem('the header is not a JSON object');
  if (typeof header.version !== 'string') return problem('the header has no version');
  if (header.time_unit !== undefined && !TIME_UNITS.includes(header.time_unit)) return problem(`time_unit ${quoted(header.time_unit)} is neither microseconds nor nanoseconds`);
  if (!Array.isArray(header.sensors)) return problem('the header has no sensors list');
  let frames = 0;
  for (const [i, sensor] of header.sensors.entries()) {
    if (!isObject(sensor)) return problem(`sensors[${i}] is not an object`);
    if (sensor.id === undefined) return problem(`sensors[${i}] has no id`);
    if (typeof sensor.id !== 'string' && typeof sensor.id !== 'number') return problem(`sensors[${i}] has an id that is neither a string nor a number`);
    if (!SENSOR_TYPES.includes(sensor.type)) return problem(`sensors[${i}] has type ${quoted(sensor.type)}, not one of camera, lidar, radar, odometry, points`);
    if (Array.isArray(sensor.frames)) frames = Math.max(frames, sensor.frames.length);
  }
  const listed = header.$items ?? [];
  if (!Array.isArray(listed)) return problem('$items is not a list');
  const items: SceneSummary['items'] = [];
  for (const [i, item] of listed.entries()) {
    if (!isObject(item) || !isCount(item.offset) || !isCount(item.length)) return problem(`$items[${i}] has no whole-number offset and length`);
    items.push({ offset: item.offset, length: item.length });
  }
  return { ok: true, scene: { sensors: header.sensors.length, frames, binaryStart, items } };
}

/** Whether every item's bytes lie in the binary section of a file of `fileBytes` bytes; why not, if not. */
export function itemsOutsideFile(scene: SceneSummary, fileBytes: number): string | undefined {
  const binaryBytes = fileBytes - scene.binaryStart;
  const i = scene.items.findIndex((item) => item.offset < MARKER_BYTES || item.offset + item.length > binaryBytes);
  if (i === -1) return undefined;
  const item = scene.items[i]!;
  return `$items[${i}] spans bytes ${item.offset}..${item.offset + item.length} of a binary section of ${binaryBytes} bytes (a truncated file?)`;
}

const problem = (text: string): SceneReading => ({ ok: false, problem: text });

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

const quoted = (value: unknown) => (JSON.stringify(value) ?? String(value)).slice(0, 60);
