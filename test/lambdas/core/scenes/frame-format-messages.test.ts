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

  // Past 4,096 UTF-16 units a URL has more than 2,048 characters whatever they are.
  it('refuses an image URL of 4,097 characters, and one of 2,049 characters made of 4,098 units', () => {
    const withUrl = (url: string) => ({ ...frame([{ x: 0, y: 0, z: 0 }]), images: [{ image_url: url }] });
    expect(messageOf(() => checkLidarFrame(withUrl('a'.repeat(4097)), 'f.json'))).toBe('f.json: images[0].image_url: must be at most 2048 characters');
    expect(messageOf(() => checkLidarFrame(withUrl('📷'.repeat(2049)), 'f.json'))).toBe('f.json: images[0].image_url: must be at most 2048 characters');
  });

  it('refuses a frame that is not an object, and text that is not JSON, naming the file', () => {
    expect(messageOf(() => checkLidarFrame([], 'f.json'))).toBe('f.json: the frame is not a JSON object');
    for (const value of [5, 'text', true]) expect(messageOf(() => checkLidarFrame(value, 'f.json'))).toBe('f.json: the frame is not a JSON object');
    expect(messageOf(() => parseLidarFrame('', 'f.json'))).toMatch(/^f\.json: not valid JSON \(.{1,200}\)$/);
  });
});
