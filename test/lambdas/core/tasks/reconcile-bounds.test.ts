import { describe, expect, it } from 'vitest';
import type { ListTasksQuery } from '../../../../lambdas/core/scale/client.js';
import type { ScaleTask, TaskList } from '../../../../lambdas/core/scale/schemas.js';
import { reconcile, type ReconcileDeps } from '../../../../lambdas/core/tasks/reconcile.js';
import type { TaskRecord } from '../../../../lambdas/core/tasks/task-record.js';

// The reconciler's rules and bounds, with Scale and the table as plain in-memory stand-ins: what it asks for,
// which tasks count as this stack's, and where each loop stops.
const NOW = new Date('2026-11-30T12:00:00.000Z');
const id = (i: number) => `sfs-${i.toString(16).padStart(40, '0')}`;
const record = (i: number, extra: Partial<TaskRecord> = {}): TaskRecord => ({
  schemaVersion: 1, uniqueId: id(i), status: 'pending', bucket: 'scenes', key: `r/${i}.sfs`, versionId: `v${i}`, sceneFormat: 'sensor_fusion', createdAt: 'c', updatedAt: 'u', ...extra,
});
const task = (i: number, extra: Record<string, unknown> = {}): ScaleTask => ({ task_id: `t${i}`, status: 'completed', updated_at: '2026-11-30T10:00:00Z', unique_id: id(i), ...extra });

function harness(options: { pages?: TaskList[]; records?: TaskRecord[]; stuck?: TaskRecord[][]; errored?: TaskRecord[][]; found?: Record<string, ScaleTask>; deps?: Partial<ReconcileDeps> }) {
  const records = new Map((options.records ?? []).map((r) => [r.uniqueId, r]));
  const listed: ListTasksQuery[] = [];
  const stored: Array<[string, string]> = [];
  const resubmitted: string[] = [];
  const prepared: Array<[string, string, string]> = [];
  const stuckAsked: unknown[] = [];
  const erroredAsked: unknown[] = [];
  const paged = (pages: TaskRecord[][] | undefined, asked: unknown[]) => async (status: string, time: string, opts: { limit?: number; cursor?: string }) => {
    asked.push([status, time, opts]);
    const at = opts.cursor === undefined ? 0 : Number(opts.cursor);
    const list = pages ?? [];
    return { items: list[at] ?? [], ...(at + 1 < list.length ? { cursor: String(at + 1) } : {}) };
  };
  const deps: ReconcileDeps = {
    scale: {
      listTasks: async (query) => (listed.push(query), options.pages?.[listed.length - 1] ?? { docs: [], has_more: false }),
      findTaskByUniqueId: async (uniqueId) => options.found?.[uniqueId],
    },
    records: { get: async (uniqueId) => records.get(uniqueId), listByStatus: paged(options.errored, erroredAsked), listByStatusBefore: paged(options.stuck, stuckAsked) },
    errorResubmissions: 0,
    prepareResubmission: async (...args) => (prepared.push(args), true),
    storeState: async (uniqueId, name) => void stored.push([uniqueId, name]),
    resubmit: async (notification) => void resubmitted.push(JSON.parse(notification).Records[0].s3.object.versionId),
    projects: ['p'],
    now: () => NOW,
    afterMinutes: 30,
    lookBackHours: 2,
    ...options.deps,
  };
  return { run: () => reconcile(deps), listed, stored, resubmitted, prepared, stuckAsked, erroredAsked };
}
const page = (docs: ScaleTask[], next?: string): TaskList => ({ docs, has_more: next !== undefined, ...(next !== undefined ? { next_token: next } : {}) });
const EMPTY = { checked: 0, missingStates: 0, adopted: 0, resubmitted: 0, retriedErrors: 0, failedProjects: 0, errors: [] };

