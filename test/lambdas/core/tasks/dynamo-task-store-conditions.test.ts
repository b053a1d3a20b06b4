import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient, DynamoTaskStore, UNFINISHED_DELIVERY } from '../../../../lambdas/core/tasks/dynamo-task-store.js';
import { createTasksTable, startDynamo } from '../../../../local/emulators/dynamodb.js';

// Every conditional write of the store, against dynalite: a write that must be refused is refused, and what a
// write stores is checked attribute by attribute (the raw item, internal fields included).
let dynamo: Awaited<ReturnType<typeof startDynamo>>;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let store: DynamoTaskStore;
beforeAll(async () => {
  dynamo = await startDynamo();
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  await createTasksTable(client, 'tasks');
  doc = documentClient(client);
  store = new DynamoTaskStore(doc, 'tasks');
});
afterAll(async () => {
  client.destroy();
  await dynamo.close();
});

const T = (s: number) => new Date(Date.UTC(2026, 10, 30, 2, 0, s)).toISOString();
let n = 0;
/** A submission with optional fields left undefined, as create-task passes them: they are never written. */
const upload = () => {
  n++;
  return { uniqueId: `sfs-cond-${n}`, bucket: 'scenes', key: `cond/${n}.sfs`, versionId: `v${n}`, eTag: undefined, sequencer: '00A1', size: 5, sceneFormat: 'sensor_fusion' as const, project: 'p', batch: undefined };
};
const raw = async (uniqueId: string) => (await doc.send(new GetCommand({ TableName: 'tasks', Key: { uniqueId } }))).Item;
const seed = (item: Record<string, unknown>) => doc.send(new PutCommand({ TableName: 'tasks', Item: { schemaVersion: 1, bucket: 'scenes', key: 'seeded.sfs', sceneFormat: 'sensor_fusion', createdAt: T(0), updatedAt: T(0), ...item } }));
const submitted = (taskId: string) => ({ taskId, attachmentExpiresAt: undefined, attachmentPinned: false, adopted: true, frameCount: 3 });
const callback = (uniqueId: string, taskId: string, at: number, extra: Record<string, unknown> = {}) => ({
  uniqueId, taskId, status: 'completed' as const, scaleUpdatedAt: T(at), order: `${T(at)}#1#000000#${T(at)}#k${at}`, digest: `d${at}`,
  archive: { bucket: 'results', key: `cb/${at}.json` }, source: { bucket: 'scenes', key: `cond/rebuilt-${at}.sfs`, sceneFormat: 'sensor_fusion' as const, project: 'p2', versionId: undefined }, ...extra,
});

