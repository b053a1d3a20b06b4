import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../../../lambdas/core/tasks/dynamo-task-store.js';
import { InvalidTaskRecordError, TaskReader } from '../../../../lambdas/core/tasks/task-reader.js';
import type { TaskStatus } from '../../../../lambdas/core/tasks/task-record.js';
import { createTasksTable, startDynamo } from '../../../../local/emulators/dynamodb.js';

// What the reader reads of the byStatus index, against dynalite: only as far as a page needs, every 1 MB page of a
// count, the records after a cursor, and a record read twice because it changed status while the listing ran.
let dynamo: Awaited<ReturnType<typeof startDynamo>>;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let tables = 0;
/** Queries sent through `counted` since the last reset. */
let queries = 0;
let counted: DynamoDBDocumentClient;
beforeAll(async () => {
  dynamo = await startDynamo();
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  doc = documentClient(client);
  counted = documentClient(client);
  counted.middlewareStack.add((next, context) => (args) => (context.commandName === 'QueryCommand' && queries++, next(args)), { step: 'initialize' });
});
afterAll(async () => {
  client.destroy();
  await dynamo.close();
});

type Seed = { id: string; at: string; status?: TaskStatus; extra?: Record<string, unknown> };
async function table(seeds: Seed[]): Promise<string> {
  const name = `reads-${++tables}`;
  await createTasksTable(client, name);
  for (const s of seeds) {
    const item = { schemaVersion: 1, uniqueId: s.id, status: s.status ?? 'completed', bucket: 'scenes', key: `k/${s.id}`, sceneFormat: 'sensor_fusion', createdAt: s.at, updatedAt: s.at, ...s.extra };
    await doc.send(new PutCommand({ TableName: name, Item: item }));
  }
  return name;
}
const at = (s: number) => `2026-08-01T00:00:${String(s).padStart(2, '0')}.000Z`;
const ids = (page: { items: Array<{ uniqueId: string }> }) => page.items.map((r) => r.uniqueId);

describe('TaskReader: reading only what a page needs', () => {
  it('reads one record past a one-record page, however long the listing', async () => {
    const name = await table(Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, at: at(i) })));
    const reader = new TaskReader(counted, name);
    queries = 0;
    const page = await reader.listOldest({ statuses: ['completed'] }, { limit: 1 });
    expect(ids(page)).toEqual(['r0']);
    // Index pages of two (the page and its look-ahead): the first gives r0, the second shows r1 follows it.
    expect(queries).toBe(2);
    queries = 0;
    const newest = await reader.listNewest({ statuses: ['completed'] }, { limit: 3 });
    expect(ids(newest)).toEqual(['r9', 'r8', 'r7']);
    expect(queries).toBe(2);
  });

  it('counts every record of a status whose items fill more than one 1 MB query page', async () => {
    // Responses up to 300 KB are kept inline (responseJson): five of them are more than DynamoDB returns at once.
    const big = 'x'.repeat(300_000);
    const name = await table([...[1, 2, 3, 4, 5].map((i) => ({ id: `big${i}`, at: at(i), extra: { responseJson: big } })), { id: 'small', at: at(6), status: 'pending' as const }]);
    const reader = new TaskReader(counted, name);
    queries = 0;
    expect(await reader.count({ statuses: ['completed'] })).toBe(5);
    expect(queries).toBe(2);
    expect(await reader.count({})).toBe(6);
  });
});

describe('TaskReader: continuing from a cursor', () => {
  it('keeps the records after the cursor\'s time whatever their uniqueId, in either direction', async () => {
    // The later record has the smaller uniqueId: only records of the cursor's own time are compared by it.
    const reader = new TaskReader(doc, await table([{ id: 'zulu', at: at(1) }, { id: 'alpha', at: at(2) }]));
    const oldest = await reader.listOldest({}, { limit: 1 });
    expect(ids(oldest)).toEqual(['zulu']);
    const oldestRest = await reader.listOldest({}, { limit: 1, cursor: oldest.cursor });
    expect([ids(oldestRest), oldestRest.cursor]).toEqual([['alpha'], undefined]);
    const newest = await reader.listNewest({}, { limit: 1 });
    expect(ids(newest)).toEqual(['alpha']);
    const newestRest = await reader.listNewest({}, { limit: 1, cursor: newest.cursor });
    expect([ids(newestRest), newestRest.cursor]).toEqual([['zulu'], undefined]);
  });
});

describe('TaskReader: an item that is no task record', () => {
  it('throws an InvalidTaskRecordError that says so by its name', async () => {
    const reader = new TaskReader(doc, await table([{ id: 'bad', at: at(1), extra: { attempts: 'many' } }]));
    const thrown = await reader.get('bad').catch((err: unknown) => err);
    expect(thrown).toBeInstanceOf(InvalidTaskRecordError);
    expect((thrown as Error).name).toBe('InvalidTaskRecordError');
    expect((thrown as Error).message).toBe('task record bad does not match schema version 1: attempts: expected number');
  });
});

describe('TaskReader: a record that changes status while a listing reads it', () => {
  // A listing is no snapshot: both states are given. They share one position (time and uniqueId), so neither copy
  // goes before the other: the tie goes to the status listed first in TASK_STATUSES, the same in either direction.
  it('gives a record seen in two statuses at one instant in both, in the same order either direction', async () => {
    for (const order of ['newest', 'oldest'] as const) {
      const name = await table([{ id: 'moving', at: at(1), status: 'submitting' }]);
      // Right after the listing read the submitting records, the upload is rejected within the same millisecond.
      const racing = documentClient(client);
      let moved = false;
      racing.middlewareStack.add(
        (next) => async (args) => {
          const result = await next(args);
          const status = (args.input as { ExpressionAttributeValues?: Record<string, unknown> }).ExpressionAttributeValues?.[':status'];
          if (status === 'submitting' && !moved) {
            moved = true;
            await doc.send(new UpdateCommand({ TableName: name, Key: { uniqueId: 'moving' }, UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': 'rejected' } }));
          }
          return result;
        },
        { step: 'initialize' },
      );
      const seen: string[] = [];
      for await (const { record } of new TaskReader(racing, name).iterate(order, {})) seen.push(`${record.uniqueId}:${record.status}`);
      expect([order, seen]).toEqual([order, ['moving:submitting', 'moving:rejected']]);
    }
  });
});
