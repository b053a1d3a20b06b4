import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startScaleSimulator, type ScaleSimulator } from '../../local/scale-simulator/server.js';

// GET /v1/tasks: filters, order and paging. Tasks wait a minute before any work (startDelayMs), so nothing but
// the test's own creates and cancels changes them while a test looks.
const API_KEY = 'test_listing_key_0123456789';
const AUTH = `Basic ${Buffer.from(`${API_KEY}:`).toString('base64')}`;

let sim: ScaleSimulator;
beforeAll(async () => {
  sim = await startScaleSimulator({
    apiKey: API_KEY,
    callbackAuthKey: 'unused',
    projects: ['p', 'q', 'paged'],
    batches: [{ name: 'b1', project: 'p' }],
    config: { startDelayMs: 60_000 },
  });
});
afterAll(() => sim?.close());

type Page = { docs: Array<{ task_id: string; unique_id?: string }>; total: number; limit: number; offset: number; has_more: boolean; next_token: string | null };

async function list(query: string): Promise<{ status: number; body: Page & { status_code?: number; error?: string } }> {
  const response = await fetch(`${sim.apiUrl}/tasks?${query}`, { headers: { authorization: AUTH } });
  return { status: response.status, body: (await response.json()) as Page };
}

async function create(project: string, uniqueId: string, extra: Record<string, unknown> = {}) {
  const response = await fetch(`${sim.apiUrl}/task/multistage`, {
    method: 'POST',
    headers: { authorization: AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ project, attachments: ['http://127.0.0.1:9/scene.sfs'], scene_format: 'sensor_fusion', unique_id: uniqueId, ...extra }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { task_id: string; created_at: string; updated_at: string };
}

const ids = (page: Page) => page.docs.map((d) => d.task_id);

describe('Scale simulator GET /v1/tasks', () => {
  let t1: Awaited<ReturnType<typeof create>>;
  let t2: Awaited<ReturnType<typeof create>>;
  let t3: Awaited<ReturnType<typeof create>>;
  let canceledAt: string;
  beforeAll(async () => {
    t1 = await create('p', 'u-1');
    t2 = await create('p', 'u-2', { batch: 'b1' });
    t3 = await create('q', 'u-3');
    const cancel = await fetch(`${sim.apiUrl}/task/${t1.task_id}/cancel`, { method: 'POST', headers: { authorization: AUTH } });
    canceledAt = ((await cancel.json()) as { updated_at: string }).updated_at;
  });

  it('refuses a list without project, batch or unique_id, in Scale\'s error shape', async () => {
    for (const query of ['', 'status=pending', 'limit=1', 'unique_id=', 'type=multistage']) {
      expect(await list(query), query).toEqual({ status: 400, body: { status_code: 400, error: 'Please provide a project, batch or unique_id to list tasks.' } });
    }
  });

  it('filters by project, batch, status, type and unique_id (one, a comma list, repeated), newest first', async () => {
    expect(ids((await list('project=p')).body)).toEqual([t2.task_id, t1.task_id]);
    expect(ids((await list('project=q')).body)).toEqual([t3.task_id]);
    expect(ids((await list('batch=b1')).body)).toEqual([t2.task_id]);
    expect(ids((await list('project=p&status=canceled')).body)).toEqual([t1.task_id]);
    expect(ids((await list('project=p&status=pending')).body)).toEqual([t2.task_id]);
    expect(ids((await list('project=q&type=multistage')).body)).toEqual([t3.task_id]);
    expect((await list('project=q&type=imageannotation')).body).toMatchObject({ docs: [], total: 0, has_more: false, next_token: null });
    expect(ids((await list('unique_id=u-2')).body)).toEqual([t2.task_id]);
    expect(ids((await list('unique_id=u-1,u-3')).body)).toEqual([t3.task_id, t1.task_id]);
    expect(ids((await list('unique_id=u-1&unique_id=u-2')).body)).toEqual([t2.task_id, t1.task_id]);
    expect(ids((await list('unique_id=u-1,nobody')).body)).toEqual([t1.task_id]);
    expect((await list('project=nowhere')).body).toEqual({ docs: [], total: 0, limit: 100, offset: 0, has_more: false, next_token: null });
  });

  it('bounds updated_at with updated_after (inclusive) and updated_before (exclusive)', async () => {
    // The cancel moved t1's updated_at past the other two tasks' creation.
    expect(Date.parse(canceledAt)).toBeGreaterThan(Date.parse(t3.updated_at));
    expect(ids((await list(`project=p&updated_after=${canceledAt}`)).body)).toEqual([t1.task_id]);
    expect(ids((await list(`project=p&updated_before=${canceledAt}`)).body)).toEqual([t2.task_id]);
    expect(ids((await list(`project=p&updated_after=${t2.updated_at}&updated_before=${canceledAt}`)).body)).toEqual([t2.task_id]);
    const later = new Date(Date.parse(canceledAt) + 1).toISOString();
    expect((await list(`project=p&updated_after=${later}`)).body.total).toBe(0);
  });

  it('bounds created_at with start_time (inclusive) and end_time (exclusive)', async () => {
    expect(ids((await list(`project=p&start_time=${t2.created_at}`)).body)).toEqual([t2.task_id]);
    expect(ids((await list(`project=p&end_time=${t2.created_at}`)).body)).toEqual([t1.task_id]);
    // The cancel changed updated_at, not created_at: t1 is still the older task.
    expect(ids((await list(`unique_id=u-1,u-2,u-3&start_time=${t1.created_at}&end_time=${t3.created_at}`)).body)).toEqual([t2.task_id, t1.task_id]);
  });

  it('refuses a time bound that is not a date, and a limit outside 1–100', async () => {
    expect(await list('project=p&updated_after=yesterday')).toEqual({ status: 400, body: { status_code: 400, error: 'Invalid updated_after "yesterday": it must be a date.' } });
    expect((await list('project=p&end_time=2024-13-45')).status).toBe(400);
    for (const limit of ['0', '101', 'ten', '1.5', '-1']) {
      expect(await list(`project=p&limit=${limit}`), limit).toEqual({ status: 400, body: { status_code: 400, error: `Invalid limit "${limit}": it must be an integer from 1 to 100.` } });
    }
    expect((await list('project=p&limit=100')).status).toBe(200);
  });
});

describe('Scale simulator GET /v1/tasks paging', () => {
  it('pages with next_token, newest first, and a task created meanwhile neither repeats nor skips one', async () => {
    const created: string[] = [];
    for (let i = 1; i <= 5; i++) created.push((await create('paged', `paged-${i}`)).task_id);
    const [c1, c2, c3, c4, c5] = created;

    const first = (await list('project=paged&limit=2')).body;
    expect(first).toMatchObject({ total: 5, limit: 2, offset: 0, has_more: true });
    expect(ids(first)).toEqual([c5, c4]);
    expect(first.next_token).toEqual(expect.any(String));

    // Created between two pages: it sorts first, so an offset would show c4 again; the token does not.
    const c6 = (await create('paged', 'paged-6')).task_id;
    const second = (await list(`project=paged&limit=2&next_token=${encodeURIComponent(first.next_token!)}`)).body;
    expect(ids(second)).toEqual([c3, c2]);
    expect(second).toMatchObject({ total: 6, limit: 2, offset: 3, has_more: true });

    const third = (await list(`project=paged&limit=2&next_token=${encodeURIComponent(second.next_token!)}`)).body;
    expect(ids(third)).toEqual([c1]);
    expect(third).toMatchObject({ total: 6, offset: 5, has_more: false, next_token: null });

    const all = (await list('project=paged')).body;
    expect(all).toMatchObject({ total: 6, limit: 100, offset: 0, has_more: false, next_token: null });
    expect(ids(all)).toEqual([c6, c5, c4, c3, c2, c1]);
  });

  it('refuses a next_token it did not issue', async () => {
    for (const token of ['1', 'not-a-token', Buffer.from('{"created_at":1}').toString('base64url')]) {
      expect(await list(`project=paged&next_token=${token}`), token).toEqual({ status: 400, body: { status_code: 400, error: `Invalid next_token "${token}".` } });
    }
  });
});
