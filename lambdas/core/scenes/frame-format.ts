/**
 * The LiDAR frame format: one JSON document per sweep, as a perception stack exports it, modelled on the frames
 * Scale reads for `split_base64` scenes (points `{x, y, z, i?, d?, t?}`, `device_position`, `device_heading`,
 * `timestamp`, optional camera `images`). `sfs-pipeline pack` turns a set of these into one `.sfs` scene.
 *
 * The same rules are published as JSON Schema in `frame.schema.json` beside this file (a test keeps the two in
 * agreement). Every number is checked for the range it is stored in, so nothing is silently lost on the way into
 * the `.sfs`: point coordinates are float32, intensities uint8, point times uint32, and timestamps must be whole
 * numbers JSON can carry exactly (at most 2^53 - 1).
 */
import * as z from 'zod/mini';
import { checkAgainst, summarizeProblems } from '../shared/validation.js';

/** Bounds that keep one frame (and a pack of them) within memory and time, whatever a file holds. */
export const FRAME_LIMITS = {
  /** Points in one sweep: a 128-beam spinning LiDAR gives about 260,000. */
  maxPointsPerFrame: 1_000_000,
  maxImagesPerFrame: 32,
  /** A frame file is read whole; 1,000,000 points of JSON take about 70 MB. */
  maxFrameFileBytes: 128 * 1024 * 1024,
  maxImageUrlLength: 2048,
} as const;

const FLOAT32_MAX = 3.4028234663852886e38;
const UINT32_MAX = 4_294_967_295;

const finite = (min: number, max: number, range: string) =>
  z.number({ error: 'must be a finite number' }).check(z.gte(min, `must be at least ${min} (${range})`), z.lte(max, `must be at most ${max} (${range})`));
/** Positions are stored as float32: a larger magnitude would become Infinity. */
const float32 = finite(-FLOAT32_MAX, FLOAT32_MAX, 'the float32 range point positions are stored in');
const float64 = finite(-Number.MAX_VALUE, Number.MAX_VALUE, 'a finite number');
const whole = (max: number, range: string) =>
  z.int({ error: `must be a whole number from 0 to ${max} (${range})` }).check(z.gte(0, `must be at least 0 (${range})`), z.lte(max, `must be at most ${max} (${range})`));

/** Time in the scene's time unit; above 2^53 - 1 a JSON number no longer holds every whole value. */
const timestamp = whole(Number.MAX_SAFE_INTEGER, 'a time JSON carries exactly; give times relative to a recent origin');

export const Vector3Schema = z.strictObject({ x: float64, y: float64, z: float64 });
/** Scale's quaternion: scalar last, kept exactly as given (not normalized). */
export const QuaternionSchema = z.strictObject({ x: float64, y: float64, z: float64, w: float64 });

export const LidarPointSchema = z.strictObject({
  x: float32,
  y: float32,
  z: float32,
  /** Intensity, as the .sfs stores it (uint8): scale 0–1 intensities to 0–255 before export. */
  i: z.optional(whole(255, 'intensity is stored as uint8')),
  /** Which device took the point (several LiDARs in one sweep). */
  d: z.optional(whole(UINT32_MAX, 'a uint32 device id')),
  /** The point's own time in the scene's time unit, copied as given into the uint32 point timestamps: an offset (e.g. from the frame's timestamp), not a time since the epoch. */
  t: z.optional(whole(UINT32_MAX, 'point times are stored as uint32')),
});

/** JSON Schema's maxLength counts characters (code points), not UTF-16 units as string.length does. */
const withinCodePoints = (max: number) => (text: string) => {
  if (text.length <= max) return true;
  if (text.length > 2 * max) return false;
  let count = 0;
  for (const _ of text) if (++count > max) return false;
  return true;
};

/** A camera image taken with the sweep. Only its URL is required; Scale's camera fields (fx, fy, …) pass through. */
export const FrameImageSchema = z.looseObject({
  image_url: z.string({ error: 'must be the image URL (a string)' }).check(
    z.minLength(1, 'must not be empty'),
    z.refine(withinCodePoints(FRAME_LIMITS.maxImageUrlLength), `must be at most ${FRAME_LIMITS.maxImageUrlLength} characters`),
  ),
  timestamp: z.optional(timestamp),
  position: z.optional(Vector3Schema),
  heading: z.optional(QuaternionSchema),
});

const count = (n: number) => n.toLocaleString('en-US');
const frameFields = {
  timestamp,
  device_position: Vector3Schema,
  device_heading: QuaternionSchema,
  images: z.optional(
    z.array(FrameImageSchema, { error: 'must be an array of images' }).check(
      z.maxLength(FRAME_LIMITS.maxImagesPerFrame, `must hold at most ${FRAME_LIMITS.maxImagesPerFrame} images`),
    ),
  ),
};

