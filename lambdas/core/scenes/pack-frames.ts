/**
 * LiDAR frames (frame-format.ts) to one `.sfs` scene: one lidar sensor whose frames are
 * `{timestamp, points: {positions float32 [n, 3], intensities? uint8 [n], timestamps? uint32 [n]}}`, posed at each
 * frame's device_position and device_heading (`[x, y, z, qx, qy, qz, qw]`, the heading kept exactly as given).
 * Pure: files are read (and bounded) by the caller.
 */
import { FrameFormatError, type LidarFrame, type LidarPoint } from './frame-format.js';
import type { SFS_TIME_UNITS, SfsKeyPath } from './sfs/format.js';
import { encodeSfs, type EncodedSfs, type SfsBinary, type SfsValue } from './sfs/writer.js';

export type SfsTimeUnit = (typeof SFS_TIME_UNITS)[number];

export interface PackOptions {
  /** The lidar sensor's id (default "lidar"). */
  sensorId?: string;
  /** The unit of every timestamp in the frames (default "microseconds"). */
  timeUnit?: SfsTimeUnit;
  /** What the points are relative to: "world" (Scale's LiDAR frames; default) or "ego" (the device). */
  coordinates?: 'world' | 'ego';
}

/** Bounds on one scene: everything packed is held in memory until it is written. */
export const PACK_LIMITS = {
  maxFrames: 10_000,
  /** About 17 bytes a point once packed: some 340 MB. */
  maxTotalPoints: 20_000_000,
} as const;

/** A frame reduced to what the .sfs keeps, named by the file it came from. */
export interface PackedFrame {
  name: string;
  timestamp: number;
  /** x, y, z, qx, qy, qz, qw */
  pose: number[];
  positions: Float32Array;
  intensities?: Uint8Array;
  timestamps?: Uint32Array;
  /** What the frame holds that a lidar frame of an .sfs has no place for: reported, not packed. */
  unpacked: { images: number; deviceIds: boolean };
}

/** The first point whose presence of `field` differs from the first point's, if any. */
function mixedAt(points: LidarPoint[], field: 'i' | 't'): number | undefined {
  const expected = points[0]![field] !== undefined;
  for (let k = 1; k < points.length; k++) if ((points[k]![field] !== undefined) !== expected) return k;
  return undefined;
}

/** Converts one checked frame; `name` (its file) names it in every message. */
export function toPackedFrame(frame: LidarFrame, name: string): PackedFrame {
  const { points } = frame;
  for (const [field, what] of [['i', 'an intensity'], ['t', 'a time']] as const) {
    const k = mixedAt(points, field);
    if (k === undefined) continue;
    const has = points[0]![field] !== undefined;
    throw new FrameFormatError(
      `${name}: points[${k}].${field}: ${has ? 'missing' : 'present'}, while points[0] ${has ? 'has one' : 'has none'}; give every point of a frame ${what} or none`,
    );
  }
  const positions = new Float32Array(points.length * 3);
  points.forEach((p, k) => positions.set([p.x, p.y, p.z], k * 3));
  const intensities = points[0]!.i === undefined ? undefined : Uint8Array.from(points, (p) => p.i!);
  const timestamps = points[0]!.t === undefined ? undefined : Uint32Array.from(points, (p) => p.t!);
  const { device_position: at, device_heading: q } = frame;
  return {
    name,
    timestamp: frame.timestamp,
    pose: [at.x, at.y, at.z, q.x, q.y, q.z, q.w],
    positions,
    ...(intensities ? { intensities } : {}),
    ...(timestamps ? { timestamps } : {}),
    unpacked: { images: frame.images?.length ?? 0, deviceIds: points.some((p) => p.d !== undefined) },
  };
}

/**
 * The scene's order: by timestamp. Two frames of one sensor at the same time cannot both be a sweep, so they are
 * refused, naming both; the file name breaks no ties and the order never depends on how a folder lists.
 */
export function orderFrames(frames: readonly PackedFrame[]): PackedFrame[] {
  const ordered = [...frames].sort((a, b) => a.timestamp - b.timestamp || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let k = 1; k < ordered.length; k++) {
    const [before, frame] = [ordered[k - 1]!, ordered[k]!];
    if (before.timestamp === frame.timestamp) {
      throw new FrameFormatError(`${before.name} and ${frame.name}: both have timestamp ${frame.timestamp}; each sweep needs a time of its own`);
    }
  }
  return ordered;
}

/** The scene for already converted frames, in scene order (see orderFrames). */
export function sceneOfPackedFrames(frames: readonly PackedFrame[], options: PackOptions = {}): Record<string, SfsValue> {
  if (frames.length === 0) throw new FrameFormatError('no frames to pack: a scene needs at least one');
  if (frames.length > PACK_LIMITS.maxFrames) {
    throw new FrameFormatError(`${frames.length} frames; at most ${PACK_LIMITS.maxFrames} go into one scene: split them into several`);
  }
  const totalPoints = frames.reduce((sum, f) => sum + f.positions.length / 3, 0);
  if (totalPoints > PACK_LIMITS.maxTotalPoints) {
    throw new FrameFormatError(`${totalPoints} points in all; at most ${PACK_LIMITS.maxTotalPoints} go into one scene: split the frames into several scenes`);
  }
  const ordered = orderFrames(frames);
  return {
    version: '1.0',
    time_unit: options.timeUnit ?? 'microseconds',
    time_offset: 0,
    metadata: { source: 'sfs-pipeline pack' },
    sensors: [
      {
        id: options.sensorId ?? 'lidar',
        type: 'lidar',
        coordinates: options.coordinates ?? 'world',
        poses: {
          timestamps: Float64Array.from(ordered, (f) => f.timestamp),
          values: Float64Array.from(ordered.flatMap((f) => f.pose)),
        },
        frames: ordered.map((f) => ({
          timestamp: f.timestamp,
          points: {
            positions: f.positions,
            ...(f.intensities ? { intensities: f.intensities } : {}),
            ...(f.timestamps ? { timestamps: f.timestamps } : {}),
          },
        })),
      },
    ],
    annotations: [],
    attributes: [],
  };
}

/** Checked frames (each with the name of its file) to the scene they make. */
export function packFrames(frames: ReadonlyArray<{ name: string; frame: LidarFrame }>, options: PackOptions = {}): Record<string, SfsValue> {
  return sceneOfPackedFrames(frames.map(({ name, frame }) => toPackedFrame(frame, name)), options);
}

/** Positions are [n, 3]; every other array (intensities, point times, pose times and values) lists its elements. */
const packShapes = (keys: SfsKeyPath, value: SfsBinary): number[] =>
  keys[keys.length - 1] === 'positions' ? [value.length / 3, 3] : keys[keys.length - 2] === 'poses' && keys[keys.length - 1] === 'values' ? [value.length / 7, 7] : [value.length];

/** Lays a packed scene out as an .sfs: intensities are numbers (uint8), not raw bytes. */
export function encodePackedScene(scene: Record<string, SfsValue>): EncodedSfs {
  return encodeSfs(scene, packShapes, (keys) => keys[keys.length - 1] !== 'intensities');
}
