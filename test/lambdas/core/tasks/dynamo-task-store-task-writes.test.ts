import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient, DynamoTaskStore } from '../../../../lambdas/core/tasks/dynamo-task-store.js';
import { createTasksTable, startDynamo } from '../../../../local/emulators/dynamodb.js';

// The store's writes once a task exists (callbacks, cancels, resubmissions, retries), against dynalite, and how it
// tells a refused write from a failed one.
let dynamo: Awaited<ReturnType<typeof startDynamo>>;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let store: DynamoTaskStore;
/** Errors the next update commands fail with, before they reach the table (throttling, a foreign SDK's errors). */
const failNextUpdates: Error[] = [];
/** Every read the store sent: DynamoDB reads are eventually consistent unless asked otherwise (dynalite never lags). */
const reads: unknown[] = [];
beforeAll(async () => {
  dynamo = await startDynamo();
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  await createTasksTable(client, 'tasks');
  doc = documentClient(client);
  const flaky = {
    send: (command: unknown) => {
      const failure = command instanceof UpdateCommand ? failNextUpdates.shift() : undefined;
      if (command instanceof GetCommand) reads.push(command.input);
      return failure ? Promise.reject(failure) : doc.send(command as GetCommand);
    },
  } as unknown as DynamoDBDocumentClient;
  store = new DynamoTaskStore(flaky, 'tasks');
});
afterAll(async () => {
  client.destroy();
  await dynamo.close();
});

const T = (s: number) => new Date(Date.UTC(2026, 10, 30, 3, 0, s)).toISOString();
let n = 0;
const newId = () => `sfs-tw-${++n}`;
const raw = async (uniqueId: string) => (await doc.send(new GetCommand({ TableName: 'tasks', Key: { uniqueId } }))).Item!;
const seed = (item: Record<string, unknown>) => doc.send(new PutCommand({ TableName: 'tasks', Item: { schemaVersion: 1, bucket: 'scenes', key: 'seeded.sfs', sceneFormat: 'sensor_fusion', createdAt: T(0), updatedAt: T(0), ...item } }));
const order = (at: number, rank = 1) => `${T(at)}#${rank}#000000#${T(at)}#k${at}`;
const callback = (uniqueId: string, taskId: string, at: number, extra: Record<string, unknown> = {}) => ({
  uniqueId, taskId, status: 'completed' as const, scaleUpdatedAt: T(at), order: order(at), digest: `d${at}`, archive: { bucket: 'results', key: `cb/${at}.json` },
  source: { bucket: 'scenes', key: 'rebuilt.sfs', sceneFormat: 'sensor_fusion' as const, project: 'p2', versionId: 'v9', size: undefined }, ...extra,
});
const conditionFailure = () => Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException' });
const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' });

describe('applyCallback: the record Scale\'s callbacks build', () => {
  it('rebuilds a lost record from the task\'s metadata, and keeps an existing record\'s own fields', async () => {
    const id = newId();
    expect(await store.applyCallback(callback(id, 'task-1', 5, { completedAt: T(5), responseJson: '{"a":1}', resultFiles: [{ sourceUrl: 'u' }] }), T(6))).toBe('applied');
    expect(await raw(id)).toEqual({
      uniqueId: id, schemaVersion: 1, createdAt: T(6), bucket: 'scenes', key: 'rebuilt.sfs', sceneFormat: 'sensor_fusion', project: 'p2', versionId: 'v9',
      status: 'completed', scaleStatus: 'completed', taskId: 'task-1', scaleUpdatedAt: T(5), updatedAt: T(6), lastCallbackAt: T(6), lastCallbackArchive: { bucket: 'results', key: 'cb/5.json' },
      completedAt: T(5), responseJson: '{"a":1}', resultFiles: [{ sourceUrl: 'u' }], callbackOrder: order(5), callbackDigest: 'd5', callbackCount: 1,
    });
    // A recall to pending: what the completion set and the recall lacks is removed; the record's origin stays.
    expect(await store.applyCallback({ ...callback(id, 'task-1', 7), status: 'pending', order: order(7, 3), responseRef: { bucket: 'results', key: 'cb/7.json' } }, T(8))).toBe('applied');
    const recalled = await raw(id);
    expect(recalled).toMatchObject({ status: 'pending', createdAt: T(6), project: 'p2', responseRef: { bucket: 'results', key: 'cb/7.json' }, callbackCount: 2, resultFiles: [{ sourceUrl: 'u' }] });
    expect([recalled.completedAt, recalled.responseJson]).toEqual([undefined, undefined]);
  });

  it('counts a stale or duplicate callback and changes nothing else', async () => {
    const id = newId();
    await store.applyCallback(callback(id, 'task-1', 5), T(6));
    const before = await raw(id);
    expect(await store.applyCallback(callback(id, 'task-1', 5), T(7))).toBe('stale');
    expect(await store.applyCallback(callback(id, 'task-1', 4, { digest: 'other' }), T(8))).toBe('stale');
    expect(await store.applyCallback(callback(id, 'task-other', 9), T(9))).toBe('stale');
    expect(await raw(id)).toEqual({ ...before, lastCallbackAt: T(9), callbackCount: 4 });
  });
});

