import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScaleSimulator } from '../../local/scale-simulator/server.js';
import { eventually, startRecorder, type ReceivedRequest } from '../helpers/http.js';
import { CALLBACK_AUTH, scene, startSimulatorFixture, type SimulatorFixture } from '../helpers/simulator-fixture.js';

let fixture: SimulatorFixture;
let sim: ScaleSimulator;
let files: SimulatorFixture['files'];
let api: SimulatorFixture['api'];
let createTask: SimulatorFixture['createTask'];
beforeAll(async () => {
  fixture = await startSimulatorFixture();
  ({ sim, files, api, createTask } = fixture);
});
afterAll(() => fixture.close());

/** Changes the simulator's config the way a user does while it runs: over HTTP. */
async function control(patch: Record<string, unknown>) {
  const response = await fetch(`${sim.origin}/_simulator/config`, { method: 'POST', body: JSON.stringify(patch) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const taskState = (taskId: string) => sim.state().tasks.find((t) => t.task.task_id === taskId)!;
const settled = (taskId: string) => eventually(() => (taskState(taskId).settled ? taskState(taskId) : undefined), 10_000, `task ${taskId} to settle`);
const bodies = (received: ReceivedRequest[]) => received.map((r) => r.body as { task: Record<string, unknown>; status: string; task_id: string; response: Record<string, unknown> });

describe('Scale simulator API', () => {
  it('requires basic auth with its key and answers errors as {status_code, error}', async () => {
    const { status, body } = await api('GET', '/task/abc', undefined, 'Basic bm9wZTo=');
    expect(status).toBe(401);
    expect(body).toEqual({ status_code: 401, error: expect.stringContaining('valid API key') });
  });

  it('answers 400 naming the broken body rule, and for unknown projects and batches', async () => {
    const base = { project: 'p', attachments: [`${files.url}/scene.sfs`], scene_format: 'sensor_fusion' };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...base, tags: ['1', '2', '3', '4', '5', '6'] }, 'tags holds 6 tags; at most 5 are allowed.'],
      [{ ...base, priority: 5 }, 'priority must be one of 10, 20, 30; got 5.'],
      [{ ...base, attachments: [] }, 'Please include an attachment or attachments parameter.'],
      [{ ...base, metadata: { x: 'y'.repeat(11_000) } }, 'metadata is 11008 bytes as JSON'],
      [{ ...base, project: 'other' }, 'Project "other" was not found.'],
      [{ ...base, batch: 'b2' }, 'Batch "b2" was not found in project "p".'],
    ];
    for (const [body, message] of cases) {
      const answer = await api('POST', '/task/multistage', body);
      expect(answer.status, message).toBe(400);
      expect(answer.body.error).toContain(message);
    }
    expect((await api('POST', '/task/multistage', '{not json')).body).toEqual({ status_code: 400, error: 'The request body is not valid JSON.' });
  });

  it('answers 409 on a reused unique_id and finds tasks by unique_id, paged', async () => {
    const body = { project: 'p', batch: 'b1', attachments: [`${files.url}/scene.sfs`], scene_format: 'sensor_fusion', unique_id: 'dup-1' };
    const first = await api('POST', '/task/multistage', body);
    expect(first.body).toMatchObject({ status: 'pending', type: 'multistage', unique_id: 'dup-1', is_test: true, params: { scene_format: 'sensor_fusion' } });
    expect(await api('POST', '/task/multistage', body)).toMatchObject({ status: 409, body: { error: expect.stringContaining('unique_id is already in use') } });
    const list = await api('GET', '/tasks?unique_id=dup-1');
    expect(list.body).toMatchObject({ total: 1, has_more: false, next_token: null, docs: [{ task_id: first.body.task_id }] });
    await api('POST', '/task/multistage', { ...body, unique_id: 'dup-2' });
    const page = await api('GET', '/tasks?project=p&batch=b1&limit=1');
    expect(page.body).toMatchObject({ limit: 1, total: 2, has_more: true, next_token: expect.any(String), docs: [{ unique_id: 'dup-2' }] });
    expect(await api('GET', '/task/000000000000000000000000')).toMatchObject({ status: 404 });
  });

  it('rate-limits with 429, with Retry-After when configured', async () => {
    sim.configure({ rateLimit: { requestsPerSecond: 2, retryAfterSeconds: 3 } });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await api('GET', '/tasks?project=p&limit=1'));
    sim.configure({ rateLimit: null });
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429, 429]);
    expect(answers[2]!.headers.get('retry-after')).toBe('3');
  });

  it('injects 5xx and drops connections mid-answer on demand', async () => {
    sim.configure({ failNextRequests: 1, serverErrorStatus: 500 });
    expect((await api('GET', '/tasks?project=p')).status).toBe(500);
    sim.configure({ dropNextRequests: 1 });
    await expect(api('GET', '/tasks?project=p')).rejects.toThrow();
    expect((await api('GET', '/tasks?project=p')).status).toBe(200);
  });

  it('is configured and inspected over HTTP', async () => {
    const set = await fetch(`${sim.apiUrl}/_simulator/config`, { method: 'POST', body: JSON.stringify({ latencyMs: 1 }) });
    expect(((await set.json()) as { latencyMs: number }).latencyMs).toBe(1);
    const bad = await fetch(`${sim.origin}/_simulator/config`, { method: 'POST', body: JSON.stringify({ latencyMs: -1 }) });
    expect(bad.status).toBe(400);
    const state = (await (await fetch(`${sim.origin}/_simulator/state`)).json()) as { config: { latencyMs: number }; tasks: unknown[] };
    expect(state.config.latencyMs).toBe(1);
    expect(state.tasks.length).toBeGreaterThan(0);
    sim.configure({ latencyMs: 0 });
  });

  it('refuses its own key with 401 or 403 on request, as Scale does once a key is revoked or rotated', async () => {
    const body = { project: 'p', attachments: [`${files.url}/scene.sfs`], scene_format: 'sensor_fusion', unique_id: 'after-rotation' };
    const tasksBefore = sim.state().tasks.length;
    sim.configure({ refuseApiKey: 401 });
    expect(await api('POST', '/task/multistage', body)).toMatchObject({
      status: 401,
      body: { status_code: 401, error: 'Please provide a valid API key (HTTP basic auth with the key as the user name).' },
    });
    expect(await control({ refuseApiKey: 403 })).toMatchObject({ status: 200, body: { refuseApiKey: 403 } });
    const refused = [await api('POST', '/task/multistage', body), await api('GET', '/tasks?project=p&limit=1'), await api('GET', '/task/000000000000000000000000')];
    expect(refused.map((r) => r.body)).toEqual(Array(3).fill({ status_code: 403, error: 'This API key is not allowed to make requests (revoked or disabled).' }));
    expect(refused.map((r) => r.status)).toEqual([403, 403, 403]);
    expect(sim.state().tasks.length).toBe(tasksBefore);
    expect(sim.state().requests.refused).toBeGreaterThanOrEqual(4);
    expect((await control({ refuseApiKey: 402 })).status).toBe(400);
    expect(await control({ refuseApiKey: null })).toMatchObject({ status: 200, body: { refuseApiKey: null } });
    expect((await api('POST', '/task/multistage', body)).status).toBe(200);
  });
});

