import { describe, expect, it } from 'vitest';
import { applyCallback, type StoredCallback } from '../../../../lambdas/core/callbacks/apply-callback.js';
import type { CallbackUpdate, TaskStore } from '../../../../lambdas/core/tasks/task-store.js';

// The core alone, with a store that keeps what it is asked to write: which update a body becomes, or that it
// becomes none. Ordering and duplicates against a real table are in test/lambdas/callback.test.ts.
const REF = 'sfs-6075c1020613cb0d420717176e118cfa3ed89726';
const ARCHIVE = { bucket: 'results', key: `callbacks/${REF}/0b7f3c1e-8d0a-4c57-9a63-2f4f1c2d9e10.json` };

function recordingStore() {
  const updates: CallbackUpdate[] = [];
  const store = { applyCallback: async (update: CallbackUpdate) => (updates.push(update), 'applied' as const) } as unknown as TaskStore;
  return { store, updates };
}

interface TaskFields {
  task_id?: string;
  status?: string;
  updated_at?: string | null;
  completed_at?: string | null;
  response?: unknown;
}

/** A callback as Scale sends it: the task, with its response beside it, its id and status at the top level. */
function callbackText(task: TaskFields, top: { task_id?: string; status?: string } = {}): string {
  const full = {
    task_id: 'task-1',
    status: 'completed',
    type: 'multistage',
    created_at: '2026-11-01T00:00:00.000Z',
    updated_at: '2026-11-02T10:00:00.000Z',
    completed_at: '2026-11-02T10:00:00.000Z',
    params: { attachments: ['https://example.com/scene.sfs'], scene_format: 'sensor_fusion' },
    metadata: { source: { bucket: 'scenes', key: 'dir/scene.sfs', versionId: 'v1', size: 10 } },
    unique_id: REF,
    ...task,
  };
  return JSON.stringify({ task: full, response: full.response, task_id: top.task_id ?? full.task_id, status: top.status ?? full.status });
}

async function apply(rawBody: string, extra: { copyResultFiles?: () => Promise<never> } = {}) {
  const { store, updates } = recordingStore();
  const stored: StoredCallback = { uniqueId: REF, rawBody, archive: ARCHIVE, arrivedAt: '2026-11-02T10:00:05.000Z' };
  const outcome = await applyCallback(stored, { store, now: () => new Date('2026-11-02T10:00:06.000Z'), ...extra });
  return { outcome, updates };
}

describe('a callback names one task', () => {
  it.each([
    ['the top-level task_id names another task', { task_id: 'task-1' }, { task_id: 'task-2' }],
    ['task.task_id names another task', { task_id: 'task-2' }, { task_id: 'task-1' }],
  ])('refuses a body where %s, and writes nothing to either record', async (_name, task, top) => {
    let copied = 0;
    const copyResultFiles = async () => {
      copied++;
      throw new Error('no result file may be fetched for a body that is refused');
    };
    const { outcome, updates } = await apply(callbackText({ ...task, response: { url: 'https://example.com/r.json' } }, top), { copyResultFiles });
    expect(outcome).toEqual({ kind: 'invalid', message: `task_id ${top.task_id} differs from task.task_id ${task.task_id}` });
    expect(updates).toEqual([]);
    expect(copied).toBe(0);
  });

  it('applies a body whose ids agree to the task it names', async () => {
    const { outcome, updates } = await apply(callbackText({ task_id: 'task-7' }));
    expect(outcome).toMatchObject({ kind: 'applied', uniqueId: REF, taskId: 'task-7', status: 'completed' });
    expect(updates.map((u) => [u.uniqueId, u.taskId])).toEqual([[REF, 'task-7']]);
  });
});