describe('recordCanceled and recordCancelRefused', () => {
  it('stores the cancel with its order and clears an earlier refusal', async () => {
    const id = newId();
    await seed({ uniqueId: id, status: 'pending', taskId: 'task-c', cancelError: { message: 'busy' } });
    expect(await store.recordCanceled(id, { taskId: 'task-c', scaleUpdatedAt: T(3), order: order(3, 4), reason: 'the object was deleted' }, T(4))).toBe('applied');
    expect(await raw(id)).toEqual(expect.objectContaining({ status: 'canceled', scaleStatus: 'canceled', scaleUpdatedAt: T(3), callbackOrder: order(3, 4), reason: 'the object was deleted', updatedAt: T(4) }));
    expect((await raw(id)).cancelError).toBeUndefined();
  });

  it('keeps a refusal on an existing record only, never making one', async () => {
    const id = newId();
    await seed({ uniqueId: id, status: 'completed', taskId: 't' });
    await store.recordCancelRefused(id, { status: 400, message: 'already completed' }, T(5));
    expect(await raw(id)).toMatchObject({ status: 'completed', cancelError: { status: 400, message: 'already completed' }, updatedAt: T(5) });
    await store.recordCancelRefused('sfs-tw-none', { message: 'x' }, T(5));
    expect((await doc.send(new GetCommand({ TableName: 'tasks', Key: { uniqueId: 'sfs-tw-none' } }))).Item).toBeUndefined();
  });
});

describe('prepareResubmission and prepareRetry: only from where the caller saw the record', () => {
  it('clears every field of the errored task and appends it to previousTaskIds, each time', async () => {
    const id = newId();
    await seed({
      uniqueId: id, status: 'error', taskId: 'task-1', scaleStatus: 'error', scaleUpdatedAt: T(1), callbackOrder: 'o', callbackDigest: 'd', completedAt: T(1), responseJson: '{}',
      responseRef: { bucket: 'b', key: 'k' }, submittedAt: T(1), claimId: 'c', callbackCount: 1,
    });
    expect(await store.prepareResubmission(id, 'task-1', T(2))).toBe(true);
    expect(await raw(id)).toEqual({ uniqueId: id, schemaVersion: 1, bucket: 'scenes', key: 'seeded.sfs', sceneFormat: 'sensor_fusion', createdAt: T(0), status: 'submitting', updatedAt: T(2), reopenedAt: T(2), previousTaskIds: ['task-1'], resubmissions: 1, callbackCount: 1 });
    await doc.send(new UpdateCommand({ TableName: 'tasks', Key: { uniqueId: id }, UpdateExpression: 'SET #s = :e, taskId = :t', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':e': 'error', ':t': 'task-2' } }));
    expect(await store.prepareResubmission(id, 'task-2', T(3))).toBe(true);
    expect(await raw(id)).toMatchObject({ previousTaskIds: ['task-1', 'task-2'], resubmissions: 2, updatedAt: T(3) });
  });

  it('refuses a record no longer in error at that task', async () => {
    const id = newId();
    await seed({ uniqueId: id, status: 'completed', taskId: 'task-1' });
    expect(await store.prepareResubmission(id, 'task-1', T(2))).toBe(false);
    expect(await store.prepareRetry(id, { status: 'error', taskId: 'task-1' }, T(2))).toBe(false);
    expect(await raw(id)).toMatchObject({ status: 'completed', taskId: 'task-1', updatedAt: T(0) });
    // An error retry that names no task has nothing to resubmit from.
    const errored = newId();
    await seed({ uniqueId: errored, status: 'error', taskId: 'task-e' });
    expect(await store.prepareRetry(errored, { status: 'error' }, T(2))).toBe(false);
    expect(await raw(errored)).toMatchObject({ status: 'error', taskId: 'task-e', updatedAt: T(0) });
    expect(await store.prepareRetry(errored, { status: 'error', taskId: 'task-e' }, T(3))).toBe(true);
    expect(await raw(errored)).toMatchObject({ status: 'submitting', previousTaskIds: ['task-e'], updatedAt: T(3) });
  });

  it('touches create_failed and failed records only to date them, and refuses a status it was not told', async () => {
    for (const status of ['create_failed', 'failed'] as const) {
      const id = newId();
      await seed({ uniqueId: id, status, reason: 'kept', scaleError: { message: 'kept' } });
      expect(await store.prepareRetry(id, { status: status === 'failed' ? 'create_failed' : 'failed' }, T(1))).toBe(false);
      expect(await store.prepareRetry(id, { status: 'rejected' }, T(1))).toBe(false);
      expect(await raw(id)).toMatchObject({ status, updatedAt: T(0) });
      expect(await store.prepareRetry(id, { status }, T(2))).toBe(true);
      expect(await raw(id)).toMatchObject({ status, reason: 'kept', scaleError: { message: 'kept' }, updatedAt: T(2), reopenedAt: T(2) });
    }
    const rejected = newId();
    await seed({ uniqueId: rejected, status: 'rejected', reason: 'empty' });
    expect(await store.prepareRetry(rejected, { status: 'rejected' }, T(4))).toBe(true);
    const reopened = await raw(rejected);
    expect([reopened.status, reopened.updatedAt, reopened.reason]).toEqual(['submitting', T(4), undefined]);
  });
});

