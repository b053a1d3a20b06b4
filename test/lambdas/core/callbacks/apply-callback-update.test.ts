import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { applyCallback, callbackStateKey, type ApplyCallbackDeps, type StoredCallback } from '../../../../lambdas/core/callbacks/apply-callback.js';
import type { CallbackUpdate, TaskStore } from '../../../../lambdas/core/tasks/task-store.js';

// Exactly which update a callback body becomes (every field, and no field more), with a store that keeps what it is
// asked to write. The real table's handling of these updates is tested in test/lambdas/callback.test.ts.
const REF = 'sfs-6075c1020613cb0d420717176e118cfa3ed89726';
const ARCHIVE = { bucket: 'results', key: `callbacks/${REF}/0b7f3c1e-8d0a-4c57-9a63-2f4f1c2d9e10.json` };
const ARRIVED = '2026-11-02T10:00:05.000Z';
const NOW = '2026-11-02T10:00:06.000Z';
const UNKNOWN_SOURCE = { bucket: '(unknown: task metadata has no source)', key: '(unknown)' };

const BASE_TASK = {
  task_id: 'task-1',
  status: 'completed',
  type: 'multistage',
  created_at: '2026-11-01T00:00:00.000Z',
  updated_at: '2026-11-02T10:00:00.000Z',
  completed_at: '2026-11-02T10:00:00.000Z',
  params: { attachments: ['https://example.com/scene.sfs'], scene_format: 'sensor_fusion' },
  metadata: { source: { bucket: 'scenes', key: 'dir/scene.sfs', versionId: 'v1', size: 10 } },
  unique_id: REF,
  project: 'scenes-default',
};