describe('startSubmission: the claim', () => {
  it('stores exactly the claim and the submission, and nothing undefined', async () => {
    const u = upload();
    expect(await store.startSubmission(u, 'claim-1', T(1))).toBe('started');
    expect(await raw(u.uniqueId)).toEqual({ uniqueId: u.uniqueId, status: 'submitting', claimId: 'claim-1', updatedAt: T(1), createdAt: T(1), schemaVersion: 1, bucket: 'scenes', key: u.key, versionId: u.versionId, sequencer: '00A1', size: 5, sceneFormat: 'sensor_fusion', project: 'p' });
  });

  it('takes submitting, create_failed and failed records without a task, clearing a stale reason and error', async () => {
    // Scale refused an earlier attempt ('resumed'); the others carry no claim nor count ('started').
    for (const [status, outcome] of [['submitting', 'started'], ['create_failed', 'resumed'], ['failed', 'started']] as const) {
      const id = `sfs-cond-takes-${status}`;
      await seed({ uniqueId: id, status, reason: 'old reason', scaleError: { message: 'old' } });
      expect([status, await store.startSubmission({ ...upload(), uniqueId: id }, 'claim-new', T(2))]).toEqual([status, outcome]);
      const item = (await raw(id))!;
      expect(item).toMatchObject({ status: 'submitting', claimId: 'claim-new', createdAt: T(0), updatedAt: T(2) });
      expect([item.reason, item.scaleError, item.attempts]).toEqual([undefined, undefined, undefined]);
    }
  });

  it('refuses a record that names a task in any status, and any other status without one', async () => {
    for (const [status, taskId] of [['failed', 't'], ['submitting', 't'], ['canceled', undefined], ['rejected', undefined], ['pending', 't']] as const) {
      const id = `sfs-cond-refuses-${status}-${taskId ?? 'none'}`;
      await seed({ uniqueId: id, status, ...(taskId ? { taskId } : {}) });
      expect(await store.startSubmission({ ...upload(), uniqueId: id }, 'claim-late', T(3))).toEqual({ alreadyAt: status });
      expect(await raw(id)).toMatchObject({ status, updatedAt: T(0) });
      expect((await raw(id))!.claimId).toBeUndefined();
    }
  });

  it('notes an earlier open claim as an unfinished delivery, with its exact words, and only a submitting one', async () => {
    const u = upload();
    await store.startSubmission(u, 'claim-1', T(1));
    expect(await store.startSubmission(u, 'claim-2', T(9))).toBe('resumed');
    expect(await raw(u.uniqueId)).toMatchObject({ claimId: 'claim-2', attempts: 1, lastError: UNFINISHED_DELIVERY, updatedAt: T(9) });
    expect(UNFINISHED_DELIVERY).toBe('an earlier delivery ended without an outcome: the function timed out or crashed (or it is still running, if S3 or SQS delivered the event twice)');
    // A terminal failure while a claim was held: the failure is counted already, not noted again.
    const f = upload();
    await store.startSubmission(f, 'claim-1', T(1));
    await store.recordFailedAttempt(f, { attempt: 5, error: 'gave up', terminal: true }, T(2));
    expect(await raw(f.uniqueId)).toMatchObject({ status: 'failed', claimId: 'claim-1', attempts: 1 });
    expect(await store.startSubmission(f, 'claim-2', T(3))).toBe('resumed');
    expect(await raw(f.uniqueId)).toMatchObject({ status: 'submitting', claimId: 'claim-2', attempts: 1, lastError: 'gave up' });
  });
});

describe('endClaim (recordRejection, recordCreateFailure): only the current claim, never over a task', () => {
  it('stores the outcome with its literal values and releases the claim', async () => {
    const [r, c] = [upload(), upload()];
    await store.startSubmission(r, 'claim-r', T(1));
    await store.recordRejection(r.uniqueId, 'claim-r', 'the object is empty (0 bytes)', T(2));
    expect(await raw(r.uniqueId)).toMatchObject({ status: 'rejected', reason: 'the object is empty (0 bytes)', updatedAt: T(2) });
    expect((await raw(r.uniqueId))!.claimId).toBeUndefined();
    await store.startSubmission(c, 'claim-c', T(1));
    await store.recordCreateFailure(c.uniqueId, 'claim-c', { status: 404, message: 'Project "p" was not found.' }, T(2));
    expect(await raw(c.uniqueId)).toMatchObject({ status: 'create_failed', scaleError: { status: 404, message: 'Project "p" was not found.' }, updatedAt: T(2) });
    expect((await raw(c.uniqueId))!.claimId).toBeUndefined();
  });

  it('refuses the current claim once a callback recorded the task it created', async () => {
    const u = upload();
    await store.startSubmission(u, 'claim-1', T(1));
    // The task's callback arrived before create-task recorded its answer: the record names the task, the claim is open.
    expect(await store.applyCallback(callback(u.uniqueId, 'task-1', 2), T(2))).toBe('applied');
    await store.recordRejection(u.uniqueId, 'claim-1', 'too late', T(3));
    await store.recordCreateFailure(u.uniqueId, 'claim-1', { message: 'too late' }, T(3));
    const item = (await raw(u.uniqueId))!;
    expect(item).toMatchObject({ status: 'completed', taskId: 'task-1', claimId: 'claim-1', updatedAt: T(2) });
    expect([item.reason, item.scaleError]).toEqual([undefined, undefined]);
    expect(await store.recordSubmitted(u.uniqueId, submitted('task-1'), T(4))).toBe('already_has_task');
  });
});

