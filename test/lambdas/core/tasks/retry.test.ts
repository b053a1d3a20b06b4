import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changesInMessage } from '../../../../lambdas/core/scenes/s3-event.js';
import { expectedUniqueId } from '../../../helpers/identity.js';
import { documentClient, DynamoTaskStore } from '../../../../lambdas/core/tasks/dynamo-task-store.js';
import { checkRetry, RETRYABLE_STATUSES, retryUpload, type RetryPolicy } from '../../../../lambdas/core/tasks/retry.js';
import type { TaskRecord } from '../../../../lambdas/core/tasks/task-record.js';
import { TaskReader } from '../../../../lambdas/core/tasks/task-reader.js';
import { createTasksTable, startDynamo } from '../../../../local/emulators/dynamodb.js';

let dynamo: Awaited<ReturnType<typeof startDynamo>>;
let client: DynamoDBClient;
let store: DynamoTaskStore;
let reader: TaskReader;
beforeAll(async () => {
  dynamo = await startDynamo();
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  await createTasksTable(client, 'tasks');
  store = new DynamoTaskStore(documentClient(client), 'tasks');
  reader = new TaskReader(documentClient(client), 'tasks');
});
afterAll(async () => {
  client.destroy();
  await dynamo.close();
});

const T = (s: number) => new Date(Date.UTC(2026, 10, 30, 1, 0, s)).toISOString();
const ALL: RetryPolicy = { statuses: RETRYABLE_STATUSES, clearUniqueIdOnError: true };
let n = 0;
/** A real upload's identity: the uniqueId is the digest of bucket, key and version, as create-task computes it. */
function upload() {
  n++;
  const identity = { bucket: 'scenes', key: `retry/scène ${n}+x.sfs`, versionId: `ver-${n}`, eTag: `etag${n}`, sequencer: `0A${n}` };
  return { ...identity, uniqueId: expectedUniqueId(identity), size: 100 + n, sceneFormat: 'sensor_fusion' as const, project: 'p' };
}
const submitted = (taskId: string) => ({ taskId, attachmentPinned: true, adopted: false });
const read = async (uniqueId: string) => (await reader.get(uniqueId))!;

/** An upload brought to `status` the way the pipeline gets it there. */
async function recordIn(status: 'rejected' | 'create_failed' | 'failed' | 'error' | 'completed' | 'pending') {
  const u = upload();
  await store.startSubmission(u, 'claim-1', T(0));
  if (status === 'rejected') await store.recordRejection(u.uniqueId, 'claim-1', 'frames missing: 0.json', T(1));
  if (status === 'create_failed') await store.recordCreateFailure(u.uniqueId, 'claim-1', { status: 400, message: 'Project "p" was not found.' }, T(1));
  if (status === 'failed') await store.recordFailedAttempt(u, { attempt: 5, error: '401 key refused', terminal: true, claimId: 'claim-1' }, T(1));
  if (status === 'error' || status === 'completed' || status === 'pending') {
    await store.recordSubmitted(u.uniqueId, submitted('task-old'), T(1));
    if (status !== 'pending') {
      await store.applyCallback(
        { uniqueId: u.uniqueId, taskId: 'task-old', status, scaleUpdatedAt: T(2), order: `${T(2)}#x`, digest: 'd2', archive: { bucket: 'results', key: 'k2' }, source: { bucket: u.bucket, key: u.key, sceneFormat: 'sensor_fusion' } },
        T(2),
      );
    }
  }
  const record = await read(u.uniqueId);
  expect(record.status).toBe(status);
  return { u, record };
}

/** A sender that keeps what it was given, as the ingest queue would. */
function queue(fail?: Error) {
  const sent: string[] = [];
  return { sent, send: async (body: string) => (fail ? Promise.reject(fail) : void sent.push(body)) };
}

