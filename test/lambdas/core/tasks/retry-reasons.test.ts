import { describe, expect, it } from 'vitest';
import { checkRetry, isRetryableStatus, RETRYABLE_STATUSES, retryUpload, type RetryPolicy } from '../../../../lambdas/core/tasks/retry.js';
import type { TaskRecord } from '../../../../lambdas/core/tasks/task-record.js';
import type { RetryableStatus } from '../../../../lambdas/core/tasks/task-store.js';
import { expectedUniqueId } from '../../../helpers/identity.js';

// What an operator reads when a retry is skipped or fails: the exact words, for each case.
const ALL: RetryPolicy = { statuses: RETRYABLE_STATUSES, clearUniqueIdOnError: true };
const identity = { bucket: 'scenes', key: 'retry/a.sfs', versionId: 'ver-1' };
const record = (extra: Partial<TaskRecord> = {}): TaskRecord => ({
  schemaVersion: 1, uniqueId: expectedUniqueId(identity), status: 'create_failed', ...identity, sceneFormat: 'sensor_fusion', createdAt: 'c', updatedAt: 'u', ...extra,
});
const reason = (r: TaskRecord, policy: RetryPolicy = ALL) => {
  const check = checkRetry(r, policy);
  return check.retryable ? `retryable from ${check.from}` : check.reason;
};
const store = (answer: boolean) => ({ prepareRetry: async () => answer });

describe('checkRetry: the reason for every status never retried', () => {
  it('names what the operator can do instead', () => {
    expect(reason(record({ status: 'submitting' }))).toBe('it is submitting: it is being submitted now (or waits for the reconciler, which resubmits uploads stuck in submitting): there is nothing to retry');
    expect(reason(record({ status: 'pending', taskId: 't' }))).toBe('it is pending: Scale has its task and is working on it: nothing to retry (cancel it first if it must not go on)');
    expect(reason(record({ status: 'completed', taskId: 't' }))).toBe('it is completed: its task is completed: a retry is only for uploads that got no result');
    expect(reason(record({ status: 'canceled', taskId: 't' }))).toBe("it is canceled: its task was canceled, and Scale keeps a canceled task's unique_id: upload the object again (a new version gets its own task)");
    expect(RETRYABLE_STATUSES).toEqual(['rejected', 'create_failed', 'error', 'failed']);
    expect(['rejected', 'create_failed', 'error', 'failed', 'pending', 'Rejected'].map(isRetryableStatus)).toEqual([true, true, true, true, false, false]);
  });

  it('says why an error, a task already named, or an unidentifiable upload is not retried', () => {
    expect(reason(record({ status: 'error' }))).toBe('it is error but names no task: nothing to retry from');
    expect(reason(record({ status: 'error', taskId: 'task-7' }), { ...ALL, clearUniqueIdOnError: false })).toBe(
      "its task task-7 ended in error, and Scale frees an upload's unique_id after an error only for tasks created with clear_unique_id_on_error (routing.clearUniqueIdOnError), which is off: Scale would answer a new attempt with the errored task. Upload the object again (a new version gets its own task), or turn clearUniqueIdOnError on for uploads to come",
    );
    expect(reason(record({ status: 'error', taskId: 'task-7' }))).toBe('retryable from error');
    for (const status of ['rejected', 'failed', 'create_failed'] as const) {
      expect(reason(record({ status, taskId: 'task-8' }))).toBe(`it is ${status} but already names task task-8: a retry never replaces a task`);
      expect(reason(record({ status }))).toBe(`retryable from ${status}`);
    }
    const unidentified = 'the record does not identify its S3 upload (no versionId, nor sequencer and ETag), so the upload cannot be sent again: upload the object again';
    expect(reason(record({ versionId: undefined }))).toBe(unidentified);
    expect(reason(record({ status: 'error', taskId: 't', versionId: 'ver-2' }))).toBe(unidentified);
    expect(reason(record(), { ...ALL, statuses: ['error'] })).toBe('it is create_failed, and this retry takes only error (--status)');
  });
});

describe('retryUpload: what the operator is told', () => {
  it('skips a record that moved on since it was read, and sends nothing', async () => {
    const sent: string[] = [];
    const outcome = await retryUpload(record({ status: 'failed' }), ALL, { store: store(false), send: async (n) => void sent.push(n) });
    expect(outcome).toEqual({ kind: 'skipped', uniqueId: record().uniqueId, status: 'failed', reason: 'it changed since it was read (it was failed): look at it again before retrying' });
    expect(sent).toEqual([]);
  });

  it('says where a readied record was left when the notification could not be sent', async () => {
    const send = async () => Promise.reject(new Error('queue unreachable'));
    const left: Array<[RetryableStatus, string | undefined, string]> = [
      ['create_failed', undefined, 'it is still create_failed: retry again'],
      ['failed', undefined, 'it is still failed: retry again'],
      ['rejected', undefined, 'it now waits in submitting: the reconciler resubmits it once it counts as stuck'],
      ['error', 'task-1', 'it now waits in submitting: the reconciler resubmits it once it counts as stuck'],
    ];
    for (const [status, taskId, where] of left) {
      const outcome = await retryUpload(record({ status, taskId }), ALL, { store: store(true), send });
      expect(outcome).toEqual({ kind: 'failed', uniqueId: record().uniqueId, status, reason: `the notification could not be sent to the ingest queue (queue unreachable); ${where}` });
    }
  });

  it('dates the notification by the clock it is given, else now', async () => {
    const sent: string[] = [];
    const deps = { store: store(true), send: async (n: string) => void sent.push(n) };
    expect(await retryUpload(record(), ALL, { ...deps, now: () => new Date('2026-01-02T03:04:05.000Z') })).toEqual({ kind: 'retried', uniqueId: record().uniqueId, from: 'create_failed' });
    const before = Date.now();
    await retryUpload(record(), ALL, deps);
    const times = sent.map((n) => Date.parse((JSON.parse(n) as { Records: Array<{ eventTime: string }> }).Records[0]!.eventTime));
    expect(times[0]).toBe(Date.parse('2026-01-02T03:04:05.000Z'));
    expect(times[1]).toBeGreaterThanOrEqual(before);
  });
});