describe('inline responses are bounded in bytes, not in characters', () => {
  // 300 KiB, the documented limit: a literal here, so an edited constant shows.
  const LIMIT = 307_200;
  /** A response whose JSON text is exactly `bytes` bytes of UTF-8, mostly 3- and 4-byte characters. */
  const responseOf = (bytes: number) => {
    const overhead = Buffer.byteLength('{"t":""}');
    const emoji = '🛰️'; // U+1F6F0 U+FE0F: 4 + 3 bytes, 3 UTF-16 units
    const emojiCount = 1_000;
    const cjkCount = Math.floor((bytes - overhead - emojiCount * 7) / 3);
    const padding = bytes - overhead - emojiCount * 7 - cjkCount * 3;
    const response = { t: `${emoji.repeat(emojiCount)}${'東'.repeat(cjkCount)}${'a'.repeat(padding)}` };
    expect(Buffer.byteLength(JSON.stringify(response))).toBe(bytes);
    // Counted in UTF-16 units the text is far under the limit: only a byte count tells the two cases apart.
    expect(JSON.stringify(response).length).toBeLessThan(LIMIT / 2);
    return response;
  };

  it('keeps a response of exactly the limit in the record, byte for byte', async () => {
    const response = responseOf(LIMIT);
    const { updates } = await apply(callbackText({ response }));
    expect(updates).toHaveLength(1);
    expect(updates[0]!.responseJson).toBe(JSON.stringify(response));
    expect(updates[0]!.responseRef).toBeUndefined();
  });

  it('keeps a response one byte over the limit where it was stored, and only points to it', async () => {
    const { updates } = await apply(callbackText({ response: responseOf(LIMIT + 1) }));
    expect(updates).toHaveLength(1);
    expect(updates[0]!.responseJson).toBeUndefined();
    expect(updates[0]!.responseRef).toEqual(ARCHIVE);
  });

  it('measures the response, not the whole body (which carries the response twice)', async () => {
    const response = responseOf(LIMIT - 4_096);
    const text = callbackText({ response });
    expect(Buffer.byteLength(text)).toBeGreaterThan(2 * LIMIT - 10_000);
    const { updates } = await apply(text);
    expect(updates[0]!.responseJson).toBe(JSON.stringify(response));
  });
});

describe("a callback is ordered by the task's updated_at and keeps its completed_at", () => {
  it('orders by updated_at and stores completed_at as completedAt when the two differ (an audit after completion)', async () => {
    const { updates } = await apply(callbackText({ completed_at: '2026-11-02T10:00:00.000Z', updated_at: '2026-11-03T08:30:00.000Z' }));
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatchObject({ scaleUpdatedAt: '2026-11-03T08:30:00.000Z', completedAt: '2026-11-02T10:00:00.000Z' });
    expect(updates[0]!.order.startsWith('2026-11-03T08:30:00.000Z#')).toBe(true);
  });

  it('normalizes times to UTC before ordering them, whatever offset Scale writes', async () => {
    const { updates } = await apply(callbackText({ completed_at: '2026-11-02T11:00:00+01:00', updated_at: '2026-11-03T09:30:00+01:00' }));
    expect(updates[0]).toMatchObject({ scaleUpdatedAt: '2026-11-03T08:30:00.000Z', completedAt: '2026-11-02T10:00:00.000Z' });
    expect(updates[0]!.order.startsWith('2026-11-03T08:30:00.000Z#')).toBe(true);
  });

  it('falls back to completed_at for the order only when there is no updated_at', async () => {
    const { updates } = await apply(callbackText({ completed_at: '2026-11-02T10:00:00.000Z', updated_at: null }));
    expect(updates[0]).toMatchObject({ scaleUpdatedAt: '2026-11-02T10:00:00.000Z', completedAt: '2026-11-02T10:00:00.000Z' });
  });

  it('claims no completion for a task that is not completed, whatever completed_at still says (a recall)', async () => {
    const { updates } = await apply(callbackText({ status: 'pending', completed_at: '2026-11-02T10:00:00.000Z', updated_at: '2026-11-03T08:30:00.000Z' }));
    expect(updates).toHaveLength(1);
    expect(updates[0]!.status).toBe('pending');
    expect(updates[0]!.completedAt).toBeUndefined();
    expect(updates[0]!.scaleUpdatedAt).toBe('2026-11-03T08:30:00.000Z');
  });
});
