import { describe, expect, it } from 'vitest';
import { checkLidarFrame } from '../../../../lambdas/core/scenes/frame-format.js';

/*
 * A refused frame names its first 20 bad points and counts the rest. Past those 20 the points are no longer
 * explained one by one, but each is still judged by the format's rules: the count in the message stays exact, so a
 * good point there (even one at the edge of a range) is never counted as bad, and a bad one always is.
 */

const F32_MAX = 3.4028234663852886e38;
const UINT32_MAX = 4_294_967_295;
const frame = (points: unknown[]) => ({ timestamp: 1, device_position: { x: 0, y: 0, z: 0 }, device_heading: { x: 0, y: 0, z: 0, w: 1 }, points });
const twentyBad = Array.from({ length: 20 }, () => ({ x: 'a', y: 0, z: 0 }));
const messageOf = (points: unknown[]): string => {
  try {
    checkLidarFrame(frame(points), 'f.json');
  } catch (err) {
    expect((err as Error).name).toBe('FrameFormatError');
    return (err as Error).message;
  }
  throw new Error('accepted');
};

describe('points past the 20 a refused frame names', () => {
  it.each([
    ['a plain point', { x: 1.5, y: -2, z: 0.25 }],
    ['the lowest float32 coordinate', { x: -F32_MAX, y: 0, z: 0 }],
    ['the highest float32 coordinate', { x: 0, y: F32_MAX, z: 0 }],
    ['the smallest intensity, device and time', { x: 0, y: 0, z: 0, i: 0, d: 0, t: 0 }],
    ['the largest intensity, device and time', { x: 0, y: 0, z: 0, i: 255, d: UINT32_MAX, t: UINT32_MAX }],
    ['an intensity alone', { x: 0, y: 0, z: 0, i: 7 }],
  ])('are not counted when good: %s', (_, good) => {
    expect(messageOf([...twentyBad, good, good])).toMatch(/^f\.json: 20 of 22 points are invalid: points\[0\]\.x: must be a finite number; /);
  });

  it.each([
    ['a coordinate beyond float32', { x: 3.5e38, y: 0, z: 0 }],
    ['a coordinate below float32', { x: 0, y: 0, z: -3.5e38 }],
    ['a coordinate as text', { x: 0, y: '0', z: 0 }],
    ['an intensity over 255', { x: 0, y: 0, z: 0, i: 256 }],
    ['a negative intensity', { x: 0, y: 0, z: 0, i: -1 }],
    ['a fractional point time', { x: 0, y: 0, z: 0, t: 0.5 }],
    ['a device id beyond uint32', { x: 0, y: 0, z: 0, d: UINT32_MAX + 1 }],
    ['a point time as text', { x: 0, y: 0, z: 0, t: '5' }],
    ['an unknown field', { x: 0, y: 0, z: 0, intensity: 3 }],
    ['a point that is null', null],
    ['a point as an array', [0, 0, 0]],
  ])('are counted when bad: %s', (_, bad) => {
    expect(messageOf([...twentyBad, { x: 0, y: 0, z: 0 }, bad])).toMatch(/^f\.json: 21 of 22 points are invalid: points\[0\]\.x: must be a finite number; /);
  });

  it('counts every one of a million bad points', () => {
    expect(messageOf(Array(1_000_000).fill({ x: 'a', y: 0, z: 0 }))).toMatch(/^f\.json: 1,000,000 of 1,000,000 points are invalid: points\[0\]\.x: must be a finite number; .* more problems$/);
  });
});
