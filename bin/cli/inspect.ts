/**
 * `sfs-pipeline inspect`: what an `.sfs` file's header declares, and whether the pipeline would take it. The verdict
 * is create-task's own preflight (checkSceneContent) run against the local file through the SceneObjects port: a
 * bounded read of the header, checked against the file's size. The rest of the file is never read, so a
 * multi-GB scene is inspected as fast as a small one.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { checkSceneContent } from '../../lambdas/core/scenes/scene-content.js';
import type { SceneRef } from '../../lambdas/core/scenes/scene-identity.js';
import type { ObjectHead, SceneObjects } from '../../lambdas/core/scenes/scene-objects.js';
import { SFS_BINARY_MARKER_BYTES, SFS_DTYPES } from '../../lambdas/core/scenes/sfs/format.js';
import { parseSfsHeader, SfsFormatError, type SfsHeaderInfo } from '../../lambdas/core/scenes/sfs/reader.js';
import { parseConfig, RoutingSchema, type Routing } from '../../lambdas/core/shared/config.js';
import type { RegisterCommand } from '../sfs-pipeline.js';
import { CliError, EXIT, formatTable, jsonLine, printable } from './io.js';

/** A local file as the create-task preflight reads an S3 object: its size, and ranged reads from its start. */
class LocalSceneFile implements SceneObjects {
  /** The bytes the preflight read, kept to describe the header without reading it twice. */
  readonly read: Uint8Array[] = [];
  constructor(
    private readonly path: string,
    private readonly size: number,
  ) {}

  async head(): Promise<ObjectHead> {
    return { exists: true, size: this.size };
  }

  async readPrefix(_ref: SceneRef, bytes: number): Promise<AsyncIterable<Uint8Array>> {
    const stream = createReadStream(this.path, { start: 0, end: Math.max(Math.min(bytes, this.size) - 1, 0) });
    return recording(stream, this.read);
  }

  async presign(): Promise<{ url: string }> {
    throw new Error('a local file has no URL');
  }
}

/** Passes a stream's chunks on, keeping them; the file is closed as soon as the reader stops. */
async function* recording(stream: ReadStream, into: Uint8Array[]): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of stream) {
      into.push(chunk as Buffer);
      yield chunk as Buffer;
    }
  } finally {
    stream.destroy();
  }
}

/** One sensor as the header declares it; counts come from $items, never from the binary section. */
export interface DeclaredSensor {
  id: string | number;
  type: string;
  /** Lidar/radar/points frames, or a camera's images; null when the sensor lists neither. */
  frames: number | null;
  /** Points over all frames (from the positions items); null when it has none. */
  points: number | null;
  poses: number | null;
}

export interface SceneDeclaration {
  version: string;
  /** null: not declared (Scale's default, microseconds, applies). */
  timeUnit: string | null;
  sensorCount: number;
  /** The first LISTED_SENSORS sensors. */
  sensors: DeclaredSensor[];
  itemCount: number;
  /** Where the binary section starts, and how many bytes of the file it has. */
  binaryStart: number;
  binaryBytes: number;
  /** The end of the furthest item, from the binary section's start: what the header needs the file to hold. */
  itemsEnd: number;
  metadataKeys: string[];
}

export interface SceneInspection {
  file: string;
  size: number;
  acceptable: boolean;
  /** Why the pipeline would reject it (the reason its record would get). */
  reason?: string;
  /** Absent when the header itself cannot be read. */
  declaration?: SceneDeclaration;
}

const LISTED_SENSORS = 100;
const LISTED_METADATA_KEYS = 50;
const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

function declarationOf(info: SfsHeaderInfo, size: number): SceneDeclaration {
  const { header, items, binaryStart } = info;
  const points = new Map<unknown, number>();
  const poses = new Map<unknown, number>();
  let itemsEnd = SFS_BINARY_MARKER_BYTES;
  for (const item of items) {
    itemsEnd = Math.max(itemsEnd, item.offset + item.length);
    const [root, sensor, ...rest] = item.keys;
    if (root !== 'sensors') continue;
    const elements = item.shape?.[0] ?? item.length / SFS_DTYPES[item.dtype];
    const path = rest.join('/');
    if (/^frames\/\d+\/points\/positions$/.test(path)) points.set(sensor, (points.get(sensor) ?? 0) + (item.shape ? elements : elements / 3));
    else if (path === 'poses/timestamps') poses.set(sensor, elements);
  }
  const listLength = (value: unknown) => (Array.isArray(value) ? value.length : undefined);
  const sensors = header.sensors.slice(0, LISTED_SENSORS).map((sensor, i) => ({
    id: sensor.id,
    type: sensor.type,
    frames: listLength(sensor.frames) ?? listLength(sensor.images) ?? null,
    points: points.get(i) ?? null,
    poses: poses.get(i) ?? null,
  }));
  const metadata = (header as Record<string, unknown>).metadata;
  return {
    version: String(header.version),
    timeUnit: typeof header.time_unit === 'string' ? header.time_unit : null,
    sensorCount: header.sensors.length,
    sensors,
    itemCount: items.length,
    binaryStart,
    binaryBytes: Math.max(size - binaryStart, 0),
    itemsEnd,
    metadataKeys: isRecord(metadata) ? Object.keys(metadata).slice(0, LISTED_METADATA_KEYS) : [],
  };
}