describe('reconcile: what it asks Scale and which tasks are this stack\'s', () => {
  it('asks each project for the look-back, 100 at a time, following next_token', async () => {
    const h = harness({ pages: [page([], 'n1'), page([], 'n2'), page([])], deps: { projects: ['a', 'b'] } });
    expect(await h.run()).toEqual(EMPTY);
    expect(h.listed).toEqual([
      { project: 'a', updated_after: '2026-11-30T10:00:00.000Z', limit: 100, next_token: undefined },
      { project: 'a', updated_after: '2026-11-30T10:00:00.000Z', limit: 100, next_token: 'n1' },
      { project: 'a', updated_after: '2026-11-30T10:00:00.000Z', limit: 100, next_token: 'n2' },
      { project: 'b', updated_after: '2026-11-30T10:00:00.000Z', limit: 100, next_token: undefined },
    ]);
    // Stuck means last updated more than afterMinutes ago.
    expect(h.stuckAsked).toEqual([['submitting', '2026-11-30T11:30:00.000Z', { limit: 100, cursor: undefined }]]);
  });

  it('stops a project at a page without more, or without a token, even when the other says otherwise', async () => {
    const noToken = harness({ pages: [{ docs: [], has_more: true }, page([])] });
    await noToken.run();
    expect(noToken.listed).toHaveLength(1);
    const noMore = harness({ pages: [{ docs: [], has_more: false, next_token: 'n1' }, page([])] });
    await noMore.run();
    expect(noMore.listed).toHaveLength(1);
    // A token seen two pages back pages forever too.
    const cycle = harness({ pages: [page([], 'x'), page([], 'y'), page([], 'x'), page([], 'y')] });
    await cycle.run();
    expect(cycle.listed.map((q) => q.next_token)).toEqual([undefined, 'x', 'y']);
  });

  it('counts only tasks with a record here, a unique_id of this pipeline\'s shape, a known status and a time', async () => {
    const docs = [
      task(1),
      task(2, { unique_id: `sfs-${'A'.repeat(40)}` }),
      task(3, { unique_id: `${id(3)}0` }),
      task(4, { unique_id: `x${id(4)}` }),
      task(5, { status: 'paused' }),
      task(6, { updated_at: undefined }),
      task(7, { updated_at: 'not a time' }),
      task(8, { unique_id: undefined }),
      task(9), // no record here: another stack's
      task(10, { status: 'canceled' }),
      task(11, { unique_id: id(11).slice(0, -1) }),
      task(12, { unique_id: id(12).replace('sfs-', 'sfs_') }),
    ];
    const h = harness({ pages: [page(docs)], records: [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12].map((i) => record(i, { uniqueId: docs[i - 1]?.unique_id ?? id(i) })).concat(record(10)) });
    expect(await h.run()).toEqual({ ...EMPTY, checked: 2, missingStates: 2 });
    expect(h.stored).toEqual([
      [id(1), 'reconciled-2026-11-30T100000000Z-completed-0.json'],
      [id(10), 'reconciled-2026-11-30T100000000Z-canceled-0.json'],
    ]);
  });

  it('hands on the response once, at the top, with the task\'s own fields, and an empty one when Scale sent none', async () => {
    const bodies: Record<string, unknown> = {};
    const h = harness({
      pages: [page([task(1, { response: { labels: [1] }, audits: [{}, {}] }), task(2, { status: 'error' })])],
      records: [record(1), record(2)],
      deps: { storeState: async (uniqueId, _name, text) => void (bodies[uniqueId] = JSON.parse(text)) },
    });
    await h.run();
    expect(bodies).toEqual({
      [id(1)]: { task: { task_id: 't1', status: 'completed', updated_at: '2026-11-30T10:00:00Z', unique_id: id(1), audits: [{}, {}] }, response: { labels: [1] }, task_id: 't1', status: 'completed', reconciled: true },
      [id(2)]: { task: { task_id: 't2', status: 'error', updated_at: '2026-11-30T10:00:00Z', unique_id: id(2) }, response: {}, task_id: 't2', status: 'error', reconciled: true },
    });
  });
});