describe('checkRetry: which uploads a retry takes', () => {
  it('skips every status that is not retried, saying why', async () => {
    for (const status of ['pending', 'completed'] as const) {
      const { record } = await recordIn(status);
      const check = checkRetry(record, ALL);
      expect(check.retryable).toBe(false);
      expect(!check.retryable && check.reason).toMatch(new RegExp(`^it is ${status}: `));
    }
    const { record } = await recordIn('create_failed');
    expect(checkRetry({ ...record, status: 'canceled' }, ALL)).toMatchObject({ retryable: false, reason: expect.stringContaining('upload the object again') });
    expect(checkRetry({ ...record, status: 'submitting' }, ALL)).toMatchObject({ retryable: false, reason: expect.stringContaining('reconciler') });
  });

  it('takes only the statuses asked for', async () => {
    const { record } = await recordIn('rejected');
    expect(checkRetry(record, ALL)).toEqual({ retryable: true, from: 'rejected' });
    expect(checkRetry(record, { ...ALL, statuses: ['create_failed', 'failed'] })).toEqual({ retryable: false, reason: 'it is rejected, and this retry takes only create_failed, failed (--status)' });
  });

  it('refuses an error retry when Scale keeps the unique_id (clearUniqueIdOnError off), and explains it', async () => {
    const { record } = await recordIn('error');
    expect(checkRetry(record, ALL)).toEqual({ retryable: true, from: 'error' });
    const off = checkRetry(record, { ...ALL, clearUniqueIdOnError: false });
    expect(off.retryable).toBe(false);
    expect(!off.retryable && off.reason).toContain('clearUniqueIdOnError');
    expect(!off.retryable && off.reason).toContain('task-old');
  });

  it('never retries a non-error record that names a task, nor one whose notification would name another upload', async () => {
    const { record } = await recordIn('create_failed');
    expect(checkRetry({ ...record, taskId: 'task-x' }, ALL)).toMatchObject({ retryable: false, reason: expect.stringContaining('task-x') });
    // A versionId that is not the one the uniqueId was made from: the rebuilt event would be another upload.
    expect(checkRetry({ ...record, versionId: 'some-other-version' }, ALL)).toMatchObject({ retryable: false, reason: expect.stringContaining('does not identify') });
  });

  it('retries an upload of an unversioned bucket, identified by sequencer and ETag, as that same upload', async () => {
    const identity = { bucket: 'scenes', key: 'unversioned/a b.sfs', versionId: 'null', eTag: 'e0f1', sequencer: '00AB12' };
    const record: TaskRecord = { schemaVersion: 1, uniqueId: expectedUniqueId(identity), status: 'create_failed', ...identity, sceneFormat: 'sensor_fusion', createdAt: T(0), updatedAt: T(1) };
    expect(checkRetry(record, ALL)).toEqual({ retryable: true, from: 'create_failed' });
    const q = queue();
    const prepared: unknown[] = [];
    await retryUpload(record, ALL, { store: { prepareRetry: async (...args) => (prepared.push(args), true) }, send: q.send, now: () => new Date(T(2)) });
    expect(prepared).toEqual([[record.uniqueId, { status: 'create_failed', taskId: undefined }, T(2)]]);
    const [change] = changesInMessage(q.sent[0]!);
    expect(change?.kind === 'created' && expectedUniqueId(change.upload)).toBe(record.uniqueId);
  });
});

