import { describe, expect, it } from 'vitest';
import { checkLidarFrame, parseLidarFrame } from '../../../../lambdas/core/scenes/frame-format.js';

/* The exact words a refused frame gets: the file, the count of bad points, and at most three problems per point. */

const frame = (points: unknown[]) => ({ timestamp: 1, device_position: { x: 0, y: 0, z: 0 }, device_heading: { x: 0, y: 0, z: 0, w: 1 }, points });
const messageOf = (run: () => unknown): string => {
  try {
    run();
  } catch (err) {
    expect((err as Error).name).toBe('FrameFormatError');
    return (err as Error).message;
  }
  throw new Error('accepted');
};

describe('refused frames', () => {
  it('names at most three problems of one point', () => {
    expect(messageOf(() => checkLidarFrame(frame([{ x: 'a', y: 'b', z: 'c', i: -1 }]), 'f.json'))).toBe(
      'f.json: 1 of 1 points are invalid: points[0].x: must be a finite number; points[0].y: must be a finite number; points[0].z: must be a finite number',
    );
  });

  it('names a point that is not an object by its index alone', () => {
    expect(messageOf(() => checkLidarFrame(frame([{ x: 0, y: 0, z: 0 }, 'junk']), 'f.json'))).toBe('f.json: 1 of 2 points are invalid: points[1]: expected object');
  });

  it('refuses a frame that is not an object, and text that is not JSON, naming the file', () => {
    expect(messageOf(() => checkLidarFrame([], 'f.json'))).toBe('f.json: the frame is not a JSON object');
    expect(messageOf(() => parseLidarFrame('', 'f.json'))).toMatch(/^f\.json: not valid JSON \(.{1,200}\)$/);
  });
});
