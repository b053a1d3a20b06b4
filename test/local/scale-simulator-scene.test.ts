import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSfsToBuffer } from '../../lambdas/core/scenes/sfs/writer.js';
import { buildSampleScene } from '../../local/sample-scenes.js';
import { startScaleSimulator, type ScaleSimulator } from '../../local/scale-simulator/server.js';
import { eventually, startFileServer } from '../helpers/http.js';

// The simulator reads a .sfs with a reader of its own, from the format facts in SCALE-API.md. The scenes here are
// written byte by byte, so the expected outcome does not come from the product's writer or reader.
const API_KEY = 'test_scene_key_0123456789';
const AUTH = `Basic ${Buffer.from(`${API_KEY}:`).toString('base64')}`;

/** A header padded with spaces to a multiple of 4 bytes, then `tail` (by default the 4 zero bytes of the binary section). */
function sfs(json: string, tail: Buffer = Buffer.alloc(4)): Buffer {
  const header = Buffer.from(json, 'utf8');
  return Buffer.concat([header, Buffer.alloc((4 - (header.length % 4)) % 4, 0x20), tail]);
}

const lidar = (frames: number) => `{"id":"lidar","type":"lidar","frames":[${Array(frames).fill('{}').join(',')}]}`;
const sample = encodeSfsToBuffer(buildSampleScene({ lidarFrames: 2 }));

const scenes: Record<string, Buffer> = {
  '/five-frames.sfs': sfs(`{"version":"1.0","sensors":[${lidar(5)},{"id":7,"type":"camera","frames":[{},{}]}]}`),
  '/unpadded.sfs': Buffer.concat([Buffer.from('{"version":"1.0","sensors":[]}'), Buffer.alloc(4)]),
  '/no-marker.sfs': sfs('{"version":"1.0","sensors":[]}', Buffer.from([0, 0, 0, 1])),
  '/short-marker.sfs': sfs('{"version":"1.0","sensors":[]}', Buffer.alloc(2)),
  '/no-end.sfs': Buffer.from('{"version":"1.0","sensors":[]}'),
  '/not-json.sfs': sfs('{"version":"1.0",'),
  '/sonar.sfs': sfs('{"version":"1.0","sensors":[{"id":"s","type":"sonar"}]}'),
  // One float32 item of 12 bytes at offset 8: the file must hold 20 bytes of binary section; it holds 12.
  '/cut-short.sfs': sfs('{"version":"1.0","sensors":[],"$items":[{"keys":["x"],"offset":8,"length":12,"dtype":"float32"}]}', Buffer.alloc(12)),
  '/whole.sfs': sfs('{"version":"1.0","sensors":[],"$items":[{"keys":["x"],"offset":8,"length":12,"dtype":"float32"}]}', Buffer.alloc(20)),
  '/sample.sfs': sample,
  '/sample-truncated.sfs': sample.subarray(0, sample.length - 100),
};

let sim: ScaleSimulator;
let files: Awaited<ReturnType<typeof startFileServer>>;
beforeAll(async () => {
  files = await startFileServer(scenes);
  sim = await startScaleSimulator({ apiKey: API_KEY, callbackAuthKey: 'unused', projects: ['p'], config: { completionDelayMs: 1 } });
});
afterAll(async () => {
  await sim?.close();
  await files?.close();
});

/** Creates a task for one scene and waits for the simulator to finish with it. */
async function outcome(path: string) {
  const response = await fetch(`${sim.apiUrl}/task/multistage`, {
    method: 'POST',
    headers: { authorization: AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ project: 'p', attachments: [`${files.url}${path}`], scene_format: 'sensor_fusion' }),
  });
  expect(response.status).toBe(200);
  const { task_id: taskId } = (await response.json()) as { task_id: string };
  const record = await eventually(() => sim.state().tasks.find((t) => t.task.task_id === taskId && t.settled), 10_000, `task ${taskId}`);
  return record.task as { status: string; response: Record<string, unknown> };
}

describe('Scale simulator: reading a .sfs scene', () => {
  it('counts the frames of the longest sensor and the sensors, whatever wrote the file', async () => {
    expect(await outcome('/five-frames.sfs')).toMatchObject({ status: 'completed', response: { frames: 5, annotations: { sensors_labeled: 2 } } });
    expect(await outcome('/whole.sfs')).toMatchObject({ status: 'completed', response: { frames: 0 } });
    expect(await outcome('/sample.sfs')).toMatchObject({ status: 'completed', response: { frames: 2, bytes_read: sample.length } });
  });

  it('fails the task, naming the problem, for each way the container can be broken', async () => {
    const cases: Array<[string, string]> = [
      ['/unpadded.sfs', 'the header is 30 bytes, not padded to a multiple of 4'],
      ['/no-marker.sfs', 'the binary section does not begin with 4 zero bytes'],
      ['/short-marker.sfs', 'the file ends before the 4 zero bytes that begin the binary section'],
      ['/no-end.sfs', 'the file ends before its header does (no zero byte)'],
      ['/not-json.sfs', 'the header is not UTF-8 JSON'],
      ['/sonar.sfs', 'sensors[0] has type "sonar", not one of camera, lidar, radar, odometry, points'],
      ['/cut-short.sfs', '$items[0] spans bytes 8..20 of a binary section of 12 bytes (a truncated file?)'],
    ];
    for (const [path, problem] of cases) {
      expect(await outcome(path), path).toMatchObject({ status: 'error', response: { error: `The scene could not be read: ${problem}` } });
    }
  });

  it('fails a scene whose upload was cut short, though its header is whole', async () => {
    const task = await outcome('/sample-truncated.sfs');
    expect(task.status).toBe('error');
    expect(task.response.error).toMatch(/^The scene could not be read: \$items\[\d+\] spans bytes \d+\.\.\d+ of a binary section of \d+ bytes \(a truncated file\?\)$/);
  });
});