describe('retryUpload against DynamoDB: the same path as an upload, never over a task', () => {
  it('sends a create_failed upload the notification of the very same upload, and create-task resumes it', async () => {
    const { u, record } = await recordIn('create_failed');
    const q = queue();
    expect(await retryUpload(record, ALL, { store, send: q.send, now: () => new Date(T(10)) })).toEqual({ kind: 'retried', uniqueId: u.uniqueId, from: 'create_failed' });
    expect(q.sent).toHaveLength(1);
    // Read back as create-task reads it: the key decoded, the same version, so the same uniqueId.
    const [change] = changesInMessage(q.sent[0]!);
    expect(change).toEqual({ kind: 'created', upload: { eventName: 'ObjectCreated:Put', bucket: 'scenes', key: u.key, versionId: u.versionId, sequencer: u.sequencer, eTag: u.eTag, size: u.size, eventTime: T(10) } });
    expect(await read(u.uniqueId)).toMatchObject({ status: 'create_failed', scaleError: { status: 400 } });
    expect(await store.startSubmission(u, 'claim-2', T(11))).toBe('resumed');
  });

  it('moves a rejected upload to submitting (create-task refuses rejected ones) and sends it', async () => {
    const { u, record } = await recordIn('rejected');
    const q = queue();
    expect((await retryUpload(record, ALL, { store, send: q.send, now: () => new Date(T(10)) })).kind).toBe('retried');
    const after = await read(u.uniqueId);
    expect(after).toMatchObject({ status: 'submitting', updatedAt: T(10) });
    expect(after.reason).toBeUndefined();
    expect(q.sent).toHaveLength(1);
    expect(await store.startSubmission(u, 'claim-2', T(11))).toBe('started');
  });

  it('resends a failed upload as it is: create-task resumes it (a lost answer may have made the task)', async () => {
    const { u, record } = await recordIn('failed');
    const q = queue();
    expect((await retryUpload(record, ALL, { store, send: q.send })).kind).toBe('retried');
    expect(await read(u.uniqueId)).toMatchObject({ status: 'failed', attempts: 1, lastError: '401 key refused' });
    expect(await store.startSubmission(u, 'claim-2', T(11))).toBe('resumed');
  });

  it('readies an errored upload for a new task and keeps the errored one', async () => {
    const { u, record } = await recordIn('error');
    const q = queue();
    expect((await retryUpload(record, ALL, { store, send: q.send })).kind).toBe('retried');
    const after = await read(u.uniqueId);
    expect(after).toMatchObject({ status: 'submitting', previousTaskIds: ['task-old'], resubmissions: 1 });
    expect(after.taskId).toBeUndefined();
    expect(q.sent).toHaveLength(1);
  });

  it('never clears a task: a record that got one after it was read is left alone and nothing is sent', async () => {
    // Read as rejected; meanwhile a delivery that had created the task records it over the rejection.
    const rejected = await recordIn('rejected');
    await store.recordSubmitted(rejected.u.uniqueId, submitted('task-late'), T(5));
    // Read as create_failed; meanwhile another delivery's task is recorded.
    const refused = await recordIn('create_failed');
    await store.recordSubmitted(refused.u.uniqueId, submitted('task-other'), T(5));
    // Read as error with its old task; meanwhile the reconciler resubmitted it and the new task is recorded.
    const errored = await recordIn('error');
    await store.prepareResubmission(errored.u.uniqueId, 'task-old', T(4));
    await store.recordSubmitted(errored.u.uniqueId, submitted('task-new'), T(5));
    const q = queue();
    for (const [stale, taskId] of [[rejected.record, 'task-late'], [refused.record, 'task-other'], [errored.record, 'task-new']] as Array<[TaskRecord, string]>) {
      const outcome = await retryUpload(stale, ALL, { store, send: q.send, now: () => new Date(T(9)) });
      expect(outcome).toMatchObject({ kind: 'skipped', reason: expect.stringContaining('changed since it was read') });
      expect(await read(stale.uniqueId)).toMatchObject({ status: 'pending', taskId, updatedAt: T(5) });
    }
    expect(q.sent).toEqual([]);
    // And one read as completed is never touched.
    const done = await recordIn('completed');
    expect((await retryUpload(done.record, ALL, { store, send: q.send })).kind).toBe('skipped');
    expect(await read(done.u.uniqueId)).toMatchObject({ status: 'completed', taskId: 'task-old' });
    expect(q.sent).toEqual([]);
  });

  it('sends a rejected upload once when two retries race on the same read', async () => {
    const { record } = await recordIn('rejected');
    const q = queue();
    const outcomes = await Promise.all([retryUpload(record, ALL, { store, send: q.send }), retryUpload(record, ALL, { store, send: q.send })]);
    expect(outcomes.map((o) => o.kind).sort()).toEqual(['retried', 'skipped']);
    expect(q.sent).toHaveLength(1);
  });

  it('changes nothing and sends nothing on a dry run', async () => {
    const { u, record } = await recordIn('rejected');
    const q = queue();
    expect(await retryUpload(record, { ...ALL, dryRun: true }, { store, send: q.send })).toEqual({ kind: 'would_retry', uniqueId: u.uniqueId, from: 'rejected' });
    expect(await read(u.uniqueId)).toEqual(record);
    expect(q.sent).toEqual([]);
  });

  it('reports a send that failed, and where the record was left', async () => {
    const { u, record } = await recordIn('create_failed');
    const outcome = await retryUpload(record, ALL, { store, send: queue(new Error('queue unreachable')).send });
    expect(outcome).toMatchObject({ kind: 'failed', reason: expect.stringContaining('queue unreachable') });
    expect(!('from' in outcome) && outcome.reason).toContain('still create_failed: retry again');
    expect((await read(u.uniqueId)).status).toBe('create_failed');
  });
});