describe('reconcile: a state is missing only when the record is older', () => {
  const at = '2026-11-30T10:00:00.000Z';
  const key = (status: number, audits: string) => `${at}#${status}#${audits}#2026-11-30T10:00:01.000Z#k`;
  it('compares by the order key, a recall or an audit at the same instant being newer, an equal state present', async () => {
    const cases: Array<[string, Partial<TaskRecord>, Record<string, unknown>, boolean]> = [
      ['equal state', { callbackOrder: key(1, '000000') }, {}, false],
      ['recall to pending at the same instant', { callbackOrder: key(1, '000000') }, { status: 'pending' }, true],
      ['an audit at the same instant', { callbackOrder: key(1, '000000') }, { audits: [{}] }, true],
      ['fewer audits', { callbackOrder: key(1, '000002') }, { audits: [{}] }, false],
      ['older task time', { callbackOrder: key(1, '000000') }, { updated_at: '2026-11-30T09:59:59.999Z' }, false],
      ['newer task time', { callbackOrder: key(3, '000000') }, { updated_at: '2026-11-30T10:00:00.001Z' }, true],
      ['a record from before order keys, same time', { scaleUpdatedAt: at }, { status: 'pending' }, false],
      ['a record from before order keys, newer task', { scaleUpdatedAt: at }, { updated_at: '2026-11-30T10:00:01Z' }, true],
      ['no state at all', {}, {}, true],
    ];
    for (const [name, stored, scale, missing] of cases) {
      const h = harness({ pages: [page([task(1, scale)])], records: [record(1, stored)] });
      expect([name, await h.run()]).toEqual([name, { ...EMPTY, checked: 1, missingStates: missing ? 1 : 0 }]);
    }
  });
});

describe('reconcile: every loop is bounded', () => {
  it('checks exactly limits.tasks of this stack\'s tasks, across pages', async () => {
    const docs = [1, 2, 3, 4].map((i) => task(i));
    const h = harness({ pages: [page(docs.slice(0, 2), 'n1'), page(docs.slice(2), 'n2'), page([])], records: [1, 2, 3, 4].map((i) => record(i)), deps: { limits: { tasks: 3 } } });
    expect(await h.run()).toMatchObject({ checked: 3, missingStates: 3 });
    expect(h.listed).toHaveLength(2);
    const exact = harness({ pages: [page(docs.slice(0, 2), 'n1'), page(docs.slice(2))], records: [1, 2, 3, 4].map((i) => record(i)), deps: { limits: { tasks: 2 } } });
    expect(await exact.run()).toMatchObject({ checked: 2 });
    expect(exact.listed).toHaveLength(1);
  });

  it('reads exactly pagesPerProject pages of each project', async () => {
    const h = harness({ pages: [page([], 'a'), page([], 'b'), page([], 'c'), page([], 'd')], deps: { limits: { pagesPerProject: 2 }, projects: ['x'] } });
    await h.run();
    expect(h.listed.map((q) => q.next_token)).toEqual([undefined, 'a']);
  });

  it('handles exactly limits.stuck stuck uploads, across pages, adopting or resubmitting each', async () => {
    const stuck = [[record(1, { status: 'submitting' }), record(2, { status: 'submitting' })], [record(3, { status: 'submitting' }), record(4, { status: 'submitting' })]];
    const h = harness({ stuck, records: stuck.flat(), found: { [id(2)]: task(2, { status: 'pending' }) }, deps: { limits: { stuck: 3 } } });
    expect(await h.run()).toEqual({ ...EMPTY, adopted: 1, resubmitted: 2 });
    expect(h.resubmitted).toEqual(['v1', 'v3']);
    expect(h.stored).toEqual([[id(2), 'reconciled-2026-11-30T100000000Z-pending-0.json']]);
    expect(h.stuckAsked.map((a) => (a as [string, string, { cursor?: string }])[2].cursor)).toEqual([undefined, '1']);
    const all = harness({ stuck, records: stuck.flat() });
    expect(await all.run()).toMatchObject({ resubmitted: 4 });
  });

  it('dates a resubmission when the upload was recorded or last reopened, so its day of waiting in the queue does not start over', async () => {
    const times: string[] = [];
    const stuck = [
      [
        record(1, { status: 'submitting', createdAt: '2026-11-30T02:00:00.000Z' }),
        record(2, { status: 'submitting', createdAt: 'unreadable' }),
        record(3, { status: 'submitting', createdAt: '2026-12-01T00:00:00.000Z' }),
        // Recorded three days ago, retried by an operator this morning.
        record(4, { status: 'submitting', createdAt: '2026-11-27T12:00:00.000Z', reopenedAt: '2026-11-30T09:00:00.000Z' }),
        record(5, { status: 'submitting', createdAt: '2026-11-30T03:00:00.000Z', reopenedAt: 'unreadable' }),
      ],
    ];
    const h = harness({ stuck, deps: { resubmit: async (notification) => void times.push(JSON.parse(notification).Records[0].eventTime) } });
    expect(await h.run()).toMatchObject({ resubmitted: 5 });
    // Unreadable, or ahead of the reconciler's clock: now.
    expect(times).toEqual(['2026-11-30T02:00:00.000Z', NOW.toISOString(), NOW.toISOString(), '2026-11-30T09:00:00.000Z', '2026-11-30T03:00:00.000Z']);
  });

  it('keeps the first five failing projects\' errors, each bounded to 300 characters', async () => {
    const projects = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];
    const h = harness({ deps: { projects, scale: { listTasks: async ({ project }) => Promise.reject(new Error(`${project} ${'e'.repeat(400)}`)), findTaskByUniqueId: async () => undefined } } });
    const report = await h.run();
    expect(report.failedProjects).toBe(6);
    expect(report.errors).toEqual(projects.slice(0, 5).map((p) => `project ${p}: ${p} ${'e'.repeat(300 - `project ${p}: ${p} `.length)}`));
  });
});

