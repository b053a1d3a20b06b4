import { expect } from 'vitest';
import { encodeSfsToBuffer } from '../../lambdas/core/scenes/sfs/writer.js';
import { buildSampleScene } from '../../local/sample-scenes.js';
import { startScaleSimulator } from '../../local/scale-simulator/server.js';
import { startFileServer } from './http.js';

export const API_KEY = 'test_simulator_key_0123456789';
export const CALLBACK_AUTH = 'callback-auth-key-abc';
export const AUTH = `Basic ${Buffer.from(`${API_KEY}:`).toString('base64')}`;

export const scene = encodeSfsToBuffer(buildSampleScene({ lidarFrames: 3 }));
export const corrupt = Buffer.from('{"version":"1.0","sensors":[{"type":"lidar"}]}  \0\0\0\0', 'utf8');
export const frame = Buffer.from(JSON.stringify({ points: [{ x: 1, y: 2, z: 3 }], device_position: { x: 0, y: 0, z: 0 } }));

/**
 * The Scale simulator (project p, batch b1) with a file server of attachments, and plain-HTTP helpers to talk to it
 * as a client of Scale's API would.
 */
export async function startSimulatorFixture() {
  const files = await startFileServer(
    { '/scene.sfs': scene, '/corrupt.sfs': corrupt, '/frame-0.json': frame, '/frame-bad.json': Buffer.from('{"no_points":true}') },
    { '/forbidden.sfs': 403 },
  );
  const sim = await startScaleSimulator({
    apiKey: API_KEY,
    callbackAuthKey: CALLBACK_AUTH,
    projects: ['p'],
    batches: [{ name: 'b1', project: 'p' }],
    config: { completionDelayMs: 10, callbackRetryDelayMs: 5 },
  });

  async function api(method: string, path: string, body?: unknown, auth = AUTH) {
    const response = await fetch(`${sim.apiUrl}${path}`, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
  }

  async function createTask(callbackUrl: string, attachment = `${files.url}/scene.sfs`, extra: Record<string, unknown> = {}) {
    const { status, body } = await api('POST', '/task/multistage', {
      project: 'p',
      attachments: [attachment],
      scene_format: 'sensor_fusion',
      callback_url: callbackUrl,
      unique_id: `u-${Math.random()}`,
      ...extra,
    });
    expect(status).toBe(200);
    return body.task_id as string;
  }

  return {
    sim,
    files,
    api,
    createTask,
    close: async () => {
      await sim.close();
      await files.close();
    },
  };
}
export type SimulatorFixture = Awaited<ReturnType<typeof startSimulatorFixture>>;
