import { describe, expect, it } from 'vitest';
import type { LidarFrame, LidarPoint } from '../../../../lambdas/core/scenes/frame-format.js';
import { encodePackedScene, orderFrames, packFrames, sceneOfPackedFrames, toPackedFrame, type PackedFrame } from '../../../../lambdas/core/scenes/pack-frames.js';
import { parseSfsHeader } from '../../../../lambdas/core/scenes/sfs/reader.js';

/*
 * Frames to one .sfs scene: the whole scene as written (defaults included), the refusals with their exact words,
 * and the element types and shapes the file declares for each array.
 */

const HEADING = { x: 0, y: 0, z: 0, w: 1 };
const lidarFrame = (timestamp: number, points: LidarPoint[], extra: Partial<LidarFrame> = {}): LidarFrame => ({
  timestamp,
  device_position: { x: 1, y: 2, z: 3 },
  device_heading: HEADING,
  points,
  ...extra,
});

describe('packing frames', () => {
  it('writes the whole scene with its defaults', () => {
    const scene = packFrames([{ name: 'a.json', frame: lidarFrame(5, [{ x: 1, y: 2, z: 3 }]) }]);
    expect(scene).toStrictEqual({
      version: '1.0',
      time_unit: 'microseconds',
      time_offset: 0,
      metadata: { source: 'sfs-pipeline pack' },
      sensors: [
        {
          id: 'lidar',
          type: 'lidar',
          coordinates: 'world',
          poses: { timestamps: new Float64Array([5]), values: new Float64Array([1, 2, 3, 0, 0, 0, 1]) },
          frames: [{ timestamp: 5, points: { positions: new Float32Array([1, 2, 3]) } }],
        },
      ],
      annotations: [],
      attributes: [],
    });
    const ego = packFrames([{ name: 'a.json', frame: lidarFrame(5, [{ x: 1, y: 2, z: 3 }]) }], { coordinates: 'ego' });
    expect((ego.sensors as Array<{ coordinates: string }>)[0]!.coordinates).toBe('ego');
  });

  it.each([
    ['an intensity missing after the first point', [{ x: 0, y: 0, z: 0, i: 1 }, { x: 0, y: 0, z: 0 }], 'f.json: points[1].i: missing, while points[0] has one; give every point of a frame an intensity or none'],
    ['an intensity appearing later', [{ x: 0, y: 0, z: 0 }, { x: 0, y: 0, z: 0 }, { x: 0, y: 0, z: 0, i: 1 }], 'f.json: points[2].i: present, while points[0] has none; give every point of a frame an intensity or none'],
    ['a time missing after the first point', [{ x: 0, y: 0, z: 0, t: 1 }, { x: 0, y: 0, z: 0 }], 'f.json: points[1].t: missing, while points[0] has one; give every point of a frame a time or none'],
  ])('refuses %s', (_name, points, message) => {
    expect(() => toPackedFrame(lidarFrame(1, points), 'f.json')).toThrow(message);
  });

  it('stores every point\'s position in order, three floats a point', () => {
    const packed = toPackedFrame(lidarFrame(1, [{ x: 1, y: 2, z: 3 }, { x: 4, y: 5, z: 6 }, { x: -7.5, y: 8.25, z: 9 }]), 'f.json');
    expect(packed.positions).toStrictEqual(new Float32Array([1, 2, 3, 4, 5, 6, -7.5, 8.25, 9]));
  });

  it.each([
    ['listed in name order', ['a.json', 'b.json']],
    ['listed in reverse name order', ['b.json', 'a.json']],
  ])('names two frames at one time in name order, whichever way they are %s', (_, names) => {
    const frames = names.map((name) => toPackedFrame(lidarFrame(7, [{ x: 0, y: 0, z: 0 }]), name));
    expect(() => orderFrames([toPackedFrame(lidarFrame(3, [{ x: 0, y: 0, z: 0 }]), 'c.json'), ...frames])).toThrow(
      'a.json and b.json: both have timestamp 7; each sweep needs a time of its own',
    );
  });

  it('reports what a lidar frame of an .sfs has no place for', () => {
    const image = { image_url: 'https://img.test/0.jpg' };
    const withBoth = toPackedFrame(lidarFrame(1, [{ x: 0, y: 0, z: 0 }, { x: 0, y: 0, z: 0, d: 2 }], { images: [image, image] }), 'f.json');
    expect(withBoth.unpacked).toStrictEqual({ images: 2, deviceIds: true });
    expect(toPackedFrame(lidarFrame(1, [{ x: 0, y: 0, z: 0 }]), 'f.json').unpacked).toStrictEqual({ images: 0, deviceIds: false });
  });
});

