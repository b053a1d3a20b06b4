/**
 * `sfs-pipeline pack`: LiDAR frame files (the documented frame format, lambdas/core/scenes/frame-format.ts) into one
 * `.sfs` scene the pipeline accepts. Each file is size-checked before it is read and checked against the format
 * before anything is written; the scene is written to a temporary file beside --out and renamed into place, so a
 * failed pack never leaves a partial scene under the name asked for.
 */
import { Option } from 'commander';
import { createWriteStream } from 'node:fs';
import { readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FRAME_LIMITS, FrameFormatError, parseLidarFrame } from '../../lambdas/core/scenes/frame-format.js';
import { encodePackedScene, PACK_LIMITS, sceneOfPackedFrames, toPackedFrame, type PackedFrame, type PackOptions } from '../../lambdas/core/scenes/pack-frames.js';
import { SFS_TIME_UNITS } from '../../lambdas/core/scenes/sfs/format.js';
import { SCENE_SUFFIX } from '../../lambdas/core/shared/config.js';
import type { RegisterCommand } from '../sfs-pipeline.js';
import { CliError, EXIT, jsonLine, printable } from './io.js';

interface PackCommandOptions {
  out: string;
  sensorId: string;
  timeUnit: (typeof SFS_TIME_UNITS)[number];
  coordinates: 'world' | 'ego';
  force?: boolean;
  json?: boolean;
}

/** What a pack wrote, as --json prints it. */
export interface PackReport {
  out: string;
  frames: number;
  points: number;
  bytes: number;
  sensorId: string;
  timeUnit: string;
  firstTimestamp: number;
  lastTimestamp: number;
}

const count = (n: number) => n.toLocaleString('en-US');

/** The frame files the paths name: a directory's *.json files (not its subfolders), and files named directly. */
export async function frameFilesOf(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  const seen = new Set<string>();
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (!info) throw new CliError(`${printable(path)}: no such file or directory; give frame files or a folder of them`, EXIT.usage);
    const named = info.isDirectory()
      ? (await readdir(path, { withFileTypes: true })).filter((e) => e.isFile() && e.name.endsWith('.json')).map((e) => join(path, e.name)).sort()
      : [path];
    for (const file of named) {
      // The same file twice (named and in its folder, or via a link) would be two sweeps at one time.
      const real = await realpath(file);
      if (!seen.has(real)) files.push(file);
      seen.add(real);
    }
  }
  return files;
}

/** Reads, checks and converts one frame file, or says (naming the file) why it cannot be packed. */
async function readFrame(file: string): Promise<PackedFrame> {
  let bytes: Buffer;
  try {
    const info = await stat(file);
    if (info.size > FRAME_LIMITS.maxFrameFileBytes) {
      throw new FrameFormatError(`${file}: is ${count(info.size)} bytes; a frame file may be at most ${count(FRAME_LIMITS.maxFrameFileBytes)} (split the sweep, or thin its points)`);
    }
    bytes = await readFile(file);
  } catch (err) {
    if (err instanceof FrameFormatError) throw err;
    throw new FrameFormatError(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FrameFormatError(`${file}: is not UTF-8 text; a frame is a JSON document`);
  }
  return toPackedFrame(parseLidarFrame(text, file), file);
}

/** Packs the frames the paths name into `out`. Throws CliError with the exit code for each refusal. */
export async function packFiles(paths: string[], out: string, options: PackOptions & { force?: boolean }, warn: (line: string) => void): Promise<PackReport> {
  const outInfo = await stat(out).catch(() => undefined);
  const shown = printable(out);
  if (outInfo?.isDirectory()) throw new CliError(`--out ${shown} is a folder; give the path of the .sfs file to write`, EXIT.usage);
  // The scene is renamed into place: over a device or a FIFO (/dev/null as root) that would replace the node itself.
  if (outInfo && !outInfo.isFile()) throw new CliError(`--out ${shown} exists and is not a regular file (a device, FIFO or socket): --force does not replace those; give the path of an .sfs file`, EXIT.usage);
  if (outInfo && !options.force) throw new CliError(`--out ${shown} already exists; add --force to replace it`, EXIT.usage);
  const files = await frameFilesOf(paths);
  if (files.length === 0) throw new CliError(`no frame files in ${printable(paths.join(', '))}: a folder's frames are its *.json files`, EXIT.notFound);
  if (files.length > PACK_LIMITS.maxFrames) throw new CliError(`${count(files.length)} frame files; at most ${count(PACK_LIMITS.maxFrames)} go into one scene: pack them as several scenes`);

  const frames: PackedFrame[] = [];
  let points = 0;
  try {
    for (const file of files) {
      const frame = await readFrame(file);
      points += frame.positions.length / 3;
      // Checked as frames come in, so a folder of huge sweeps stops at the first one over the bound.
      if (points > PACK_LIMITS.maxTotalPoints) throw new FrameFormatError(`${file}: brings the scene to ${count(points)} points; at most ${count(PACK_LIMITS.maxTotalPoints)} go into one scene: pack the frames as several scenes`);
      frames.push(frame);
    }
    const scene = sceneOfPackedFrames(frames, options);
    const withImages = frames.filter((f) => f.unpacked.images > 0).length;
    if (withImages > 0) warn(`note: ${withImages} frame(s) name camera images; an .sfs embeds its images' bytes, so these URLs are not packed`);
    if (frames.some((f) => f.unpacked.deviceIds)) warn("note: the points' device ids (d) are not packed: an .sfs lidar frame has no place for them");
    const bytes = await writeAtomically(out, scene);
    const times = frames.map((f) => f.timestamp);
    return { out, frames: frames.length, points, bytes, sensorId: options.sensorId ?? 'lidar', timeUnit: options.timeUnit ?? 'microseconds', firstTimestamp: Math.min(...times), lastTimestamp: Math.max(...times) };
  } catch (err) {
    // The message quotes the frame's own field names and values: escaped, so a hostile frame cannot drive the terminal.
    if (err instanceof FrameFormatError) throw new CliError(`${printable(err.message)}\nnothing was written (the frame format: lambdas/core/scenes/frame.schema.json)`, EXIT.failure);
    throw err;
  }
}

/** Streams the scene to a temporary file beside `out`, then renames it into place. Returns the bytes written. */
async function writeAtomically(out: string, scene: Parameters<typeof encodePackedScene>[0]): Promise<number> {
  const encoded = encodePackedScene(scene);
  const partial = join(dirname(out), `.${basename(out)}.${process.pid}.${Date.now()}.partial`);
  try {
    await pipeline(Readable.from(encoded.chunks(), { objectMode: false }), createWriteStream(partial, { flags: 'wx' }));
    await rename(partial, out);
  } catch (err) {
    await rm(partial, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`cannot write ${printable(out)}: its folder ${printable(dirname(out))} does not exist`, EXIT.usage);
    throw new CliError(`cannot write ${printable(out)} (${code ?? (err as Error).message})`, EXIT.failure);
  }
  return encoded.size;
}

function sensorIdOf(value: string): string {
  // The id goes into the header and every label Scale makes; keep it a plain name.
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) throw new CliError(`--sensor-id ${JSON.stringify(value.slice(0, 80))}: use 1 to 64 letters, digits, '.', '_' or '-'`, EXIT.usage);
  return value;
}

