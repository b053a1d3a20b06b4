import { describe, expect, it } from 'vitest';
import { CANCELED_ON_DELETE, cancelOnDelete, cancelOpenTask, deletedUpload } from '../../../../lambdas/core/scenes/cancel-on-delete.js';
import type { RemovalEvent } from '../../../../lambdas/core/scenes/s3-event.js';
import { ScaleApiError } from '../../../../lambdas/core/scale/errors.js';
import type { ScaleTask } from '../../../../lambdas/core/scale/schemas.js';
import type { TaskRecord } from '../../../../lambdas/core/tasks/task-record.js';
import type { TaskStore } from '../../../../lambdas/core/tasks/task-store.js';
import { NotYetError } from '../../../../lambdas/core/scenes/wait-in-queue.js';

/*
 * A delete in the bucket cancels the pending task of the upload it took away. The store and Scale are stand-ins
 * that record every call, so each test says exactly what was written and what Scale was asked.
 */

const NOW = '2026-11-30T12:00:00.000Z';
const record = (fields: Partial<TaskRecord>) => ({ bucket: 'b', key: 'k.sfs', ...fields }) as TaskRecord;

function world(records: TaskRecord[], scale: { cancel?: () => Promise<Partial<ScaleTask>>; found?: Partial<ScaleTask>; canceled?: 'applied' | 'stale' } = {}) {
  const calls: unknown[][] = [];
  const store = {
    findByKey: async (...args: unknown[]) => (calls.push(['findByKey', ...args]), records),
    recordSubmitted: async (...args: unknown[]) => (calls.push(['recordSubmitted', ...args]), 'recorded'),
    recordCanceled: async (...args: unknown[]) => (calls.push(['recordCanceled', ...args]), scale.canceled ?? 'applied'),
    recordCancelRefused: async (...args: unknown[]) => void calls.push(['recordCancelRefused', ...args]),
  } as unknown as TaskStore;
  const scaleApi = {
    cancelTask: async (taskId: string) => (calls.push(['cancelTask', taskId]), ((await scale.cancel?.()) ?? { task_id: taskId, updated_at: '2026-11-30T11:00:00Z' }) as ScaleTask),
    findTaskByUniqueId: async (uniqueId: string) => (calls.push(['findTaskByUniqueId', uniqueId]), scale.found as ScaleTask | undefined),
  };
  return { deps: { store, scale: scaleApi, cancelOnDelete: true, now: () => new Date(NOW) }, calls };
}

const marker: RemovalEvent = { eventName: 'ObjectRemoved:DeleteMarkerCreated', bucket: 'b', key: 'k.sfs', versionId: 'dm', sequencer: '20' };
const canceledRecord = (uniqueId: string, taskId: string, scaleUpdatedAt = '2026-11-30T11:00:00.000Z', reason = CANCELED_ON_DELETE) => [
  'recordCanceled',
  uniqueId,
  { taskId, scaleUpdatedAt, order: `${scaleUpdatedAt}#4#000000#${NOW}#cancel/${taskId}`, reason },
  NOW,
];

describe('cancelOnDelete', () => {
  it('only logs a delete when switched off', async () => {
    const { deps, calls } = world([record({ uniqueId: 'u1', status: 'pending', taskId: 't1', sequencer: '10' })]);
    expect(await cancelOnDelete(marker, { ...deps, cancelOnDelete: false })).toStrictEqual({ kind: 'ignored', reason: 'cancelOnDelete is off' });
    expect(calls).toEqual([]);
  });

  it('cancels the pending task and records the cancel in Scale order', async () => {
    const { deps, calls } = world([record({ uniqueId: 'u1', status: 'pending', taskId: 't1', sequencer: '10' })]);
    expect(await cancelOnDelete(marker, deps)).toStrictEqual({ kind: 'canceled', uniqueId: 'u1', taskId: 't1' });
    expect(calls).toEqual([['findByKey', 'b', 'k.sfs'], ['cancelTask', 't1'], canceledRecord('u1', 't1')]);
  });

  it('finds nothing to cancel without an upload from before the delete', async () => {
    const { deps } = world([record({ uniqueId: 'u1', status: 'pending', taskId: 't1', sequencer: '30' })]);
    expect(await cancelOnDelete(marker, deps)).toStrictEqual({ kind: 'nothing_to_cancel', reason: 'no upload of this object was recorded before the delete' });
  });

  it.each([
    ['completed', 't1', 'the upload is completed, not a pending task'],
    ['rejected', undefined, 'the upload is rejected, not a pending task'],
    ['pending', undefined, 'the upload is pending, not a pending task'],
  ] as const)('leaves a %s upload (task %s) alone', async (status, taskId, reason) => {
    const { deps, calls } = world([record({ uniqueId: 'u1', status, ...(taskId ? { taskId } : {}), sequencer: '10' })]);
    expect(await cancelOnDelete(marker, deps)).toStrictEqual({ kind: 'nothing_to_cancel', uniqueId: 'u1', status, reason });
    expect(calls).toEqual([['findByKey', 'b', 'k.sfs']]);
  });

  it('asks to wait a minute while the upload is still being submitted', async () => {
    const { deps } = world([record({ uniqueId: 'u1', status: 'submitting', sequencer: '10' })]);
    const err = await cancelOnDelete(marker, deps).then(() => expect.unreachable('the delete was handled'), (e: unknown) => e);
    expect(err).toBeInstanceOf(NotYetError);
    expect(err).toMatchObject({ retryInMs: 60_000, message: 'upload u1 is still being submitted; the delete is handled again once it has a task (or was rejected)' });
  });

  it('finds nothing to cancel for a failed upload Scale has no task for', async () => {
    const { deps, calls } = world([record({ uniqueId: 'u1', status: 'failed', sequencer: '10' })]);
    expect(await cancelOnDelete(marker, deps)).toStrictEqual({ kind: 'nothing_to_cancel', uniqueId: 'u1', status: 'failed', reason: 'the upload failed before Scale had a task for it' });
    expect(calls).toEqual([['findByKey', 'b', 'k.sfs'], ['findTaskByUniqueId', 'u1']]);
  });

  it.each([
    ['a real version', 'v1', true],
    ['version "null"', 'null', false],
  ])('adopts and cancels the task a failed upload of %s had created', async (_name, versionId, attachmentPinned) => {
    const { deps, calls } = world([record({ uniqueId: 'u1', status: 'failed', versionId, sequencer: '10' })], { found: { task_id: 't9' } });
    expect(await cancelOnDelete(marker, deps)).toStrictEqual({ kind: 'canceled', uniqueId: 'u1', taskId: 't9' });
    expect(calls).toEqual([
      ['findByKey', 'b', 'k.sfs'],
      ['findTaskByUniqueId', 'u1'],
      ['recordSubmitted', 'u1', { taskId: 't9', attachmentPinned, adopted: true }, NOW],
      ['cancelTask', 't9'],
      canceledRecord('u1', 't9'),
    ]);
  });
});