/** Runs create-task's preflight on a local file and describes its header. Reads at most the header cap + 4 bytes. */
export async function inspectSfsFile(file: string, routing: Routing): Promise<SceneInspection> {
  const info = await stat(file).catch(() => undefined);
  if (!info) throw new CliError(`${printable(file)}: no such file; give the path of an .sfs file`, EXIT.usage);
  if (!info.isFile()) throw new CliError(`${printable(file)}: not a file; give the path of an .sfs file`, EXIT.usage);
  // create-task refuses an empty object before it reads anything, in these words.
  if (info.size === 0) return { file, size: 0, acceptable: false, reason: 'the object is empty (0 bytes)' };
  const objects = new LocalSceneFile(file, info.size);
  const ref = { bucket: '(local file)', key: file };
  const content = await checkSceneContent(ref, 'sensor_fusion', { exists: true, size: info.size }, objects, routing);
  let declaration: SceneDeclaration | undefined;
  try {
    // Without the file's size: a header whose items overrun the file still says what it declares.
    declaration = declarationOf(parseSfsHeader(Buffer.concat(objects.read), { maxHeaderBytes: routing.maxHeaderBytes }), info.size);
  } catch (err) {
    if (!(err instanceof SfsFormatError)) throw err;
  }
  return { file, size: info.size, acceptable: content.ok, ...(content.ok ? {} : { reason: content.reason }), ...(declaration ? { declaration } : {}) };
}

const count = (n: number) => n.toLocaleString('en-US');

/** The inspection for people. Everything from the file (ids, types, keys, the version, the reason) is escaped: a header cannot drive the terminal. */
function describeInspection(inspection: SceneInspection): string {
  const { declaration: d } = inspection;
  const rows: Array<[string, string]> = [['file', `${inspection.file} (${count(inspection.size)} bytes)`]];
  if (d) {
    rows.push(
      ['version', d.version],
      ['time unit', d.timeUnit ?? 'microseconds (not declared: the default)'],
      ['items', `${count(d.itemCount)} in $items, ending at byte ${count(d.itemsEnd)} of the binary section`],
      ['binary', `${count(d.binaryBytes)} bytes, from byte ${count(d.binaryStart)}`],
      ['metadata', d.metadataKeys.length > 0 ? d.metadataKeys.join(', ') : '(none)'],
      ['sensors', count(d.sensorCount)],
    );
  }
  const width = Math.max(...rows.map(([label]) => label.length));
  let text = rows.map(([label, value]) => `${label.padEnd(width)}  ${printable(value)}\n`).join('');
  if (d && d.sensors.length > 0) {
    const table = formatTable(['ID', 'TYPE', 'FRAMES', 'POINTS', 'POSES'], d.sensors.map((s) => [String(s.id), s.type, s.frames, s.points, s.poses]));
    text += table.replace(/^/gm, '  ').replace(/ +$/, '');
    if (d.sensorCount > d.sensors.length) text += `  … and ${count(d.sensorCount - d.sensors.length)} more sensors\n`;
  }
  const verdict = inspection.acceptable ? 'acceptable: the pipeline would create a task for it' : `rejected: ${printable(inspection.reason ?? '')}`;
  return `${text}${'verdict'.padEnd(width)}  ${verdict}\n`;
}

export const registerInspect: RegisterCommand = (program, context) => {
  program
    .command('inspect')
    .description('Show what an .sfs scene declares and whether the pipeline would accept it (reads the header only)')
    .argument('<scene>', 'the .sfs file')
    .option('--max-header-bytes <bytes>', "the largest header accepted: the stack's routing.maxHeaderBytes", String(parseConfig(RoutingSchema, { project: 'inspect' }, 'routing').maxHeaderBytes))
    .option('--json', 'print one JSON document instead of a description')
    .addHelpText(
      'after',
      `
The verdict is create-task's own check before it creates a task: the header (JSON, padded to 4 bytes, ending at
the first zero byte, within --max-header-bytes) must be valid, and every $items entry must fit its dtype × shape
and lie inside the file. Only the header is read (as create-task reads it with a ranged GET).

--json fields: file, size, acceptable, reason (when not acceptable), declaration (when the header can be read):
version, timeUnit (null: not declared), sensorCount, sensors [{id, type, frames, points, poses}] (the first 100),
itemCount, binaryStart, binaryBytes, itemsEnd, metadataKeys.

Exit codes: 0 acceptable; 1 the pipeline would reject it (the reason is printed); 2 a bad option or no such file.

Examples:
  $ sfs-pipeline inspect drive.sfs
  $ sfs-pipeline inspect drive.sfs --json | jq .declaration.sensors
  $ sfs-pipeline inspect big.sfs --max-header-bytes 16777216
`,
    )
    .action(async (file: string, options: { maxHeaderBytes: string; json?: boolean }) => {
      const routing = routingFor(options.maxHeaderBytes);
      const inspection = await inspectSfsFile(file, routing);
      context.io.out.write(options.json ? jsonLine(inspection) : describeInspection(inspection));
      if (!inspection.acceptable) context.exitCode = EXIT.failure;
    });
};

/** Routing as the stack's config schema fills it in; only the header cap plays a part in the check. */
function routingFor(maxHeaderBytes: string): Routing {
  const bytes = /^\d+$/.test(maxHeaderBytes) ? Number(maxHeaderBytes) : NaN;
  try {
    return parseConfig(RoutingSchema, { project: 'inspect', maxHeaderBytes: bytes }, '--max-header-bytes');
  } catch {
    throw new CliError(`--max-header-bytes ${printable(maxHeaderBytes)}: give a whole number of bytes from 1024 to 67108864, as the stack's routing.maxHeaderBytes`, EXIT.usage);
  }
}