describe('the bounds of one scene', () => {
  const packed = (timestamp: number, points = 1): PackedFrame => ({
    name: `${timestamp}.json`,
    timestamp,
    pose: [0, 0, 0, 0, 0, 0, 1],
    // Only the length is read before the scene is refused; the bytes of 20 million points are not needed for that.
    positions: (points === 1 ? new Float32Array(3) : { length: points * 3 }) as Float32Array,
    unpacked: { images: 0, deviceIds: false },
  });

  it('takes 10,000 frames and refuses one more', () => {
    const frames = Array.from({ length: 10_000 }, (_, k) => packed(k));
    expect((sceneOfPackedFrames(frames).sensors as Array<{ frames: unknown[] }>)[0]!.frames).toHaveLength(10_000);
    expect(() => sceneOfPackedFrames([...frames, packed(10_000)])).toThrow('10001 frames; at most 10000 go into one scene: split them into several');
  });

  it('takes 20,000,000 points in all and refuses one more', () => {
    expect(() => sceneOfPackedFrames([packed(1, 10_000_000), packed(2, 10_000_000)])).not.toThrow();
    expect(() => sceneOfPackedFrames([packed(1, 10_000_000), packed(2, 10_000_001)])).toThrow(
      '20000001 points in all; at most 20000000 go into one scene: split the frames into several scenes',
    );
  });
});

describe('the packed scene as an .sfs', () => {
  it('declares each array with the element type and shape it is stored in', () => {
    const scene = packFrames([
      { name: 'b.json', frame: lidarFrame(2, [{ x: 0, y: 0, z: 0, i: 7, t: 9 }, { x: 1, y: 1, z: 1, i: 8, t: 10 }]) },
      { name: 'a.json', frame: lidarFrame(1, [{ x: 0, y: 0, z: 0 }]) },
    ]);
    const encoded = encodePackedScene(scene);
    const file = Buffer.concat([...encoded.chunks()]);
    expect(file.length).toBe(encoded.size);
    const { items } = parseSfsHeader(file, { fileSize: file.length });
    expect(items.map((i) => [i.keys.join('.'), i.dtype, i.shape])).toEqual([
      ['sensors.0.poses.timestamps', 'float64', [2]],
      ['sensors.0.poses.values', 'float64', [2, 7]],
      ['sensors.0.frames.0.points.positions', 'float32', [1, 3]],
      ['sensors.0.frames.1.points.positions', 'float32', [2, 3]],
      ['sensors.0.frames.1.points.intensities', 'uint8', [2]],
      ['sensors.0.frames.1.points.timestamps', 'uint32', [2]],
    ]);
  });

  it('writes intensities as numbers (uint8) and any other byte array as raw bytes', () => {
    const scene = packFrames([{ name: 'a.json', frame: lidarFrame(1, [{ x: 0, y: 0, z: 0, i: 7 }]) }]);
    const file = Buffer.concat([...encodePackedScene({ ...scene, extra: { image: new Uint8Array(4) } }).chunks()]);
    expect(parseSfsHeader(file, { fileSize: file.length }).items.map((i) => [i.keys.join('.'), i.dtype])).toEqual([
      ['sensors.0.poses.timestamps', 'float64'],
      ['sensors.0.poses.values', 'float64'],
      ['sensors.0.frames.0.points.positions', 'float32'],
      ['sensors.0.frames.0.points.intensities', 'uint8'],
      ['extra.image', 'bytes'],
    ]);
  });

  it('gives rows of 7 only to pose values, not to another array named values', () => {
    const file = Buffer.concat([...encodePackedScene({ version: '1.0', sensors: [], extra: { values: new Float64Array(14) } }).chunks()]);
    expect(parseSfsHeader(file, { fileSize: file.length }).items.map((i) => [i.keys.join('.'), i.dtype, i.shape])).toEqual([['extra.values', 'float64', [14]]]);
  });
});