describe('reconcile: tasks that failed to download their attachment are submitted again, within bounds', () => {
  const failed = (i: number, extra: Partial<TaskRecord> = {}) => record(i, { status: 'error', taskId: `t${i}`, responseJson: '{"error":"One or more attachments could not be downloaded."}', ...extra });
  it('resubmits transient errors under the cap, and none when the cap is 0', async () => {
    const errored = [[failed(1), failed(2, { resubmissions: 1 }), failed(3, { resubmissions: 2 }), failed(4, { responseJson: '{"error":"bad scene"}' })], [failed(5, { taskId: undefined }), failed(6, { responseJson: undefined }), failed(7)]];
    const h = harness({ errored, deps: { errorResubmissions: 2 } });
    expect(await h.run()).toEqual({ ...EMPTY, retriedErrors: 3 });
    expect(h.prepared).toEqual([[id(1), 't1', NOW.toISOString()], [id(2), 't2', NOW.toISOString()], [id(7), 't7', NOW.toISOString()]]);
    expect(h.resubmitted).toEqual(['v1', 'v2', 'v7']);
    expect(h.erroredAsked[0]).toEqual(['error', '2026-11-30T10:00:00.000Z', { limit: 100, cursor: undefined }]);
    const off = harness({ errored, deps: { errorResubmissions: 0 } });
    await off.run();
    expect([off.erroredAsked, off.prepared]).toEqual([[], []]);
  });

  it('sends nothing for a record that moved on, and looks at no more than limits.stuck records', async () => {
    const h = harness({ errored: [[failed(1), failed(2), failed(3)]], deps: { errorResubmissions: 1, prepareResubmission: async (uniqueId) => uniqueId !== id(1), limits: { stuck: 2 } } });
    expect(await h.run()).toMatchObject({ retriedErrors: 1 });
    expect(h.resubmitted).toEqual(['v2']);
  });
});