describe('cancelOpenTask', () => {
  const refusal = (status: number | undefined, retryable: boolean, scaleMessage?: string) =>
    new ScaleApiError('refused', { operation: 'cancel', status, retryable, attempts: 1, ...(scaleMessage ? { scaleMessage } : {}) });

  it("keeps Scale's refusal to cancel, in Scale's words or else the error's", async () => {
    const { deps, calls } = world([], { cancel: () => Promise.reject(refusal(400, false, 'task already completed')) });
    expect(await cancelOpenTask('u1', 't1', 'why', deps)).toStrictEqual({ kind: 'cancel_refused', uniqueId: 'u1', taskId: 't1', scaleStatus: 400, scaleMessage: 'task already completed' });
    expect(calls.at(-1)).toEqual(['recordCancelRefused', 'u1', { status: 400, message: 'task already completed' }, NOW]);
    const plain = world([], { cancel: () => Promise.reject(refusal(404, false)) });
    expect(await cancelOpenTask('u1', 't1', 'why', plain.deps)).toMatchObject({ kind: 'cancel_refused', scaleStatus: 404, scaleMessage: 'Scale cancel failed after 1 attempt: refused' });
  });

  it.each([
    ['a retryable failure', refusal(503, true)],
    ['a refused key (401)', refusal(401, false)],
    ['a refused key (403)', refusal(403, false)],
    ['a failure without a status', refusal(undefined, false)],
    ['an error not from Scale', new Error('boom')],
  ])('passes on %s to be retried, recording nothing', async (_name, err) => {
    const { deps, calls } = world([], { cancel: () => Promise.reject(err) });
    await expect(cancelOpenTask('u1', 't1', 'why', deps)).rejects.toBe(err);
    expect(calls).toEqual([['cancelTask', 't1']]);
  });

  it("orders the cancel by Scale's time, or by now when Scale gives none, and says when a newer state won", async () => {
    for (const updated_at of [null, 'not a time', '']) {
      const { deps, calls } = world([], { cancel: async () => ({ task_id: 't1', updated_at }) as Partial<ScaleTask> });
      await cancelOpenTask('u1', 't1', 'why', deps);
      expect(calls.at(-1), String(updated_at)).toEqual(canceledRecord('u1', 't1', NOW, 'why'));
    }
    const stale = world([], { canceled: 'stale' });
    expect(await cancelOpenTask('u1', 't1', 'why', stale.deps)).toStrictEqual({ kind: 'already_newer', uniqueId: 'u1', taskId: 't1' });
  });
});

describe('deletedUpload', () => {
  const uploads = [
    record({ uniqueId: 'old', versionId: 'v1', sequencer: '10' }),
    record({ uniqueId: 'unordered', versionId: 'v0' }),
    record({ uniqueId: 'new', versionId: 'v2', sequencer: '1A' }),
    record({ uniqueId: 'after', versionId: 'v3', sequencer: '30' }),
  ];
  const ids = (r: TaskRecord | undefined) => r?.uniqueId;

  it('takes the exact version a permanent delete removed, even an older one', () => {
    expect(ids(deletedUpload({ eventName: 'ObjectRemoved:Delete', bucket: 'b', key: 'k.sfs', versionId: 'v1', sequencer: '40' }, uploads))).toBe('old');
    expect(ids(deletedUpload({ eventName: 'ObjectRemoved:Delete', bucket: 'b', key: 'k.sfs', versionId: 'v9', sequencer: '40' }, uploads))).toBeUndefined();
  });

  it('otherwise takes the newest upload from strictly before the delete', () => {
    expect(ids(deletedUpload(marker, uploads))).toBe('new');
    expect(ids(deletedUpload({ ...marker, sequencer: '1A' }, uploads))).toBe('old');
    expect(ids(deletedUpload({ eventName: 'ObjectRemoved:Delete', bucket: 'b', key: 'k.sfs', versionId: 'null', sequencer: '20' }, uploads))).toBe('new');
    expect(ids(deletedUpload({ eventName: 'ObjectRemoved:Delete', bucket: 'b', key: 'k.sfs' }, uploads))).toBe('after');
    expect(ids(deletedUpload({ ...marker, sequencer: '05' }, uploads))).toBeUndefined();
  });
});
