import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../../../lambdas/core/tasks/dynamo-task-store.js';
import { TaskReader } from '../../../../lambdas/core/tasks/task-reader.js';
import type { TaskStatus } from '../../../../lambdas/core/tasks/task-record.js';
import { createTasksTable, startDynamo } from '../../../../local/emulators/dynamodb.js';

// The reader's bounds, against dynalite: the record exactly at a time bound, the page size, and ties.
let dynamo: Awaited<ReturnType<typeof startDynamo>>;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let tables = 0;
/** Limits the reader sent with its queries: how much it asks for at once. */
const limits: Array<number | undefined> = [];
beforeAll(async () => {
  dynamo = await startDynamo();
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  doc = documentClient(client);
  doc.middlewareStack.add((next) => (args) => (limits.push((args.input as { Limit?: number }).Limit), next(args)), { step: 'initialize' });
});
afterAll(async () => {
  client.destroy();
  await dynamo.close();
});

async function table(seeds: Array<{ id: string; status?: TaskStatus; at: string; createdAt?: string; key?: string; taskId?: string }>) {
  const name = `edges-${++tables}`;
  await createTasksTable(client, name);
  for (const s of seeds) {
    await doc.send(new PutCommand({ TableName: name, Item: { schemaVersion: 1, uniqueId: s.id, status: s.status ?? 'completed', bucket: 'scenes', key: s.key ?? `k/${s.id}`, sceneFormat: 'sensor_fusion', createdAt: s.createdAt ?? s.at, updatedAt: s.at, ...(s.taskId ? { taskId: s.taskId } : {}) } }));
  }
  return new TaskReader(doc, name);
}
const at = (s: number) => `2026-10-01T00:00:${String(s).padStart(2, '0')}.000Z`;
const ids = (page: { items: Array<{ uniqueId: string }> }) => page.items.map((r) => r.uniqueId);

describe('TaskReader: time bounds', () => {
  it('lists a status from `since` inclusive, and the stuck ones before `before` exclusive, oldest first', async () => {
    const reader = await table([{ id: 'a', at: at(1), status: 'submitting' }, { id: 'b', at: at(2), status: 'submitting' }, { id: 'c', at: at(3), status: 'submitting' }, { id: 'd', at: at(2), status: 'error' }]);
    expect(ids(await reader.listByStatus('submitting', at(2)))).toEqual(['b', 'c']);
    expect(ids(await reader.listByStatusBefore('submitting', at(3)))).toEqual(['a', 'b']);
    expect(ids(await reader.listByStatusBefore('submitting', at(1)))).toEqual([]);
    // Paged by the table's own key: no gap or repeat.
    const first = await reader.listByStatusBefore('submitting', at(9), { limit: 2 });
    expect(ids(first)).toEqual(['a', 'b']);
    expect(first.cursor).toEqual(expect.any(String));
    const second = await reader.listByStatusBefore('submitting', at(9), { limit: 2, cursor: first.cursor });
    expect([ids(second), second.cursor]).toEqual([['c'], undefined]);
  });

  it('continues a newest-first listing with `since` from a cursor, within both bounds', async () => {
    const reader = await table([0, 1, 2, 3, 4, 5].map((s) => ({ id: `n${s}`, at: at(s) })));
    const first = await reader.listNewest({ since: at(2) }, { limit: 2 });
    expect(ids(first)).toEqual(['n5', 'n4']);
    const second = await reader.listNewest({ since: at(2) }, { limit: 2, cursor: first.cursor });
    expect([ids(second), second.cursor]).toEqual([['n3', 'n2'], undefined]);
    const oldest = await reader.listOldest({ since: at(2) }, { limit: 3 });
    expect(ids(oldest)).toEqual(['n2', 'n3', 'n4']);
    expect(ids(await reader.listOldest({ since: at(2) }, { limit: 3, cursor: oldest.cursor }))).toEqual(['n5']);
    expect(await reader.count({ since: at(2) }, { cursor: oldest.cursor })).toBe(2);
    // A hand-made cursor placed before `since` never widens the listing past its own filter.
    const early = Buffer.from(JSON.stringify({ v: 1, order: 'oldest', since: at(2), at: at(0), id: 'n0' })).toString('base64url');
    expect(ids(await reader.listOldest({ since: at(2) }, { limit: 10, cursor: early }))).toEqual(['n2', 'n3', 'n4', 'n5']);
    expect(await reader.count({ since: at(2) }, { cursor: early })).toBe(4);
  });
});