describe('recordSubmitted: a created task is always recorded, once', () => {
  it('stores the task and clears what the claim left, skipping undefined details', async () => {
    const u = upload();
    await seed({ uniqueId: u.uniqueId, status: 'submitting', claimId: 'c', scaleError: { message: 'x' } });
    expect(await store.recordSubmitted(u.uniqueId, submitted('task-9'), T(5))).toBe('recorded');
    expect(await raw(u.uniqueId)).toEqual({
      uniqueId: u.uniqueId, schemaVersion: 1, bucket: 'scenes', key: 'seeded.sfs', sceneFormat: 'sensor_fusion', createdAt: T(0),
      status: 'pending', submittedAt: T(5), updatedAt: T(5), taskId: 'task-9', attachmentPinned: false, adopted: true, frameCount: 3,
    });
  });

  it('says which rejection it recorded over (its reason, or "rejected" when it gave none)', async () => {
    const [a, b] = [upload(), upload()];
    await seed({ uniqueId: a.uniqueId, status: 'rejected', reason: 'frames missing: 0.json' });
    await seed({ uniqueId: b.uniqueId, status: 'rejected' });
    expect(await store.recordSubmitted(a.uniqueId, submitted('task-a'), T(5))).toEqual({ overRejection: 'frames missing: 0.json' });
    expect(await store.recordSubmitted(b.uniqueId, submitted('task-b'), T(5))).toEqual({ overRejection: 'rejected' });
    expect((await raw(a.uniqueId))!.reason).toBeUndefined();
    // Owed until Scale cancelled (or refused): the next delivery is told, and does it.
    expect(await raw(a.uniqueId)).toMatchObject({ status: 'pending', taskId: 'task-a', cancelOwed: 'frames missing: 0.json' });
    expect(await store.startSubmission(a, 'c2', T(6))).toEqual({ alreadyAt: 'pending', owedCancel: { taskId: 'task-a', reason: 'frames missing: 0.json' } });
    await store.recordCanceled(a.uniqueId, { taskId: 'task-a', scaleUpdatedAt: T(7), order: 'o', reason: 'canceled' }, T(7));
    expect((await raw(a.uniqueId))!.cancelOwed).toBeUndefined();
    expect(await store.startSubmission(a, 'c3', T(8))).toEqual({ alreadyAt: 'canceled' });
    await store.recordCancelRefused(b.uniqueId, { status: 400, message: 'already completed' }, T(7));
    expect(await raw(b.uniqueId)).toMatchObject({ cancelError: { status: 400, message: 'already completed' } });
    expect((await raw(b.uniqueId))!.cancelOwed).toBeUndefined();
  });

  it('owes no cancel for a task recorded over anything but a rejection', async () => {
    const u = upload();
    await seed({ uniqueId: u.uniqueId, status: 'submitting', claimId: 'c' });
    expect(await store.recordSubmitted(u.uniqueId, submitted('task-u'), T(5))).toBe('recorded');
    expect(await store.startSubmission(u, 'c2', T(6))).toEqual({ alreadyAt: 'pending' });
  });

  it('never creates a record of its own: an upload with no record is not one it may name', async () => {
    expect(await store.recordSubmitted('sfs-cond-nowhere', submitted('task-x'), T(5))).toBe('already_has_task');
    expect(await raw('sfs-cond-nowhere')).toBeUndefined();
  });
});

