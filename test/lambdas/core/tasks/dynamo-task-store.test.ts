import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPipelineEnv } from '../../../helpers/pipeline-env.js';

let env: Awaited<ReturnType<typeof startPipelineEnv>>;
beforeAll(async () => {
  env = await startPipelineEnv({ callbackUrl: 'http://127.0.0.1:9/callback' }); // never called here
});
afterAll(() => env.close());

let n = 0;
const upload = (overrides: Record<string, unknown> = {}) => {
  n++;
  return { uniqueId: `sfs-store-${n}`, bucket: 'scenes', key: `store/${n}.sfs`, versionId: `v${n}`, sequencer: `00${n}`, size: 10, sceneFormat: 'sensor_fusion' as const, project: 'p', ...overrides };
};
const submitted = (taskId: string) => ({ taskId, attachmentExpiresAt: '2026-12-01T00:00:00.000Z', attachmentPinned: true, adopted: false });
const T = (s: number) => new Date(Date.UTC(2026, 10, 30, 0, 0, s)).toISOString();

describe('DynamoTaskStore: one claim ends a submission, a created task is never hidden', () => {
  it('lets only the current claim reject, and lets a worker holding a task record it over that rejection', async () => {
    const u = upload();
    expect(await env.store.startSubmission(u, 'claim-A', T(0))).toBe('started');
    // A duplicate delivery takes the claim over while A is still creating the task at Scale; it is told so.
    expect(await env.store.startSubmission(u, 'claim-B', T(1))).toBe('resumed');
    // A lost its claim: its rejection changes nothing.
    await env.store.recordRejection(u.uniqueId, 'claim-A', 'stale', T(2));
    expect(await env.reader.get(u.uniqueId)).toMatchObject({ status: 'submitting', claimId: 'claim-B' });
    // B finds the object gone and rejects...
    await env.store.recordRejection(u.uniqueId, 'claim-B', 'the object was deleted before it was processed', T(3));
    expect(await env.reader.get(u.uniqueId)).toMatchObject({ status: 'rejected' });
    // ...but A had created the task: its write lands, so the paid task is visible (and a delete can cancel it).
    await env.store.recordSubmitted(u.uniqueId, submitted('task-A'), T(4));
    const record = await env.reader.get(u.uniqueId);
    expect(record).toMatchObject({ status: 'pending', taskId: 'task-A' });
    expect(record?.reason).toBeUndefined();
    expect(record?.claimId).toBeUndefined();
  });

  it('refuses every late rejection, failure or resubmission once a task is recorded', async () => {
    const u = upload();
    expect(await env.store.startSubmission(u, 'claim-A', T(0))).toBe('started');
    expect(await env.store.recordSubmitted(u.uniqueId, submitted('task-1'), T(1))).toBe('recorded');
    expect(await env.store.startSubmission(u, 'claim-C', T(2))).toEqual({ alreadyAt: 'pending' });
    await env.store.recordRejection(u.uniqueId, 'claim-A', 'late', T(3));
    await env.store.recordCreateFailure(u.uniqueId, 'claim-A', { message: 'late' }, T(3));
    await env.store.recordFailedAttempt(u, { attempt: 5, error: 'late', terminal: true }, T(3));
    // A second task id (another worker's adoption) does not replace the first.
    expect(await env.store.recordSubmitted(u.uniqueId, submitted('task-2'), T(4))).toBe('already_has_task');
    const record = await env.reader.get(u.uniqueId);
    expect(record).toMatchObject({ status: 'pending', taskId: 'task-1' });
    expect(record?.lastError).toBeUndefined();
    expect(record?.scaleError).toBeUndefined();
  });

  it('counts failed attempts with the newest error, marks the terminal one failed, and resumes on the next delivery', async () => {
    const u = upload();
    await env.store.recordFailedAttempt(u, { attempt: 1, error: 'Scale unavailable', terminal: false }, T(0));
    expect(await env.reader.get(u.uniqueId)).toMatchObject({ status: 'submitting', attempts: 1, lastError: 'Scale unavailable', key: u.key, versionId: u.versionId });
    expect(await env.store.startSubmission(u, 'claim-2', T(1))).toBe('resumed');
    await env.store.recordFailedAttempt(u, { attempt: 2, error: '401 bad key', terminal: true }, T(2));
    expect(await env.reader.get(u.uniqueId)).toMatchObject({ status: 'failed', attempts: 2, lastError: '401 bad key' });
    // A redrive: the upload is claimed again and completes; the history of failures stays.
    expect(await env.store.startSubmission(u, 'claim-3', T(3))).toBe('resumed');
    expect(await env.store.recordSubmitted(u.uniqueId, submitted('task-3'), T(4))).toBe('recorded');
    expect(await env.reader.get(u.uniqueId)).toMatchObject({ status: 'pending', taskId: 'task-3', attempts: 2 });
  });

  it('counts a delivery that claimed the upload and never reached an outcome (a timed-out or crashed function)', async () => {
    const u = upload();
    expect(await env.store.startSubmission(u, 'killed-delivery', T(0))).toBe('started');
    expect(await env.store.startSubmission(u, 'next-delivery', T(60))).toBe('resumed');
    expect(await env.reader.get(u.uniqueId)).toMatchObject({
      status: 'submitting',
      claimId: 'next-delivery',
      attempts: 1,
      lastError: expect.stringContaining('an earlier delivery ended without an outcome: the function timed out or crashed'),
    });
  });

  it('lets an upload that Scale refused be submitted again', async () => {
    const u = upload();
    expect(await env.store.startSubmission(u, 'claim-1', T(0))).toBe('started');
    await env.store.recordCreateFailure(u.uniqueId, 'claim-1', { status: 400, message: 'Project "x" was not found.' }, T(1));
    expect(await env.reader.get(u.uniqueId)).toMatchObject({ status: 'create_failed', scaleError: { status: 400 } });
    expect(await env.store.startSubmission(u, 'claim-2', T(2))).toBe('resumed');
    const record = await env.reader.get(u.uniqueId);
    expect(record).toMatchObject({ status: 'submitting', createdAt: T(0) });
    expect(record?.scaleError).toBeUndefined();
  });

  it('finds every upload of one key in one bucket, newest first', async () => {
    const key = 'store/shared key.sfs';
    for (const [uniqueId, bucket, at] of [['sfs-k1', 'scenes', 10], ['sfs-k2', 'scenes', 11], ['sfs-k3', 'other', 12]] as const) {
      expect(await env.store.startSubmission(upload({ key, uniqueId, bucket }), 'c', T(at))).toBe('started');
    }
    expect((await env.store.findByKey('scenes', key)).map((r) => r.uniqueId)).toEqual(['sfs-k2', 'sfs-k1']);
    expect(await env.store.findByKey('scenes', 'store/nothing.sfs')).toEqual([]);
  });

  it('moves an upload whose task errored back to submitting for a new task, and ignores the old task’s late callbacks', async () => {
    const u = upload();
    expect(await env.store.startSubmission(u, 'c', T(0))).toBe('started');
    expect(await env.store.recordSubmitted(u.uniqueId, submitted('task-old'), T(1))).toBe('recorded');
    const errorOf = (taskId: string, at: number, status: 'error' | 'completed') => ({
      uniqueId: u.uniqueId, taskId, status, scaleUpdatedAt: T(at), order: `${T(at)}#2#000000#${T(at)}#k${at}`, digest: `d${at}`,
      responseJson: '{"error":"One or more attachments could not be downloaded."}', archive: { bucket: 'results', key: `k${at}` }, source: { bucket: 'scenes', key: u.key, sceneFormat: 'sensor_fusion' as const },
    });
    expect(await env.store.applyCallback(errorOf('task-old', 2, 'error'), T(2))).toBe('applied');
    expect(await env.store.prepareResubmission(u.uniqueId, 'another-task', T(3))).toBe(false);
    expect(await env.store.prepareResubmission(u.uniqueId, 'task-old', T(3))).toBe(true);
    const reset = await env.reader.get(u.uniqueId);
    expect(reset).toMatchObject({ status: 'submitting', previousTaskIds: ['task-old'], resubmissions: 1 });
    expect(reset?.taskId).toBeUndefined();
    expect(reset?.responseJson).toBeUndefined();
    // A late (even newer) callback of the old task changes nothing; the new task's apply.
    expect(await env.store.applyCallback(errorOf('task-old', 9, 'error'), T(9))).toBe('stale');
    expect(await env.store.startSubmission(u, 'c2', T(10))).toBe('started');
    expect(await env.store.recordSubmitted(u.uniqueId, submitted('task-new'), T(11))).toBe('recorded');
    expect(await env.store.applyCallback({ ...errorOf('task-new', 12, 'completed'), order: `${T(12)}#1#000000#${T(12)}#k12` }, T(12))).toBe('applied');
    expect(await env.reader.get(u.uniqueId)).toMatchObject({ status: 'completed', taskId: 'task-new', previousTaskIds: ['task-old'] });
  });

  it('records a cancel in the order of Scale’s own times', async () => {
    const u = upload();
    expect(await env.store.startSubmission(u, 'c', T(0))).toBe('started');
    expect(await env.store.recordSubmitted(u.uniqueId, submitted('task-c'), T(1))).toBe('recorded');
    const order = (t: string) => `${t}#4#${T(5)}#cancel`;
    expect(await env.store.recordCanceled(u.uniqueId, { taskId: 'other-task', scaleUpdatedAt: T(5), order: order(T(5)), reason: 'deleted' }, T(5))).toBe('stale');
    expect(await env.store.recordCanceled(u.uniqueId, { taskId: 'task-c', scaleUpdatedAt: T(5), order: order(T(5)), reason: 'deleted' }, T(5))).toBe('applied');
    expect(await env.reader.get(u.uniqueId)).toMatchObject({ status: 'canceled', scaleStatus: 'canceled', scaleUpdatedAt: T(5), reason: 'deleted' });
    expect(await env.store.recordCanceled(u.uniqueId, { taskId: 'task-c', scaleUpdatedAt: T(4), order: order(T(4)), reason: 'older' }, T(6))).toBe('stale');
    await env.store.recordCancelRefused(u.uniqueId, { status: 400, message: 'already completed' }, T(7));
    expect(await env.reader.get(u.uniqueId)).toMatchObject({ status: 'canceled', reason: 'deleted', cancelError: { status: 400, message: 'already completed' } });
  });
});