describe('TaskReader: pages and ties', () => {
  it('gives 50 records a page by default, at least one, and reads one past the page to know if more follow', async () => {
    const reader = await table(Array.from({ length: 52 }, (_, i) => ({ id: `p${String(i).padStart(2, '0')}`, at: at(i % 60) })));
    limits.length = 0;
    const page = await reader.listOldest({ statuses: ['completed'] });
    expect(page.items).toHaveLength(50);
    expect(new Set(limits)).toEqual(new Set([51]));
    expect(ids(await reader.listOldest({ statuses: ['completed'] }, { cursor: page.cursor }))).toEqual(['p50', 'p51']);
    const one = await reader.listOldest({ statuses: ['completed'] }, { limit: 0 });
    expect([ids(one), one.cursor === undefined]).toEqual([['p00'], false]);
    limits.length = 0;
    await reader.listOldest({ statuses: ['completed'] }, { limit: 1000 });
    expect(new Set(limits)).toEqual(new Set([500]));
    limits.length = 0;
    for await (const _ of reader.iterate('oldest', { statuses: ['completed'] })) void _;
    expect(new Set(limits)).toEqual(new Set([100]));
    limits.length = 0;
    await reader.listByStatus('completed', at(0));
    expect(limits).toEqual([100]);
  });

  it('orders uploads of one key sharing a createdAt by uniqueId, newest first; finds by task id or nothing', async () => {
    const reader = await table([{ id: 'u-a', at: at(1), createdAt: at(1), key: 'same' }, { id: 'u-c', at: at(1), createdAt: at(1), key: 'same' }, { id: 'u-b', at: at(1), createdAt: at(1), key: 'same', taskId: 'task-b' }, { id: 'u-0', at: at(0), createdAt: at(0), key: 'same' }]);
    expect((await reader.findByKey('scenes', 'same')).map((r) => r.uniqueId)).toEqual(['u-c', 'u-b', 'u-a', 'u-0']);
    expect((await reader.getByTaskId('task-b'))?.uniqueId).toBe('u-b');
    expect(await reader.getByTaskId('task-none')).toBeUndefined();
  });

  it('merges statuses sharing one millisecond by uniqueId, in either direction', async () => {
    const reader = await table([{ id: 'm-b', at: at(1), status: 'error' }, { id: 'm-a', at: at(1), status: 'pending' }, { id: 'm-c', at: at(1), status: 'failed' }, { id: 'm-0', at: at(0), status: 'failed' }]);
    expect(ids(await reader.listOldest({}, { limit: 10 }))).toEqual(['m-0', 'm-a', 'm-b', 'm-c']);
    expect(ids(await reader.listNewest({}, { limit: 10 }))).toEqual(['m-c', 'm-b', 'm-a', 'm-0']);
    const first = await reader.listNewest({}, { limit: 2 });
    expect(ids(await reader.listNewest({}, { limit: 2, cursor: first.cursor }))).toEqual(['m-a', 'm-0']);
    const oldest = await reader.listOldest({}, { limit: 2 });
    expect(ids(await reader.listOldest({}, { limit: 2, cursor: oldest.cursor }))).toEqual(['m-b', 'm-c']);
  });
});

describe('TaskReader: the record schema', () => {
  it('reads back every field a record may carry, and names an item of another schema version', async () => {
    const full = {
      schemaVersion: 1, uniqueId: 'full', status: 'completed', bucket: 'scenes', key: 'k/full', versionId: 'v', eTag: 'e', sequencer: '00A', size: 3, sceneFormat: 'split_base64', project: 'p', batch: 'b',
      route: 'r', frameCount: 4, taskId: 't', createdAt: at(1), updatedAt: at(2), submittedAt: at(1), attachmentExpiresAt: at(9), adopted: false, attachmentPinned: true, reason: 'why',
      scaleError: { status: 400, message: 'm' }, attempts: 2, lastError: 'le', cancelError: { message: 'c' }, resultFiles: [{ sourceUrl: 'u', bucket: 'rb', key: 'rk', bytes: 5, sha256: 'h', error: 'x' }],
      previousTaskIds: ['t0'], resubmissions: 1, claimId: 'cl', scaleStatus: 'completed', scaleUpdatedAt: at(2), callbackOrder: 'o', callbackDigest: 'd', completedAt: at(2), callbackCount: 3,
      lastCallbackAt: at(2), responseJson: '{}', responseRef: { bucket: 'rb', key: 'ref' }, lastCallbackArchive: { bucket: 'rb', key: 'arch' },
    };
    const reader = await table([]);
    const name = `edges-${tables}`;
    await doc.send(new PutCommand({ TableName: name, Item: full }));
    await doc.send(new PutCommand({ TableName: name, Item: { ...full, uniqueId: 'v2', schemaVersion: 2 } }));
    expect(await reader.get('full')).toEqual(full);
    const invalid: string[] = [];
    for await (const _ of reader.iterate('oldest', {}, { onInvalid: (item) => invalid.push(`${item.uniqueId} ${item.problems}`) })) void _;
    expect(invalid).toEqual([expect.stringMatching(/^v2 schemaVersion: /)]);
  });
});
