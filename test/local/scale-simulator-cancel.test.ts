import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScaleSimulator } from '../../local/scale-simulator/server.js';
import { eventually, startRecorder } from '../helpers/http.js';
import { startSimulatorFixture, type SimulatorFixture } from '../helpers/simulator-fixture.js';

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


const taskState = (taskId: string) => sim.state().tasks.find((t) => t.task.task_id === taskId)!;
const settled = (taskId: string) => eventually(() => (taskState(taskId).settled ? taskState(taskId) : undefined), 10_000, `task ${taskId} to settle`);

describe('Scale simulator cancel', () => {
  const createdWith = async (uniqueId: string, attachment = `${files.url}/scene.sfs`) => {
    const { status, body } = await api('POST', '/task/multistage', { project: 'p', attachments: [attachment], scene_format: 'sensor_fusion', unique_id: uniqueId });
    expect(status).toBe(200);
    return body.task_id as string;
  };

  it('cancels a pending task, answers a second cancel alike, and shows it in GET and list', async () => {
    sim.configure({ completionDelayMs: 5_000 });
    const taskId = await createdWith('cancel-me');
    const first = await api('POST', `/task/${taskId}/cancel`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ task_id: taskId, status: 'canceled', unique_id: 'cancel-me', completed_at: null });
    expect(Date.parse(first.body.updated_at as string)).toBeGreaterThan(Date.parse(first.body.created_at as string));
    // A second cancel is a 200 with the task unchanged (Scale's clients disagree; either is accepted by ours).
    expect(await api('POST', `/task/${taskId}/cancel`)).toMatchObject({ status: 200, body: first.body });
    expect(await api('GET', `/task/${taskId}`)).toMatchObject({ status: 200, body: { status: 'canceled', updated_at: first.body.updated_at } });
    expect((await api('GET', '/tasks?unique_id=cancel-me')).body).toMatchObject({ total: 1, docs: [{ task_id: taskId, status: 'canceled' }] });
    expect((await api('GET', '/tasks?project=p&status=canceled')).body.docs).toContainEqual(expect.objectContaining({ task_id: taskId }));
    // Without clear_unique_id the unique_id stays taken.
    expect((await api('POST', '/task/multistage', { project: 'p', attachments: [`${files.url}/scene.sfs`], scene_format: 'sensor_fusion', unique_id: 'cancel-me' })).status).toBe(409);
    sim.configure({ completionDelayMs: 10 });
  });

  it('frees the unique_id with clear_unique_id=true', async () => {
    sim.configure({ completionDelayMs: 5_000 });
    const taskId = await createdWith('reuse-me');
    const canceled = await api('POST', `/task/${taskId}/cancel?clear_unique_id=true`);
    expect(canceled).toMatchObject({ status: 200, body: { task_id: taskId, status: 'canceled' } });
    expect(canceled.body).not.toHaveProperty('unique_id');
    expect((await api('GET', '/tasks?unique_id=reuse-me')).body).toMatchObject({ total: 0, docs: [] });
    const again = await createdWith('reuse-me');
    expect(again).not.toBe(taskId);
    expect((await api('GET', '/tasks?unique_id=reuse-me')).body).toMatchObject({ total: 1, docs: [{ task_id: again, status: 'pending' }] });
    await api('POST', `/task/${again}/cancel`);
    sim.configure({ completionDelayMs: 10 });
  });

  it('refuses to cancel a completed or errored task with 400, and an unknown one with 404', async () => {
    const completed = await createdWith('done-before-cancel');
    const errored = await createdWith('error-before-cancel', `${files.url}/forbidden.sfs`);
    await settled(completed);
    await settled(errored);
    expect(await api('POST', `/task/${completed}/cancel?clear_unique_id=true`)).toEqual({
      status: 400,
      headers: expect.anything(),
      body: { status_code: 400, error: `Task ${completed} is completed and can no longer be canceled; only pending tasks can be.` },
    });
    expect((await api('GET', '/tasks?unique_id=done-before-cancel')).body).toMatchObject({ total: 1, docs: [{ status: 'completed' }] });
    expect((await api('POST', `/task/${errored}/cancel`)).body).toEqual({ status_code: 400, error: `Task ${errored} is error and can no longer be canceled; only pending tasks can be.` });
    expect(await api('POST', '/task/000000000000000000000000/cancel')).toMatchObject({ status: 404, body: { status_code: 404, error: 'Task 000000000000000000000000 not found.' } });
  });

  it('stops a task canceled while it waits to complete: it never completes and never calls back', async () => {
    sim.configure({ completionDelayMs: 5_000 });
    const recorder = await startRecorder();
    const taskId = await createTask(`${recorder.url}/cb`);
    await eventually(() => (taskState(taskId).downloads.length === 1 ? true : undefined), 5_000, 'the download');
    expect((await api('POST', `/task/${taskId}/cancel`)).status).toBe(200);
    // Settles long before the 5 s wait would have ended: the work was stopped, not left to find out later.
    const state = await eventually(() => (taskState(taskId).settled ? taskState(taskId) : undefined), 1_000, 'the canceled task to settle');
    sim.configure({ completionDelayMs: 10 });
    expect(recorder.calls()).toBe(0);
    expect(state.callbacks).toEqual([]);
    expect(state.task).toMatchObject({ status: 'canceled', completed_at: null, callback_succeeded: null });
    expect(state.task).not.toHaveProperty('response');
    await recorder.close();
  });

  it('holds a task pending with no work started for startDelayMs, and a cancel then means it never downloads', async () => {
    sim.configure({ startDelayMs: 5_000 });
    const recorder = await startRecorder();
    const taskId = await createTask(`${recorder.url}/cb`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(taskState(taskId)).toMatchObject({ downloads: [], settled: false, task: { status: 'pending' } });
    expect((await api('POST', `/task/${taskId}/cancel`)).body.status).toBe('canceled');
    const state = await eventually(() => (taskState(taskId).settled ? taskState(taskId) : undefined), 1_000, 'the canceled task to settle');
    sim.configure({ startDelayMs: 0 });
    expect(state.downloads).toEqual([]);
    expect(recorder.calls()).toBe(0);
    await recorder.close();
  });

  it('stops a download in progress when the task is canceled', async () => {
    // Sends the first byte of a scene and then nothing: the download would wait for its 5 s timeout.
    let requested = false;
    const stalled = createServer((_req, res) => {
      requested = true;
      res.writeHead(200, { 'content-length': '1000' }).write('{');
    });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(stalled.address() as AddressInfo).port}/slow.sfs`;
    const recorder = await startRecorder();
    const taskId = await createTask(`${recorder.url}/cb`, url);
    await eventually(() => (requested ? true : undefined), 5_000, 'the download to start');
    expect((await api('POST', `/task/${taskId}/cancel`)).status).toBe(200);
    const state = await eventually(() => (taskState(taskId).settled ? taskState(taskId) : undefined), 1_000, 'the canceled task to settle');
    expect(state.downloads).toEqual([{ url, statusCode: 200, error: 'aborted: the task was canceled' }]);
    expect(state.task.status).toBe('canceled');
    expect(recorder.calls()).toBe(0);
    stalled.closeAllConnections();
    await new Promise<void>((resolve) => stalled.close(() => resolve()));
    await recorder.close();
  });
});

describe('Scale simulator network boundary', () => {
  it('never downloads from or calls back to anything but loopback', async () => {
    const taskId = await createTask('https://example.com/callback', 'https://example.com/scene.sfs');
    const state = await settled(taskId);
    expect(state.downloads).toEqual([{ url: 'https://example.com/scene.sfs', error: 'refused: the simulator only downloads from loopback addresses' }]);
    expect(state.callbacks).toEqual([expect.objectContaining({ succeeded: false, attempts: [expect.objectContaining({ error: 'refused: the simulator only calls back loopback addresses' })] })]);
  });
});