/** One LiDAR frame: the whole documented format, as one schema. */
export const LidarFrameSchema = z.strictObject({
  ...frameFields,
  points: z.array(LidarPointSchema, { error: 'must be an array of points' }).check(
    z.minLength(1, 'must hold at least 1 point'),
    z.maxLength(FRAME_LIMITS.maxPointsPerFrame, `must hold at most ${count(FRAME_LIMITS.maxPointsPerFrame)} points`),
  ),
});

export type LidarFrame = z.infer<typeof LidarFrameSchema>;
export type LidarPoint = z.infer<typeof LidarPointSchema>;

/*
 * The frame without its points: a schema over a million-element array collects an error for every bad element,
 * so points are counted first and then checked one at a time (see checkLidarFrame).
 */
const FrameShellSchema = z.strictObject({
  ...frameFields,
  points: z.custom<unknown[]>(Array.isArray, { error: 'must be an array of points' }),
});

/** A frame file that cannot be used. The message names the file and the field. */
export class FrameFormatError extends Error {
  override readonly name = 'FrameFormatError';
}

const fail = (file: string, what: string): never => {
  throw new FrameFormatError(`${file}: ${what}`);
};

/**
 * Checks a parsed frame against the format; `file` names it in the message. Same verdict as LidarFrameSchema,
 * in bounded time and with a bounded message: the count of points is checked before any point is.
 */
export function checkLidarFrame(json: unknown, file: string): LidarFrame {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return fail(file, 'the frame is not a JSON object');
  const shell = checkAgainst(FrameShellSchema, json);
  if (!shell.ok) return fail(file, summarizeProblems(shell.problems));
  const { points } = shell.value;
  if (points.length === 0) return fail(file, 'points: must hold at least 1 point');
  if (points.length > FRAME_LIMITS.maxPointsPerFrame) {
    return fail(file, `points: holds ${count(points.length)} points; at most ${count(FRAME_LIMITS.maxPointsPerFrame)} are allowed per frame`);
  }
  const problems: string[] = [];
  let failed = 0;
  for (let k = 0; k < points.length; k++) {
    if (isPlainPoint(points[k])) continue;
    // Once the frame is refused and enough is named, the rest are counted by the fast check alone (it agrees with
    // the schema): a schema's errors cost microseconds each, and a hostile frame has a million bad points.
    if (problems.length === NAMED_POINTS) {
      failed++;
      continue;
    }
    // The schema decides (and says why): the fast check only ever passes points the schema passes too.
    const checked = checkAgainst(LidarPointSchema, points[k]);
    if (checked.ok) continue;
    failed++;
    problems.push(checked.problems.slice(0, 3).map((p) => (p.startsWith('(root)') ? `points[${k}]${p.slice(6)}` : `points[${k}].${p}`)).join('; '));
  }
  if (failed > 0) return fail(file, `${count(failed)} of ${count(points.length)} points are invalid: ${summarizeProblems(problems, undefined, failed)}`);
  return { ...shell.value, points: points as LidarPoint[] };
}

/** A bad frame's message names this many points, then counts the rest. */
const NAMED_POINTS = 20;
const POINT_KEYS: ReadonlySet<string> = new Set(['x', 'y', 'z', 'i', 'd', 't']);
const inFloat32 = (v: unknown) => typeof v === 'number' && v >= -FLOAT32_MAX && v <= FLOAT32_MAX;
const wholeUpTo = (v: unknown, max: number) => v === undefined || (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max);

/**
 * A sweep has hundreds of thousands of points, and a schema parse costs microseconds each: this check, about a
 * hundred times cheaper, gives LidarPointSchema's verdict on JSON input (a test compares the two on every fixture).
 */
function isPlainPoint(p: unknown): boolean {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return false;
  for (const key of Object.keys(p)) if (!POINT_KEYS.has(key)) return false;
  const { x, y, z, i, d, t } = p as Record<string, unknown>;
  return inFloat32(x) && inFloat32(y) && inFloat32(z) && wholeUpTo(i, 255) && wholeUpTo(d, UINT32_MAX) && wholeUpTo(t, UINT32_MAX);
}

/** Parses a frame file's text and checks it. Size is the caller's to bound (FRAME_LIMITS.maxFrameFileBytes). */
export function parseLidarFrame(text: string, file: string): LidarFrame {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return fail(file, `not valid JSON (${(err as Error).message.slice(0, 200)})`);
  }
  return checkLidarFrame(json, file);
}