describe('Scale simulator task lifecycle', () => {
  it('downloads the scene, completes the task and calls back with the auth header', async () => {
    const recorder = await startRecorder();
    const taskId = await createTask(`${recorder.url}/cb?ref=abc`);
    const state = await settled(taskId);
    expect(state.downloads).toEqual([{ url: `${files.url}/scene.sfs`, statusCode: 200, bytes: scene.length }]);
    expect(recorder.received).toHaveLength(1);
    const [call] = recorder.received;
    expect(call!.path).toBe('/cb?ref=abc');
    expect(call!.headers['scale-callback-auth']).toBe(CALLBACK_AUTH);
    expect(call!.body).toMatchObject({ task_id: taskId, status: 'completed', task: { task_id: taskId, status: 'completed', callback_succeeded: null }, response: { frames: 3 } });
    expect(taskState(taskId).task.callback_succeeded).toBe(true);
    await recorder.close();
  });

  it('fails a task whose attachment cannot be downloaded, with the documented response', async () => {
    const recorder = await startRecorder();
    const url = `${files.url}/forbidden.sfs`;
    const taskId = await createTask(`${recorder.url}/cb`, url);
    await settled(taskId);
    expect(bodies(recorder.received)).toEqual([
      expect.objectContaining({
        task_id: taskId,
        status: 'error',
        response: { error: 'One or more attachments could not be downloaded.', attachments: [{ statusCode: 403, url }] },
      }),
    ]);
    expect(taskState(taskId).downloads).toEqual([{ url, statusCode: 403 }]);
    await recorder.close();
  });

  it('fails a task whose scene is corrupt, naming the problem', async () => {
    const recorder = await startRecorder();
    const taskId = await createTask(`${recorder.url}/cb`, `${files.url}/corrupt.sfs`);
    await settled(taskId);
    expect(bodies(recorder.received)[0]).toMatchObject({ status: 'error', response: { error: 'The scene could not be read: sensors[0] has no id' } });
    await recorder.close();
  });

  it('checks split_base64 frames are JSON objects with points', async () => {
    const recorder = await startRecorder();
    const good = await createTask(`${recorder.url}/cb`, `${files.url}/frame-0.json`, { scene_format: 'split_base64', attachments: [`${files.url}/frame-0.json`, `${files.url}/frame-0.json`] });
    const bad = await createTask(`${recorder.url}/cb`, `${files.url}/frame-bad.json`, { scene_format: 'split_base64' });
    await settled(good);
    await settled(bad);
    expect(taskState(good).task.status).toBe('completed');
    expect(taskState(bad).task.response).toEqual({ error: 'The scene could not be read: a LiDAR frame is not a JSON object with a points array' });
    await recorder.close();
  });

  it('retries a callback until it gets a 2xx', async () => {
    const recorder = await startRecorder((n) => (n <= 3 ? 503 : 200));
    const taskId = await createTask(`${recorder.url}/cb`);
    const state = await settled(taskId);
    expect(state.callbacks[0]!.attempts.map((a) => a.statusCode)).toEqual([503, 503, 503, 200]);
    expect(recorder.received).toHaveLength(1);
    expect(state.task.callback_succeeded).toBe(true);
  });

  it('gives up after callbackMaxAttempts and records callback_succeeded false', async () => {
    sim.configure({ callbackMaxAttempts: 3 });
    const recorder = await startRecorder(() => 500);
    const taskId = await createTask(`${recorder.url}/cb`);
    const state = await settled(taskId);
    sim.configure({ callbackMaxAttempts: 20 });
    expect(recorder.calls()).toBe(3);
    expect(state.task.callback_succeeded).toBe(false);
    await recorder.close();
  });

  it('drops every callback with dropCallbacks 1: none is ever sent, and the task still completes', async () => {
    sim.configure({ dropCallbacks: 1 });
    const recorder = await startRecorder();
    const taskId = await createTask(`${recorder.url}/cb`);
    const state = await settled(taskId);
    sim.configure({ dropCallbacks: 0 });
    expect(recorder.calls()).toBe(0);
    expect(state.callbacks).toEqual([{ kind: 'completed', status: 'completed', attempts: [], succeeded: false, dropped: true }]);
    expect(state.task).toMatchObject({ status: 'completed', callback_succeeded: false });
    // Asking Scale is the only way to learn the state.
    expect((await api('GET', `/task/${taskId}`)).body).toMatchObject({ status: 'completed', response: { frames: 3 } });
    await recorder.close();
  });

  it('drops a seeded share of callbacks with a dropCallbacks rate, the same ones for the same seed', async () => {
    const recorder = await startRecorder();
    const run = async () => {
      sim.configure({ dropCallbacks: 0.5, seed: 7 });
      const dropped: boolean[] = [];
      for (let i = 0; i < 8; i++) dropped.push((await settled(await createTask(`${recorder.url}/cb`))).callbacks[0]!.dropped === true);
      sim.configure({ dropCallbacks: 0 });
      return dropped;
    };
    const first = await run();
    expect(first).toContain(true);
    expect(first).toContain(false);
    expect(recorder.calls()).toBe(first.filter((d) => !d).length);
    expect(await run()).toEqual(first);
    await recorder.close();
  });

  it('sends duplicate callbacks when configured', async () => {
    sim.configure({ duplicateCallbacks: true });
    const recorder = await startRecorder();
    const taskId = await createTask(`${recorder.url}/cb`);
    await settled(taskId);
    sim.configure({ duplicateCallbacks: false });
    expect(bodies(recorder.received).map((b) => [b.task_id, b.status])).toEqual([[taskId, 'completed'], [taskId, 'completed']]);
    await recorder.close();
  });

  it('delivers an audit callback before the older completion callback when configured', async () => {
    sim.configure({ auditBeforeCompletion: true });
    const recorder = await startRecorder();
    await createTask(`${recorder.url}/cb`);
    await eventually(() => (recorder.received.length >= 2 ? true : undefined));
    sim.configure({ auditBeforeCompletion: false });
    const [audit, completion] = bodies(recorder.received);
    expect(audit!.task.audits).toHaveLength(1);
    expect(completion!.task.audits).toEqual([]);
    expect(Date.parse(audit!.task.updated_at as string)).toBeGreaterThan(Date.parse(completion!.task.updated_at as string));
    await recorder.close();
  });

  it('recalls a completed task back to pending when configured', async () => {
    sim.configure({ recallAfterCompletion: true });
    const recorder = await startRecorder();
    const taskId = await createTask(`${recorder.url}/cb`);
    await eventually(() => (recorder.received.length >= 2 ? true : undefined));
    sim.configure({ recallAfterCompletion: false });
    const [completed, recalled] = bodies(recorder.received);
    expect([completed!.status, recalled!.status]).toEqual(['completed', 'pending']);
    expect(recalled!.task.completed_at).toBeNull();
    expect(Date.parse(recalled!.task.updated_at as string)).toBeGreaterThan(Date.parse(completed!.task.updated_at as string));
    expect(taskState(taskId).task.status).toBe('pending');
    await recorder.close();
  });

  it('gives the audit exactly the completion\'s updated_at with equalTimestamps', async () => {
    sim.configure({ auditBeforeCompletion: true, equalTimestamps: true });
    const recorder = await startRecorder();
    const taskId = await createTask(`${recorder.url}/cb`);
    await settled(taskId);
    sim.configure({ auditBeforeCompletion: false, equalTimestamps: false });
    const [audit, completion] = bodies(recorder.received);
    expect(completion!.task).toMatchObject({ status: 'completed', audits: [], completed_at: completion!.task.updated_at });
    expect(audit!.task.updated_at).toBe(completion!.task.updated_at);
    expect(audit!.task.audits).toEqual([{ action: 'approved', audited_by: 'simulator@scale.local', audit_time: completion!.task.updated_at }]);
    await recorder.close();
  });

  it('gives the recall exactly the completion\'s updated_at with equalTimestamps', async () => {
    await control({ recallAfterCompletion: true, equalTimestamps: true });
    const recorder = await startRecorder();
    const taskId = await createTask(`${recorder.url}/cb`);
    await settled(taskId);
    await control({ recallAfterCompletion: false, equalTimestamps: false });
    const [completed, recalled] = bodies(recorder.received);
    expect([completed!.status, recalled!.status]).toEqual(['completed', 'pending']);
    expect(recalled!.task).toMatchObject({ completed_at: null, updated_at: completed!.task.updated_at });
    expect(completed!.task.completed_at).toBe(completed!.task.updated_at);
    await recorder.close();
  });
});

describe('Scale simulator configuration', () => {
  it('changes only the knobs a patch names, keeping the others as they were set', async () => {
    sim.configure({ dropCallbacks: 1, completionDelayMs: 7 });
    const after = sim.configure({ failNextDownloads: 2 });
    expect(after).toMatchObject({ dropCallbacks: 1, completionDelayMs: 7, failNextDownloads: 2 });
    expect(sim.configure({ dropCallbacks: 0, completionDelayMs: 10, failNextDownloads: 0 })).toMatchObject({ dropCallbacks: 0, completionDelayMs: 10 });
  });
});