describe('a refused write is told apart from a failed one', () => {
  it('passes on every failure that is not a refused condition', async () => {
    const id = newId();
    await seed({ uniqueId: id, status: 'submitting', claimId: 'c' });
    const calls: Array<() => Promise<unknown>> = [
      () => store.startSubmission({ uniqueId: id, bucket: 'scenes', key: 'k', sceneFormat: 'sensor_fusion', project: 'p' }, 'c2', T(1)),
      () => store.recordSubmitted(id, { taskId: 't', attachmentPinned: true, adopted: false }, T(1)),
      () => store.recordRejection(id, 'c', 'r', T(1)),
      () => store.recordFailedAttempt({ uniqueId: id, bucket: 'scenes', key: 'k', sceneFormat: 'sensor_fusion' }, { attempt: 1, error: 'e', terminal: false }, T(1)),
      () => store.recordCanceled(id, { taskId: 't', scaleUpdatedAt: T(1), order: 'o', reason: 'r' }, T(1)),
      () => store.applyCallback(callback(id, 't', 1), T(1)),
      () => store.prepareResubmission(id, 't', T(1)),
      () => store.prepareRetry(id, { status: 'failed' }, T(1)),
    ];
    for (const call of calls) {
      failNextUpdates.push(throttled());
      await expect(call()).rejects.toThrow('Rate exceeded');
      failNextUpdates.length = 0;
    }
    expect(await raw(id)).toMatchObject({ status: 'submitting', claimId: 'c', updatedAt: T(0) });
  });

  it('takes a ConditionalCheckFailedException by its name, as another SDK copy throws it', async () => {
    const id = newId();
    await seed({ uniqueId: id, status: 'submitting', claimId: 'c' });
    failNextUpdates.push(conditionFailure());
    expect(await store.recordSubmitted(id, { taskId: 't', attachmentPinned: true, adopted: false }, T(1))).toBe('already_has_task');
    failNextUpdates.push(conditionFailure());
    expect(await store.prepareRetry(id, { status: 'failed' }, T(1))).toBe(false);
    failNextUpdates.push(conditionFailure());
    await store.recordRejection(id, 'c', 'r', T(1));
    expect(await raw(id)).toMatchObject({ status: 'submitting', claimId: 'c', updatedAt: T(0) });
  });

  it('lets a claim refused by a record deleted meanwhile be retried, not reported as an outcome', async () => {
    const refusal = conditionFailure();
    failNextUpdates.push(refusal);
    const thrown = await store.startSubmission({ uniqueId: 'sfs-tw-deleted', bucket: 'scenes', key: 'k', sceneFormat: 'sensor_fusion', project: 'p' }, 'c', T(1)).catch((err: unknown) => err);
    expect(thrown).toEqual(new Error('record sfs-tw-deleted changed while starting its submission; will retry'));
    // The refused write it was told of, for whoever reads the log.
    expect((thrown as Error).cause).toBe(refusal);
  });

  it('reads a refused claim\'s record back consistently, so it names the status that refused it', async () => {
    const id = newId();
    await seed({ uniqueId: id, status: 'rejected' });
    reads.length = 0;
    expect(await store.startSubmission({ uniqueId: id, bucket: 'scenes', key: 'k', sceneFormat: 'sensor_fusion', project: 'p' }, 'c', T(1))).toEqual({ alreadyAt: 'rejected' });
    expect(reads).toEqual([{ TableName: 'tasks', Key: { uniqueId: id }, ConsistentRead: true }]);
  });
});
