import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { checkLidarFrame, FrameFormatError, LidarFrameSchema, parseLidarFrame } from '../../../../lambdas/core/scenes/frame-format.js';
import { packFrames } from '../../../../lambdas/core/scenes/pack-frames.js';

const jsonSchema = JSON.parse(await readFile(new URL('../../../../lambdas/core/scenes/frame.schema.json', import.meta.url), 'utf8')) as Schema;

/*
 * A JSON Schema validator for the keywords frame.schema.json uses, written from the 2020-12 specification and
 * nothing else, so it shares no code with the zod schema it is compared to. It compiles the schema to checks once
 * (a million points are checked in well under a second); a keyword it does not know fails the test rather than
 * being ignored.
 */
type Schema = { [keyword: string]: unknown };
type Check = (value: unknown) => boolean;
const ANNOTATIONS = new Set(['$schema', 'title', 'description', '$defs']);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const TYPES: Record<string, Check> = {
  object: isObject,
  array: Array.isArray,
  string: (v) => typeof v === 'string',
  number: (v) => typeof v === 'number',
  integer: (v) => typeof v === 'number' && Number.isInteger(v),
};

function compile(schema: Schema, root: Schema): Check {
  const checks: Check[] = [];
  for (const [keyword, arg] of Object.entries(schema)) {
    if (ANNOTATIONS.has(keyword)) continue;
    const n = arg as number;
    switch (keyword) {
      case '$ref': {
        const name = String(arg).replace(/^#\/\$defs\//, '');
        const target = (root.$defs as Record<string, Schema>)[name];
        if (!target) throw new Error(`the test's validator cannot resolve ${String(arg)}`);
        let compiled: Check | undefined;
        checks.push((v) => (compiled ??= compile(target, root))(v));
        break;
      }
      case 'type':
        checks.push(TYPES[String(arg)]!);
        break;
      case 'minimum':
        checks.push((v) => typeof v !== 'number' || v >= n);
        break;
      case 'maximum':
        checks.push((v) => typeof v !== 'number' || v <= n);
        break;
      case 'minLength': // characters (code points), not UTF-16 units
        checks.push((v) => typeof v !== 'string' || [...v].length >= n);
        break;
      case 'maxLength':
        checks.push((v) => typeof v !== 'string' || [...v].length <= n);
        break;
      case 'minItems':
        checks.push((v) => !Array.isArray(v) || v.length >= n);
        break;
      case 'maxItems':
        checks.push((v) => !Array.isArray(v) || v.length <= n);
        break;
      case 'items': {
        const item = compile(arg as Schema, root);
        checks.push((v) => !Array.isArray(v) || v.every(item));
        break;
      }
      case 'required':
        checks.push((v) => !isObject(v) || (arg as string[]).every((k) => Object.hasOwn(v, k)));
        break;
      case 'properties':
      case 'additionalProperties': {
        if (keyword === 'additionalProperties' && typeof arg !== 'boolean') throw new Error('the test\'s validator takes only true/false here');
        if (keyword === 'additionalProperties') break; // applied with properties, below
        const properties = new Map(Object.entries(arg as Record<string, Schema>).map(([k, sub]) => [k, compile(sub, root)]));
        const closed = schema.additionalProperties === false;
        checks.push((v) => {
          if (!isObject(v)) return true;
          for (const key in v) {
            const property = Object.hasOwn(v, key) ? properties.get(key) : undefined;
            if (property ? !property(v[key]) : closed) return false;
          }
          return true;
        });
        break;
      }
      default:
        throw new Error(`the test's validator does not know ${keyword}`);
    }
  }
  return (value) => checks.every((check) => check(value));
}
const matchesJsonSchema = compile(jsonSchema, jsonSchema);

const point = { x: 1.5, y: -2, z: 0.25 };
const frame = (change: Record<string, unknown> = {}) => ({
  timestamp: 1_700_000_000_000_000,
  device_position: { x: 0, y: 0, z: 1.8 },
  device_heading: { x: 0, y: 0, z: 0, w: 1 },
  points: [point],
  ...change,
});
const withPoint = (p: Record<string, unknown>) => frame({ points: [point, p] });
const image = { image_url: 'https://example.com/cam/0.jpg' };
const F32_MAX = 3.4028234663852886e38;

const VALID: Array<[string, unknown]> = [
  ['the four required fields', frame()],
  ['every optional field', frame({ points: [{ ...point, i: 7, d: 2, t: 1200 }], images: [{ ...image, timestamp: 5, position: { x: 1, y: 2, z: 3 }, heading: { x: 0, y: 0, z: 0, w: 1 }, fx: 1000, camera_model: 'brown_conrady' }] })],
  ['the largest values each field stores', frame({ timestamp: 9_007_199_254_740_991, device_position: { x: 1e300, y: -1e300, z: 0 }, points: [{ x: F32_MAX, y: -F32_MAX, z: 0, i: 255, d: 4_294_967_295, t: 4_294_967_295 }] })],
  ['the smallest', frame({ timestamp: 0, points: [{ ...point, i: 0, d: 0, t: 0 }] })],
  ['no images', frame({ images: [] })],
  ['32 images', frame({ images: Array(32).fill(image) })],
  // 2,048 characters of 2 UTF-16 units each: JSON Schema counts characters.
  ['a 2,048-character image URL', frame({ images: [{ image_url: '📷'.repeat(2048) }] })],
  ['a heading kept as given, not normalized', frame({ device_heading: { x: 0, y: 0, z: 0, w: 2 } })],
];

/** [what, frame, what the message says: the field, and for some the problem]. */
const INVALID: Array<[string, unknown, string]> = [
  ['no timestamp', (({ timestamp: _, ...rest }) => rest)(frame()), 'timestamp:'],
  ['a negative timestamp', frame({ timestamp: -1 }), 'timestamp: must be at least 0'],
  ['a fractional timestamp', frame({ timestamp: 1.5 }), 'timestamp: must be a whole number'],
  ['a timestamp JSON cannot carry exactly', frame({ timestamp: 9_007_199_254_740_992 }), 'timestamp:'],
  ['a timestamp as text', frame({ timestamp: '1700000000' }), 'timestamp: must be a whole number'],
  ['a heading without w', frame({ device_heading: { x: 0, y: 0, z: 0 } }), 'device_heading.w:'],
  ['a heading as Euler angles', frame({ device_heading: { x: 0, y: 0, z: 0, w: 1, roll: 0 } }), 'device_heading: unknown key(s) roll'],
  ['an infinite position (1e999 in JSON)', frame({ device_position: { x: Infinity, y: 0, z: 0 } }), 'device_position.x: must be a finite number'],
  ['a position as an array', frame({ device_position: [0, 0, 0] }), 'device_position:'],
  ['no points', frame({ points: [] }), 'points: must hold at least 1 point'],
  ['points as an object', frame({ points: { 0: point } }), 'points: must be an array of points'],
  ['a coordinate beyond float32', withPoint({ ...point, x: 3.5e38 }), 'points[1].x: must be at most 3.4028234663852886e+38'],
  ['an infinite coordinate', withPoint({ ...point, z: -Infinity }), 'points[1].z: must be a finite number'],
  ['a point without z', withPoint({ x: 1, y: 2 }), 'points[1].z:'],
  ['a coordinate as text', withPoint({ ...point, y: '2' }), 'points[1].y: must be a finite number'],
  ['an intensity over 255', withPoint({ ...point, i: 256 }), 'points[1].i: must be at most 255'],
  ['a fractional intensity', withPoint({ ...point, i: 0.5 }), 'points[1].i: must be a whole number'],
  ['a negative point time', withPoint({ ...point, t: -1 }), 'points[1].t: must be at least 0'],
  ['a point time beyond uint32', withPoint({ ...point, t: 4_294_967_296 }), 'points[1].t: must be at most 4294967295'],
  ['a device id beyond uint32', withPoint({ ...point, d: 4_294_967_296 }), 'points[1].d: must be at most 4294967295'],
  ['a misspelled point field', withPoint({ ...point, intensity: 3 }), 'points[1]: unknown key(s) intensity'],
  ['a point that is null', withPoint(null as never), 'points[1]: expected object'],
  ['a point as an array', withPoint([1, 2, 3] as never), 'points[1]: expected object'],
  ['a null intensity', withPoint({ ...point, i: null }), 'points[1].i:'],
  ['a point time as text', withPoint({ ...point, t: '5' }), 'points[1].t:'],
  ['a "__proto__" field in a point (JSON makes it a field of its own)', withPoint(JSON.parse('{"x": 1, "y": 2, "z": 3, "__proto__": {"i": 1}}')), 'points[1]: unknown key(s) __proto__'],
  ['an unknown top-level field', frame({ radar_points: [] }), 'unknown key(s) radar_points'],
  ['images as an object', frame({ images: image }), 'images: must be an array of images'],
  ['an image without a URL', frame({ images: [{ timestamp: 1 }] }), 'images[0].image_url:'],
  ['an empty image URL', frame({ images: [{ image_url: '' }] }), 'images[0].image_url: must not be empty'],
  ['a 2,049-character image URL', frame({ images: [{ image_url: 'a'.repeat(2049) }] }), 'images[0].image_url: must be at most 2048 characters'],
  ["an image's heading with an extra field", frame({ images: [{ ...image, heading: { x: 0, y: 0, z: 0, w: 1, yaw: 1 } }] }), 'images[0].heading: unknown key(s) yaw'],
  ['33 images', frame({ images: Array(33).fill(image) }), 'images: must hold at most 32 images'],
  ['an array instead of a frame', [frame()], 'the frame is not a JSON object'],
  ['null', null, 'the frame is not a JSON object'],
];

const messageOf = (run: () => unknown): string => {
  try {
    run();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
};
const zodVerdict = (value: unknown) => LidarFrameSchema.safeParse(value).success;
const checkVerdict = (value: unknown) => {
  try {
    checkLidarFrame(value, 'f.json');
    return true;
  } catch (err) {
    if (err instanceof FrameFormatError) return false;
    throw err;
  }
};

describe('the LiDAR frame format: zod schema and JSON Schema agree', () => {
  it.each(VALID)('accepts %s', (_, value) => {
    expect([matchesJsonSchema(value), zodVerdict(value), checkVerdict(value)]).toEqual([true, true, true]);
  });

  it.each(INVALID)('refuses %s, naming the file and the field', (_, value, says) => {
    expect([matchesJsonSchema(value), zodVerdict(value), checkVerdict(value)]).toEqual([false, false, false]);
    const message = messageOf(() => checkLidarFrame(value, 'sweeps/0042.json'));
    expect(message.startsWith('sweeps/0042.json: ')).toBe(true);
    expect(message).toContain(says);
  });

  it('agrees on the points-per-frame limit: 1,000,000 points pass, 1,000,001 do not', () => {
    const at = frame({ points: Array(1_000_000).fill(point) });
    const over = frame({ points: Array(1_000_001).fill(point) });
    expect([matchesJsonSchema(at), zodVerdict(at), checkVerdict(at)]).toEqual([true, true, true]);
    expect([matchesJsonSchema(over), zodVerdict(over), checkVerdict(over)]).toEqual([false, false, false]);
  }, 30_000);
});

describe('hostile frames are refused quickly, with a bounded message naming the file and field', () => {
  it('counts points before checking any: 5,000,000 bad points cost nothing', () => {
    const started = performance.now();
    expect(() => checkLidarFrame(frame({ points: Array(5_000_000).fill('junk') }), 'huge.json')).toThrow(
      'huge.json: points: holds 5,000,000 points; at most 1,000,000 are allowed per frame',
    );
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('names the first bad points and counts the rest, within about 1 KB', () => {
    const points = Array.from({ length: 100_000 }, (_, k) => (k === 3 ? point : { x: 'a', y: 0, z: 0 }));
    const message = messageOf(() => checkLidarFrame(frame({ points }), 'drive/bad.json'));
    expect(message).toMatch(/^drive\/bad\.json: 99,999 of 100,000 points are invalid: points\[0\]\.x: must be a finite number; points\[1\]\.x/);
    expect(message.endsWith('points[19].x: must be a finite number … and 99980 more problems')).toBe(true);
    expect(Buffer.byteLength(message)).toBeLessThan(1_100);
  });

  it('refuses text that is not JSON, and JSON nested 100,000 deep where a number belongs', () => {
    expect(() => parseLidarFrame('{"timestamp": 1,', 'cut.json')).toThrow(/^cut\.json: not valid JSON \(/);
    const deep = `{"timestamp": ${'['.repeat(100_000)}${']'.repeat(100_000)}, "device_position": {"x":0,"y":0,"z":0}, "device_heading": {"x":0,"y":0,"z":0,"w":1}, "points": [{"x":0,"y":0,"z":0}]}`;
    expect(() => parseLidarFrame(deep, 'deep.json')).toThrow(/^deep\.json: timestamp: must be a whole number/);
  });

  it('parses a good frame file to the values it holds', () => {
    const text = '{"timestamp": 5, "device_position": {"x": 1, "y": 2, "z": 3}, "device_heading": {"x": 0, "y": 0, "z": 0.7071068, "w": 0.7071068}, "points": [{"x": 0.1, "y": 0.2, "z": 0.3, "i": 9}]}';
    expect(parseLidarFrame(text, 'ok.json')).toEqual({
      timestamp: 5,
      device_position: { x: 1, y: 2, z: 3 },
      device_heading: { x: 0, y: 0, z: 0.7071068, w: 0.7071068 },
      points: [{ x: 0.1, y: 0.2, z: 0.3, i: 9 }],
    });
  });
});

describe('packFrames: checked frames to the scene pack writes', () => {
  it('orders by timestamp, keeps the heading as given, and stores points in the types the .sfs uses', () => {
    const late = checkLidarFrame(frame({ timestamp: 2, device_heading: { x: 0, y: 0, z: 0.6, w: 0.6 }, points: [{ x: 0.1, y: 0.2, z: 0.3, i: 200, t: 7 }] }), 'late.json');
    const early = checkLidarFrame(frame({ timestamp: 1, device_position: { x: 5, y: 6, z: 7 } }), 'early.json');
    const scene = packFrames([{ name: 'late.json', frame: late }, { name: 'early.json', frame: early }], { sensorId: 'top', timeUnit: 'nanoseconds' });
    const [lidar] = scene.sensors as Array<{ id: string; poses: { timestamps: Float64Array; values: Float64Array }; frames: Array<{ timestamp: number; points: Record<string, unknown> }> }>;
    expect(scene.time_unit).toBe('nanoseconds');
    expect(lidar!.id).toBe('top');
    expect(lidar!.frames.map((f) => f.timestamp)).toEqual([1, 2]);
    expect([...lidar!.poses.timestamps]).toEqual([1, 2]);
    expect([...lidar!.poses.values]).toEqual([5, 6, 7, 0, 0, 0, 1, 0, 0, 1.8, 0, 0, 0.6, 0.6]);
    expect(lidar!.frames[0]!.points).toEqual({ positions: new Float32Array([1.5, -2, 0.25]) });
    expect(lidar!.frames[1]!.points).toEqual({ positions: new Float32Array([0.1, 0.2, 0.3]), intensities: new Uint8Array([200]), timestamps: new Uint32Array([7]) });
  });

  it('refuses no frames, and two frames at one time, naming both', () => {
    expect(() => packFrames([])).toThrow('no frames to pack');
    const f = checkLidarFrame(frame(), 'f.json');
    expect(() => packFrames([{ name: 'b.json', frame: f }, { name: 'a.json', frame: f }])).toThrow(`a.json and b.json: both have timestamp ${f.timestamp}; each sweep needs a time of its own`);
  });
});