export const registerPack: RegisterCommand = (program, context) => {
  program
    .command('pack')
    .description('Pack LiDAR frame files (one JSON document per sweep) into one .sfs scene the pipeline accepts')
    .argument('<frames...>', 'a folder of frame files (its *.json files) and/or frame files')
    .requiredOption('--out <file>', 'the .sfs file to write')
    .option('--sensor-id <id>', "the lidar sensor's id in the scene", 'lidar')
    .addOption(new Option('--time-unit <unit>', 'the unit of every timestamp in the frames').choices(SFS_TIME_UNITS).default('microseconds'))
    .addOption(new Option('--coordinates <frame>', 'what the points are relative to: world (as in Scale LiDAR frames) or ego (the device)').choices(['world', 'ego']).default('world'))
    .option('--force', 'replace --out if it exists')
    .option('--json', 'print what was written as one JSON document instead of a sentence')
    .addHelpText(
      'after',
      `
Frame format: lambdas/core/scenes/frame.schema.json (JSON Schema). Each frame: timestamp (a whole number in
--time-unit), device_position {x,y,z}, device_heading {x,y,z,w} (a quaternion, kept as given), points
[{x,y,z,i?,d?,t?}] (1 to ${count(FRAME_LIMITS.maxPointsPerFrame)}), optional images. A frame file may be at most ${count(FRAME_LIMITS.maxFrameFileBytes)} bytes.

Order: frames are sorted by timestamp (whatever their names or the order given); two frames with the same
timestamp are refused. The scene: one lidar sensor, a pose per frame ([x,y,z,qx,qy,qz,qw] from device_position
and device_heading), each frame's points as float32 positions, uint8 intensities (i), uint32 times (t).
Camera image URLs and device ids (d) are not packed (a note says so).

Exit codes: 0 written; 1 a frame is unreadable or invalid (named; nothing written); 2 a bad option, a missing
path, or --out exists (add --force; never over a device, FIFO or socket); 3 no frame files in the paths given.

Examples:
  $ sfs-pipeline pack test/fixtures/frames --out /tmp/drive.sfs
  $ sfs-pipeline pack sweeps/*.json --out drive.sfs --sensor-id roof_lidar --time-unit nanoseconds --force
  $ sfs-pipeline pack sweeps/ --out drive.sfs --json | jq .points
`,
    )
    .action(async (paths: string[], options: PackCommandOptions) => {
      const { io } = context;
      const sensorId = sensorIdOf(options.sensorId);
      const warn = (line: string) => void io.err.write(`${line}\n`);
      if (!options.out.endsWith(SCENE_SUFFIX)) warn(`note: the pipeline only takes keys ending in ${SCENE_SUFFIX}; upload ${printable(options.out)} under such a key`);
      const report = await packFiles(paths, options.out, { sensorId, timeUnit: options.timeUnit, coordinates: options.coordinates, force: options.force }, warn);
      io.out.write(
        options.json
          ? jsonLine(report)
          : `wrote ${printable(report.out)}: ${count(report.frames)} frames, ${count(report.points)} points, ${count(report.bytes)} bytes (lidar "${report.sensorId}", ${report.timeUnit} ${report.firstTimestamp}..${report.lastTimestamp})\n`,
      );
    });
};