describe('recordFailedAttempt: counted only while the upload is unfinished', () => {
  it('counts on a failed record again, keeps failed on a non-terminal one, and never counts over an outcome', async () => {
    const u = upload();
    await store.recordFailedAttempt(u, { attempt: 5, error: 'first', terminal: true }, T(1));
    await store.recordFailedAttempt(u, { attempt: 6, error: 'second', terminal: false }, T(2));
    expect(await raw(u.uniqueId)).toMatchObject({ status: 'failed', attempts: 2, lastError: 'second', updatedAt: T(2), createdAt: T(1), key: u.key, size: 5 });
    for (const status of ['create_failed', 'rejected'] as const) {
      const id = `sfs-cond-outcome-${status}`;
      await seed({ uniqueId: id, status });
      await store.recordFailedAttempt({ ...upload(), uniqueId: id }, { attempt: 1, error: 'late', terminal: true }, T(3));
      expect(await raw(id)).toEqual(expect.objectContaining({ status, updatedAt: T(0) }));
      expect((await raw(id))!.attempts).toBeUndefined();
    }
  });

  it('releases only its own claim', async () => {
    const [mine, theirs] = [upload(), upload()];
    await store.startSubmission(mine, 'claim-1', T(1));
    await store.recordFailedAttempt(mine, { attempt: 1, error: 'Scale 503', terminal: false, claimId: 'claim-1' }, T(2));
    expect(await raw(mine.uniqueId)).toMatchObject({ status: 'submitting', attempts: 1, lastError: 'Scale 503' });
    expect((await raw(mine.uniqueId))!.claimId).toBeUndefined();
    // Released: the next delivery is not told of an unfinished one.
    expect(await store.startSubmission(mine, 'claim-2', T(3))).toBe('resumed');
    expect(await raw(mine.uniqueId)).toMatchObject({ attempts: 1, lastError: 'Scale 503' });
    await store.startSubmission(theirs, 'claim-B', T(1));
    await store.recordFailedAttempt(theirs, { attempt: 1, error: 'stale', terminal: false, claimId: 'claim-A' }, T(2));
    expect(await raw(theirs.uniqueId)).toMatchObject({ claimId: 'claim-B', attempts: 1 });
  });
});

describe('findByKey: this bucket\'s uploads of the key, newest first, at most `limit`', () => {
  it('reads past another bucket\'s uploads to fill the limit, and stops at it', async () => {
    const key = 'cond/shared.sfs';
    for (const [id, bucket, at] of [['sfs-fk-1', 'scenes', 1], ['sfs-fk-2', 'scenes', 2], ['sfs-fk-3', 'scenes', 3], ['sfs-fk-4', 'other', 4], ['sfs-fk-5', 'other', 5]] as const) {
      await seed({ uniqueId: id, status: 'pending', bucket, key, createdAt: T(at) });
    }
    expect((await store.findByKey('scenes', key, 1)).map((r) => r.uniqueId)).toEqual(['sfs-fk-3']);
    expect((await store.findByKey('scenes', key, 2)).map((r) => r.uniqueId)).toEqual(['sfs-fk-3', 'sfs-fk-2']);
    expect((await store.findByKey('scenes', key)).map((r) => r.uniqueId)).toEqual(['sfs-fk-3', 'sfs-fk-2', 'sfs-fk-1']);
    expect((await store.findByKey('other', key)).map((r) => r.uniqueId)).toEqual(['sfs-fk-5', 'sfs-fk-4']);
  });

  it('never gives more than the limit when a later page holds more matches than were missing', async () => {
    const key = 'cond/interleaved.sfs';
    for (const [id, bucket, at] of [['sfs-il-1', 'scenes', 1], ['sfs-il-2', 'scenes', 2], ['sfs-il-3', 'other', 3], ['sfs-il-4', 'scenes', 4]] as const) {
      await seed({ uniqueId: id, status: 'pending', bucket, key, createdAt: T(at) });
    }
    // The first page (two items) holds one match; the second holds two.
    expect((await store.findByKey('scenes', key, 2)).map((r) => r.uniqueId)).toEqual(['sfs-il-4', 'sfs-il-2']);
  });
});
