import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient, DynamoTaskStore } from '../../../../lambdas/core/tasks/dynamo-task-store.js';
import { createTasksTable, startDynamo } from '../../../../local/emulators/dynamodb.js';

// The store over the document client documentClient() builds, against dynalite: values TypeScript leaves undefined,
// how much of the byKey index findByKey reads, and failures that are not a DynamoDB error.
let dynamo: Awaited<ReturnType<typeof startDynamo>>;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let store: DynamoTaskStore;
/** The Limit of every query the store sent: how much of the index it asked for at once. */
const queryLimits: Array<number | undefined> = [];
beforeAll(async () => {
  dynamo = await startDynamo();
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  await createTasksTable(client, 'tasks');
  doc = documentClient(client);
  doc.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === 'QueryCommand') queryLimits.push((args.input as { Limit?: number }).Limit);
      return next(args);
    },
    { step: 'initialize' },
  );
  store = new DynamoTaskStore(doc, 'tasks');
});
afterAll(async () => {
  client.destroy();
  await dynamo.close();
});

const T = (s: number) => new Date(Date.UTC(2026, 10, 30, 4, 0, s)).toISOString();
const raw = async (uniqueId: string) => (await doc.send(new GetCommand({ TableName: 'tasks', Key: { uniqueId } }))).Item;

describe('documentClient: optional fields left undefined', () => {
  // Built in the test itself, not in a hook: what is checked is the client documentClient() gives at that moment.
  const freshStore = () => new DynamoTaskStore(documentClient(client), 'tasks');

  it('stores a refusal without an HTTP status (Scale gave none) as its message alone', async () => {
    const store = freshStore();
    const upload = { uniqueId: 'sfs-dc-1', bucket: 'scenes', key: 'dc/1.sfs', sceneFormat: 'sensor_fusion' as const, project: 'p' };
    expect(await store.startSubmission(upload, 'claim-1', T(0))).toBe('started');
    // As create-task builds it from a ScaleApiError whose status is optional.
    await store.recordCreateFailure(upload.uniqueId, 'claim-1', { status: undefined, message: 'Scale could not be reached' }, T(1));
    expect(await raw(upload.uniqueId)).toMatchObject({ status: 'create_failed', scaleError: { message: 'Scale could not be reached' } });
    expect(Object.keys((await raw(upload.uniqueId))!.scaleError as object)).toEqual(['message']);
  });

  it('stores result files whose optional fields are undefined without them', async () => {
    const store = freshStore();
    const id = 'sfs-dc-2';
    const update = {
      uniqueId: id, taskId: 'task-2', status: 'completed' as const, scaleUpdatedAt: T(2), order: `${T(2)}#1#000000#${T(2)}#k2`, digest: 'd2', archive: { bucket: 'results', key: 'cb/2.json' },
      source: { bucket: 'scenes', key: 'dc/2.sfs', sceneFormat: 'sensor_fusion' as const }, resultFiles: [{ sourceUrl: 'https://files/a', bucket: 'results', key: undefined, bytes: undefined, error: 'not copied' }],
    };
    expect(await store.applyCallback(update, T(3))).toBe('applied');
    expect((await raw(id))?.resultFiles).toEqual([{ sourceUrl: 'https://files/a', bucket: 'results', error: 'not copied' }]);
  });
});

describe('findByKey: reads no more of the index than the limit needs', () => {
  it('asks for `limit` items at a time and stops once it has them', async () => {
    const key = 'dc/many.sfs';
    for (let i = 1; i <= 5; i++) {
      await doc.send(new PutCommand({ TableName: 'tasks', Item: { schemaVersion: 1, uniqueId: `sfs-many-${i}`, status: 'pending', bucket: 'scenes', key, sceneFormat: 'sensor_fusion', createdAt: T(i), updatedAt: T(i) } }));
    }
    queryLimits.length = 0;
    expect((await store.findByKey('scenes', key, 2)).map((r) => r.uniqueId)).toEqual(['sfs-many-5', 'sfs-many-4']);
    // One query of two items: the first page already held both.
    expect(queryLimits).toEqual([2]);
    queryLimits.length = 0;
    expect((await store.findByKey('scenes', key, 5)).map((r) => r.uniqueId)).toEqual(['sfs-many-5', 'sfs-many-4', 'sfs-many-3', 'sfs-many-2', 'sfs-many-1']);
    expect(queryLimits).toEqual([5]);
  });
});

describe('failures that are not a DynamoDB error', () => {
  it('passes on whatever the client rejected with, even a value that is not an object', async () => {
    for (const thrown of [null, undefined, 'socket hang up']) {
      const failing = new DynamoTaskStore({ send: () => Promise.reject(thrown) } as unknown as DynamoDBDocumentClient, 'tasks');
      const outcome = (promise: Promise<unknown>) => promise.then(() => 'resolved', (err: unknown) => ({ rejectedWith: err }));
      expect(await outcome(failing.recordCancelRefused('sfs-x', { message: 'm' }, T(5)))).toEqual({ rejectedWith: thrown });
      expect(await outcome(failing.startSubmission({ uniqueId: 'sfs-x', bucket: 'b', key: 'k', sceneFormat: 'sensor_fusion', project: 'p' }, 'c', T(5)))).toEqual({ rejectedWith: thrown });
      expect(await outcome(failing.applyCallback({ uniqueId: 'sfs-x', taskId: 't', status: 'completed', scaleUpdatedAt: T(5), order: 'o', digest: 'd', archive: { bucket: 'r', key: 'k' }, source: { bucket: 'b', key: 'k', sceneFormat: 'sensor_fusion' } }, T(5)))).toEqual({ rejectedWith: thrown });
    }
  });
});