/** A callback as Scale sends it; a task field set to undefined is left out of the body. */
function callbackText(task: Record<string, unknown>, top: { task_id?: string; status?: string; response?: unknown } = {}): string {
  const full = { ...BASE_TASK, ...task } as Record<string, unknown>;
  return JSON.stringify({ task: full, response: 'response' in top ? top.response : full.response, task_id: top.task_id ?? full.task_id, status: top.status ?? full.status });
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function apply(rawBody: string, deps: Partial<ApplyCallbackDeps> = {}, answer: 'applied' | 'stale' = 'applied') {
  const writes: Array<{ update: CallbackUpdate; receivedAt: string }> = [];
  const store = { applyCallback: async (update: CallbackUpdate, receivedAt: string) => (writes.push({ update, receivedAt }), answer) } as unknown as TaskStore;
  const stored: StoredCallback = { uniqueId: REF, rawBody, archive: ARCHIVE, arrivedAt: ARRIVED };
  const outcome = await applyCallback(stored, { store, now: () => new Date(NOW), ...deps });
  return { outcome, writes, updates: writes.map((w) => w.update) };
}

describe('the update a callback becomes', () => {
  it('carries every field of a completed callback, and only the source fields the record knows', async () => {
    const source = { bucket: 'scenes', key: 'dir/scene.sfs', versionId: 'v1', eTag: '"e1"', sequencer: '0001A', size: 10, frameCount: 4, owner: 'not a record field' };
    const text = callbackText({
      completed_at: '2026-11-02T09:59:00.000Z',
      audits: [{ by: 'a' }, { by: 'b' }],
      params: { scene_format: 'split_base64' },
      metadata: { source, other: 'x' },
      response: { annotations: { cuboids: 3 } },
    });
    const { outcome, writes } = await apply(text);
    expect(outcome).toStrictEqual({ kind: 'applied', uniqueId: REF, taskId: 'task-1', status: 'completed', archiveKey: ARCHIVE.key });
    expect(writes).toStrictEqual([
      {
        receivedAt: NOW,
        update: {
          uniqueId: REF,
          taskId: 'task-1',
          status: 'completed',
          scaleUpdatedAt: '2026-11-02T10:00:00.000Z',
          order: `2026-11-02T10:00:00.000Z#1#000002#${ARRIVED}#${ARCHIVE.key}`,
          digest: sha256(text),
          completedAt: '2026-11-02T09:59:00.000Z',
          responseJson: '{"annotations":{"cuboids":3}}',
          archive: ARCHIVE,
          source: { bucket: 'scenes', key: 'dir/scene.sfs', versionId: 'v1', eTag: '"e1"', sequencer: '0001A', size: 10, frameCount: 4, sceneFormat: 'split_base64', project: 'scenes-default' },
        },
      },
    ]);
  });

  it('writes no response, completion, result files or project for a bare pending callback without metadata', async () => {
    const text = callbackText({ status: '', updated_at: null, completed_at: null, metadata: null, params: undefined, project: undefined, audits: null }, { status: 'pending' });
    const { outcome, updates } = await apply(text);
    expect(outcome).toStrictEqual({ kind: 'applied', uniqueId: REF, taskId: 'task-1', status: 'pending', archiveKey: ARCHIVE.key });
    expect(updates).toStrictEqual([
      {
        uniqueId: REF,
        taskId: 'task-1',
        status: 'pending',
        scaleUpdatedAt: '2026-11-01T00:00:00.000Z',
        order: `2026-11-01T00:00:00.000Z#3#000000#${ARRIVED}#${ARCHIVE.key}`,
        digest: sha256(text),
        archive: ARCHIVE,
        source: { ...UNKNOWN_SOURCE, sceneFormat: 'sensor_fusion' },
      },
    ]);
  });

  it("answers what the store answers: a callback older than the record's state is stale", async () => {
    const { outcome } = await apply(callbackText({ status: 'error' }), {}, 'stale');
    expect(outcome).toStrictEqual({ kind: 'stale', uniqueId: REF, taskId: 'task-1', status: 'error', archiveKey: ARCHIVE.key });
  });

  it.each([
    ['completed', 1],
    ['error', 2],
    ['pending', 3],
    ['canceled', 4],
  ])("takes the task's own status (%s) over the top-level one, and ranks it %i among equal times", async (status, rank) => {
    const { updates } = await apply(callbackText({ status }, { status: status === 'pending' ? 'completed' : 'pending' }));
    expect(updates.map((u) => [u.status, u.order])).toEqual([[status, `2026-11-02T10:00:00.000Z#${rank}#000000#${ARRIVED}#${ARCHIVE.key}`]]);
  });

  it.each([
    ['split_base64', 'split_base64'],
    ['sensor_fusion', 'sensor_fusion'],
    ['something_new', 'sensor_fusion'],
    [undefined, 'sensor_fusion'],
  ])('records scene_format %s as the source format %s', async (format, expected) => {
    const { updates } = await apply(callbackText({ params: { attachments: ['https://example.com/s.sfs'], scene_format: format } }));
    expect(updates[0]!.source).toStrictEqual({ bucket: 'scenes', key: 'dir/scene.sfs', versionId: 'v1', size: 10, sceneFormat: expected, project: 'scenes-default' });
  });

  it('records the project only when the task names one as text', async () => {
    for (const project of [undefined, 42]) {
      const { updates } = await apply(callbackText({ project }));
      expect(updates[0]!.source).toStrictEqual({ bucket: 'scenes', key: 'dir/scene.sfs', versionId: 'v1', size: 10, sceneFormat: 'sensor_fusion' });
    }
  });

  it('falls back to an unknown source when the metadata has none, keeping the scene format', async () => {
    const { updates } = await apply(callbackText({ metadata: { other: 1 }, params: { scene_format: 'split_base64' } }));
    expect(updates[0]!.source).toStrictEqual({ ...UNKNOWN_SOURCE, sceneFormat: 'split_base64' });
    const { updates: noMetadata } = await apply(callbackText({ metadata: undefined }));
    expect(noMetadata[0]!.source).toStrictEqual({ ...UNKNOWN_SOURCE, sceneFormat: 'sensor_fusion' });
  });

  it('stamps the time it was received from the clock when none is given', async () => {
    const before = Date.now();
    const { writes } = await apply(callbackText({}), { now: undefined });
    const receivedAt = Date.parse(writes[0]!.receivedAt);
    expect(receivedAt).toBeGreaterThanOrEqual(before);
    expect(receivedAt).toBeLessThanOrEqual(Date.now());
    expect(writes[0]!.receivedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});

describe('where the response goes', () => {
  it("takes the task's response when the body has none beside it", async () => {
    const { updates } = await apply(callbackText({ response: { from: 'task' } }, { response: undefined }));
    expect(updates[0]!.responseJson).toBe('{"from":"task"}');
  });

  it('takes the response beside the task over the one inside it', async () => {
    const { updates } = await apply(callbackText({ response: { from: 'task' } }, { response: { from: 'top' } }));
    expect(updates[0]!.responseJson).toBe('{"from":"top"}');
  });

  it('honours a smaller inline limit, in bytes, inclusive', async () => {
    // {"a":"12345"} is 13 bytes.
    const { updates: fits } = await apply(callbackText({ response: { a: '12345' } }), { inlineLimitBytes: 13 });
    expect(fits[0]).toMatchObject({ responseJson: '{"a":"12345"}' });
    const { updates: over } = await apply(callbackText({ response: { a: '123456' } }), { inlineLimitBytes: 13 });
    expect(over[0]!.responseJson).toBeUndefined();
    expect(over[0]!.responseRef).toStrictEqual(ARCHIVE);
  });

  it('points to the stored body for a response too deeply nested to write out again', async () => {
    // JSON.parse reads 20,000 nested arrays; JSON.stringify overflows the stack on them.
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const text = `${callbackText({}).slice(0, -1)},"response":${deep}}`;
    const { updates } = await apply(text);
    expect(updates).toHaveLength(1);
    expect(updates[0]!.responseJson).toBeUndefined();
    expect(updates[0]!.responseRef).toStrictEqual(ARCHIVE);
  });
});

describe('which times order a callback', () => {
  it('skips an unreadable updated_at and orders by completed_at', async () => {
    const { updates } = await apply(callbackText({ updated_at: 'soon', completed_at: '2026-11-02T09:00:00.000Z' }));
    expect(updates[0]).toMatchObject({ scaleUpdatedAt: '2026-11-02T09:00:00.000Z', completedAt: '2026-11-02T09:00:00.000Z' });
  });

  it('takes the order time as the completion time of a completed task without completed_at', async () => {
    const { updates } = await apply(callbackText({ updated_at: '2026-11-02T11:00:00.000Z', completed_at: null }));
    expect(updates[0]).toMatchObject({ scaleUpdatedAt: '2026-11-02T11:00:00.000Z', completedAt: '2026-11-02T11:00:00.000Z' });
  });

  it('refuses a task with no readable time at all, and writes nothing', async () => {
    const { outcome, updates } = await apply(callbackText({ updated_at: 'later', completed_at: null, created_at: undefined }));
    expect(outcome).toStrictEqual({ kind: 'invalid', message: 'task has no readable updated_at, completed_at or created_at to order it by' });
    expect(updates).toEqual([]);
  });

  it('keeps the audit count to six digits in the order', () => {
    expect(callbackStateKey('2026-11-02T10:00:00.000Z', 'completed', 12)).toBe('2026-11-02T10:00:00.000Z#1#000012');
    expect(callbackStateKey('2026-11-02T10:00:00.000Z', 'completed', 1_000_000)).toBe('2026-11-02T10:00:00.000Z#1#999999');
  });
});

describe('what is refused before anything is written', () => {
  it.each([
    ['not JSON', '{"task_id": ', 'body is not valid JSON'],
    ['an empty task_id', JSON.stringify({ task_id: '', status: 'completed', task: { task_id: 'task-1', status: 'completed' } }), 'body is not a Scale callback: task_id: is required'],
    ['an unknown status', callbackText({ status: 'reviewing' }), 'unknown task status "reviewing" (expected pending, completed, error, canceled)'],
  ])('refuses %s with its reason', async (_name, text, message) => {
    const { outcome, updates } = await apply(text);
    expect(outcome).toStrictEqual({ kind: 'invalid', message });
    expect(updates).toEqual([]);
  });
});

describe('result files are copied for completed callbacks only, before the state is written', () => {
  const urls = ['https://results.example/a.json', 'https://results.example/b.png'];
  const response = { preview: urls[0], annotations: { url: urls[1] } };
  function copier(answer: unknown[] = [{ sourceUrl: urls[0], error: 'refused: host results.example is not in resultFileHosts' }]) {
    const calls: Array<[string, string[], string]> = [];
    const copyResultFiles = async (uniqueId: string, found: string[], version: string) => (calls.push([uniqueId, found, version]), answer as never);
    return { calls, copyResultFiles };
  }

  it("copies the URLs a completed response names, under this body's digest, and lists what came back", async () => {
    const { calls, copyResultFiles } = copier();
    const text = callbackText({ response });
    const { updates } = await apply(text, { copyResultFiles });
    expect(calls).toEqual([[REF, urls, sha256(text).slice(0, 16)]]);
    expect(calls[0]![2]).toMatch(/^[0-9a-f]{16}$/);
    expect(updates[0]!.resultFiles).toStrictEqual([{ sourceUrl: urls[0], error: 'refused: host results.example is not in resultFileHosts' }]);
  });

  it.each(['pending', 'error', 'canceled'])('copies nothing for a %s callback, whatever its response names', async (status) => {
    const { calls, copyResultFiles } = copier();
    const { updates } = await apply(callbackText({ status, response }), { copyResultFiles });
    expect(calls).toEqual([]);
    expect(updates).toHaveLength(1);
    expect('resultFiles' in updates[0]!).toBe(false);
  });

  it('copies nothing, and lists nothing, for a completed response without URLs or without any response', async () => {
    const { calls, copyResultFiles } = copier();
    const { updates } = await apply(callbackText({ response: { annotations: { cuboids: 3 } } }), { copyResultFiles });
    const { updates: bare } = await apply(callbackText({ response: undefined }), { copyResultFiles });
    expect(calls).toEqual([]);
    expect([...updates, ...bare].map((u) => 'resultFiles' in u)).toEqual([false, false]);
  });

  it('writes nothing when copying fails in a way worth retrying (the message comes back)', async () => {
    const copyResultFiles = async () => {
      throw new Error('fetching failed: timed out');
    };
    const writes: CallbackUpdate[] = [];
    const store = { applyCallback: async (update: CallbackUpdate) => (writes.push(update), 'applied' as const) } as unknown as TaskStore;
    const stored: StoredCallback = { uniqueId: REF, rawBody: callbackText({ response }), archive: ARCHIVE, arrivedAt: ARRIVED };
    await expect(applyCallback(stored, { store, copyResultFiles })).rejects.toThrow('fetching failed: timed out');
    expect(writes).toEqual([]);
  });
});
