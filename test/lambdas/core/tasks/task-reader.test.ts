import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient, DynamoTaskStore } from '../../../../lambdas/core/tasks/dynamo-task-store.js';
import { decodeCursor, InvalidCursorError, InvalidTaskRecordError, TaskReader, type ListQuery } from '../../../../lambdas/core/tasks/task-reader.js';
import type { TaskStatus } from '../../../../lambdas/core/tasks/task-record.js';
import { createTasksTable, startDynamo } from '../../../../local/emulators/dynamodb.js';

let dynamo: Awaited<ReturnType<typeof startDynamo>>;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
/** One table per scenario, so seeds never mix. */
let tableCount = 0;
async function table() {
  const name = `tasks-${++tableCount}`;
  await createTasksTable(client, name);
  return { name, reader: new TaskReader(doc, name), store: new DynamoTaskStore(doc, name) };
}

/** Every request the document client sent: which command, on which index. */
const sent: Array<{ command: string | undefined; index?: string }> = [];

beforeAll(async () => {
  dynamo = await startDynamo();
  client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  doc = documentClient(client);
  doc.middlewareStack.add(
    (next, context) => (args) => {
      sent.push({ command: context.commandName, index: (args.input as { IndexName?: string }).IndexName });
      return next(args);
    },
    { step: 'initialize' },
  );
});
afterAll(async () => {
  client.destroy();
  await dynamo.close();
});

interface Seed {
  id: string;
  status: TaskStatus;
  at: string;
  key?: string;
  project?: string;
  bucket?: string;
  createdAt?: string;
}
const put = (tableName: string, s: Seed) =>
  doc.send(
    new PutCommand({
      TableName: tableName,
      Item: { schemaVersion: 1, uniqueId: s.id, status: s.status, bucket: s.bucket ?? 'scenes', key: s.key ?? `k/${s.id}.sfs`, sceneFormat: 'sensor_fusion', project: s.project ?? 'p', createdAt: s.createdAt ?? s.at, updatedAt: s.at },
    }),
  );

async function allPages(reader: TaskReader, order: 'newest' | 'oldest', query: ListQuery, limit: number) {
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = order === 'newest' ? await reader.listNewest(query, { limit, cursor }) : await reader.listOldest(query, { limit, cursor });
    pages.push(page.items.map((r) => r.uniqueId));
    cursor = page.cursor;
  } while (cursor && pages.length < 100);
  return pages;
}

const source = (i: number) => ({ uniqueId: `sfs-${i}`, bucket: 'scenes', key: `k${i}.sfs`, eTag: `e${i}`, size: i, sceneFormat: 'sensor_fusion' as const, project: 'p' });

describe('TaskReader (the downstream contract) against DynamoDB', () => {
  it('gets by uniqueId and by taskId, and pages through a status since a time', async () => {
    const { reader, store } = await table();
    for (let i = 0; i < 5; i++) {
      await store.startSubmission(source(i), `claim-${i}`, `2026-11-0${i + 1}T00:00:00.000Z`);
      await store.recordSubmitted(`sfs-${i}`, { taskId: `task-${i}`, attachmentExpiresAt: '2026-12-01T00:00:00.000Z', attachmentPinned: true, adopted: false }, `2026-11-0${i + 1}T01:00:00.000Z`);
    }
    await store.startSubmission(source(9), 'claim-9', '2026-11-09T00:00:00.000Z');
    await store.recordRejection('sfs-9', 'claim-9', 'the object is empty (0 bytes)', '2026-11-09T00:00:00.000Z');

    expect(await reader.get('sfs-2')).toMatchObject({ schemaVersion: 1, status: 'pending', taskId: 'task-2', key: 'k2.sfs' });
    expect(await reader.getByTaskId('task-3')).toMatchObject({ uniqueId: 'sfs-3' });
    expect(await reader.get('sfs-missing')).toBeUndefined();

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await reader.listByStatus('pending', '2026-11-02T00:00:00.000Z', { limit: 2, cursor });
      seen.push(...page.items.map((r) => r.uniqueId));
      cursor = page.cursor;
      pages++;
    } while (cursor);
    expect(seen).toEqual(['sfs-1', 'sfs-2', 'sfs-3', 'sfs-4']);
    expect(pages).toBeGreaterThanOrEqual(2);
    expect((await reader.listByStatus('rejected', '2026-01-01T00:00:00.000Z')).items).toEqual([
      expect.objectContaining({ uniqueId: 'sfs-9', reason: 'the object is empty (0 bytes)' }),
    ]);
  });

  it('finds every upload of one key, newest first, and nothing of the same key in another bucket', async () => {
    const { name, reader } = await table();
    await put(name, { id: 'v1', status: 'completed', at: '2026-03-01T00:00:05.000Z', key: 'drive/a.sfs', createdAt: '2026-03-01T00:00:00.000Z' });
    await put(name, { id: 'v3', status: 'rejected', at: '2026-03-03T00:00:00.000Z', key: 'drive/a.sfs', createdAt: '2026-03-03T00:00:00.000Z' });
    await put(name, { id: 'v2', status: 'failed', at: '2026-03-02T00:00:00.000Z', key: 'drive/a.sfs', createdAt: '2026-03-02T00:00:00.000Z' });
    await put(name, { id: 'other-bucket', status: 'completed', at: '2026-03-04T00:00:00.000Z', key: 'drive/a.sfs', bucket: 'elsewhere' });
    await put(name, { id: 'other-key', status: 'completed', at: '2026-03-04T00:00:00.000Z', key: 'drive/a.sfs.bak' });
    sent.length = 0;
    expect((await reader.findByKey('scenes', 'drive/a.sfs')).map((r) => [r.uniqueId, r.status])).toEqual([
      ['v3', 'rejected'],
      ['v2', 'failed'],
      ['v1', 'completed'],
    ]);
    expect(await reader.findByKey('scenes', 'drive/none.sfs')).toEqual([]);
    expect(sent).toEqual([
      { command: 'QueryCommand', index: 'byKey' },
      { command: 'QueryCommand', index: 'byKey' },
    ]);
  });

  it('lists every status newest first in full pages, ties on updatedAt included, with no gap or repeat across cursors', async () => {
    const { name, reader } = await table();
    const statuses: TaskStatus[] = ['submitting', 'pending', 'completed', 'error', 'canceled', 'rejected', 'create_failed', 'failed'];
    // 40 records over 8 statuses; many share one millisecond (within a status and across statuses).
    const seeds: Seed[] = Array.from({ length: 40 }, (_, i) => ({ id: `r${String(i).padStart(2, '0')}`, status: statuses[i % 8]!, at: `2026-04-01T00:00:0${Math.floor(i / 7)}.000Z` }));
    for (const s of seeds) await put(name, s);
    // The oracle: the seeds sorted by their own fields (a plain sort, not the reader's merge of per-status queries).
    const expected = [...seeds].sort((a, b) => (a.at === b.at ? (a.id < b.id ? 1 : -1) : a.at < b.at ? 1 : -1)).map((s) => s.id);
    expect(expected.slice(0, 3)).toEqual(['r39', 'r38', 'r37']);

    sent.length = 0;
    const pages = await allPages(reader, 'newest', {}, 3);
    // Queries of the byStatus index only: a listing never scans the table.
    expect(new Set(sent.map((s) => `${s.command} ${s.index}`))).toEqual(new Set(['QueryCommand byStatus']));
    expect(pages.flat()).toEqual(expected);
    expect(pages.slice(0, -1).every((p) => p.length === 3)).toBe(true);
    expect(pages).toHaveLength(14);
    // Exactly a page's worth left: the last page says there is nothing more (no empty page after it).
    expect(await allPages(reader, 'newest', {}, 8)).toHaveLength(5);

    const oldest = await allPages(reader, 'oldest', {}, 7);
    expect(oldest.flat()).toEqual([...expected].reverse());
  });

  it('narrows by statuses, since, project and key prefix, still in full pages', async () => {
    const { name, reader } = await table();
    for (let i = 0; i < 30; i++) {
      await put(name, { id: `n${String(i).padStart(2, '0')}`, status: i % 3 === 0 ? 'failed' : 'completed', at: `2026-05-01T00:00:${String(i).padStart(2, '0')}.000Z`, project: i % 5 === 0 ? 'highway' : 'city', key: i % 2 === 0 ? `even/${i}.sfs` : `odd/${i}.sfs` });
    }
    const ids = async (query: ListQuery, limit = 2) => (await allPages(reader, 'newest', query, limit)).flat();
    expect(await ids({ statuses: ['failed'], since: '2026-05-01T00:00:20.000Z' })).toEqual(['n27', 'n24', 'n21']);
    expect(await ids({ project: 'highway' })).toEqual(['n25', 'n20', 'n15', 'n10', 'n05', 'n00']);
    expect(await ids({ project: 'highway', keyPrefix: 'even/', statuses: ['completed'] })).toEqual(['n20', 'n10']);
    // A sparse filter: the matches lie far apart, yet every page but the last is full.
    const sparse = await allPages(reader, 'newest', { project: 'highway' }, 4);
    expect(sparse.map((p) => p.length)).toEqual([4, 2]);
    expect(await reader.count({ project: 'highway' })).toBe(6);
    expect(await reader.count({ statuses: ['failed'], since: '2026-05-01T00:00:20.000Z' })).toBe(3);
  });

  it('reads a tie of records sharing one millisecond across many index pages in uniqueId order', async () => {
    const { name, reader } = await table();
    const ids = ['t-e', 't-a', 't-d', 't-b', 't-f', 't-c', 't-g'];
    for (const id of ids) await put(name, { id, status: 'completed', at: '2026-06-01T00:00:00.000Z' });
    await put(name, { id: 't-z', status: 'completed', at: '2026-06-01T00:00:00.001Z' });
    // limit 1: the index is read 2 records at a time, so the tie spans four pages.
    expect((await allPages(reader, 'newest', {}, 1)).flat()).toEqual(['t-z', 't-g', 't-f', 't-e', 't-d', 't-c', 't-b', 't-a']);
    const iterated: string[] = [];
    for await (const { record } of reader.iterate('oldest', {}, { batchSize: 1 })) iterated.push(record.uniqueId);
    expect(iterated).toEqual(['t-a', 't-b', 't-c', 't-d', 't-e', 't-f', 't-g', 't-z']);
  });

  it('resumes an iteration from any item\'s cursor with exactly the rest, and refuses a cursor of another listing', async () => {
    const { name, reader } = await table();
    for (let i = 0; i < 12; i++) await put(name, { id: `c${String(i).padStart(2, '0')}`, status: i % 2 ? 'completed' : 'error', at: `2026-07-01T00:00:0${Math.floor(i / 4)}.000Z` });
    const query: ListQuery = { statuses: ['completed', 'error'], since: '2026-07-01T00:00:00.000Z' };
    const first: Array<{ id: string; cursor: string }> = [];
    for await (const { record, cursor } of reader.iterate('oldest', query)) first.push({ id: record.uniqueId, cursor });
    expect(first.map((f) => f.id)).toEqual(['c00', 'c01', 'c02', 'c03', 'c04', 'c05', 'c06', 'c07', 'c08', 'c09', 'c10', 'c11']);
    const rest: string[] = [];
    for await (const { record } of reader.iterate('oldest', { statuses: ['error', 'completed'], since: query.since }, { cursor: first[5]!.cursor })) rest.push(record.uniqueId);
    expect(rest).toEqual(['c06', 'c07', 'c08', 'c09', 'c10', 'c11']);
    // A progress estimate: what is left, plus the records sharing the cursor's millisecond (c04, c05).
    expect(await reader.count(query, { cursor: first[5]!.cursor })).toBe(8);
    expect(await reader.count(query)).toBe(12);

    await expect(reader.listOldest({ ...query, project: 'other' }, { cursor: first[5]!.cursor })).rejects.toThrow(InvalidCursorError);
    await expect(reader.listNewest(query, { cursor: first[5]!.cursor })).rejects.toThrow(/oldest first, not newest/);
    await expect(reader.listNewest({}, { cursor: 'bm90IGEgY3Vyc29y' })).rejects.toThrow(InvalidCursorError);
  });

  it('does not repeat a record that was updated between two pages', async () => {
    const { name, reader } = await table();
    for (let i = 0; i < 6; i++) await put(name, { id: `u${i}`, status: 'pending', at: `2026-08-01T00:00:0${i}.000Z` });
    const page1 = await reader.listNewest({}, { limit: 3 });
    expect(page1.items.map((r) => r.uniqueId)).toEqual(['u5', 'u4', 'u3']);
    // u4 completes: it is now the newest of all, before the cursor, and not shown again on the next page.
    await put(name, { id: 'u4', status: 'completed', at: '2026-08-01T00:01:00.000Z' });
    const page2 = await reader.listNewest({}, { limit: 3, cursor: page1.cursor });
    expect(page2.items.map((r) => r.uniqueId)).toEqual(['u2', 'u1', 'u0']);
    expect(page2.cursor).toBeUndefined();
  });

  it('names an item that is not a valid task record and goes on past it, when asked; otherwise stops with its name', async () => {
    const { name, reader } = await table();
    for (let i = 0; i < 5; i++) await put(name, { id: `v${i}`, status: 'completed', at: `2026-09-01T00:00:0${i}.000Z` });
    await doc.send(new PutCommand({ TableName: name, Item: { schemaVersion: 1, uniqueId: 'v2', status: 'completed', bucket: 'scenes', key: 'k', sceneFormat: 'sensor_fusion', createdAt: 'x', updatedAt: '2026-09-01T00:00:02.000Z', attempts: 'abc' } }));

    const seen: string[] = [];
    const named: Array<{ uniqueId: string; problems: string; resumesAfter: string[] }> = [];
    for await (const { record, cursor } of reader.iterate('oldest', {}, { onInvalid: (item, after) => named.push({ ...item, resumesAfter: [after] }) })) seen.push(`${record.uniqueId}:${cursor.length > 0}`);
    expect(seen).toEqual(['v0:true', 'v1:true', 'v3:true', 'v4:true']);
    expect(named.map(({ uniqueId, problems }) => [uniqueId, problems])).toEqual([['v2', 'attempts: expected number']]);
    // The cursor given with it resumes right after it.
    const after: string[] = [];
    for await (const { record } of reader.iterate('oldest', {}, { cursor: named[0]!.resumesAfter[0] })) after.push(record.uniqueId);
    expect(after).toEqual(['v3', 'v4']);

    // Pages: the invalid item is left out and named once, by the page whose look-ahead met it (the cursor moves past it).
    const page1 = await reader.listNewest({}, { limit: 2 });
    expect([page1.items.map((r) => r.uniqueId), page1.invalid?.map((i) => i.uniqueId)]).toEqual([['v4', 'v3'], ['v2']]);
    const page2 = await reader.listNewest({}, { limit: 2, cursor: page1.cursor });
    expect([page2.items.map((r) => r.uniqueId), page2.invalid]).toEqual([['v1', 'v0'], undefined]);
    expect(page2.cursor).toBeUndefined();
    const page1Of1 = await reader.listNewest({}, { limit: 1, cursor: (await reader.listNewest({}, { limit: 1 })).cursor });
    expect([page1Of1.items.map((r) => r.uniqueId), page1Of1.invalid?.map((i) => i.uniqueId)]).toEqual([['v3'], ['v2']]);

    const stops = async () => {
      for await (const _ of reader.iterate('oldest', {})) void _;
    };
    await expect(stops()).rejects.toThrow(new InvalidTaskRecordError({ uniqueId: 'v2', updatedAt: '2026-09-01T00:00:02.000Z', problems: 'attempts: expected number' }));
    await expect(stops()).rejects.toThrow('task record v2 does not match schema version 1: attempts: expected number');
  });

  it('refuses a cursor whose listing has no status at all', async () => {
    const { reader } = await table();
    const cursor = Buffer.from(JSON.stringify({ v: 1, order: 'newest', statuses: [], at: '2026-01-01T00:00:00.000Z', id: 'x' })).toString('base64url');
    // What the CLI does with a cursor: decode it, then continue its listing.
    expect(() => decodeCursor(cursor)).toThrow(InvalidCursorError);
    await expect(reader.listNewest({ statuses: [] }, { cursor })).rejects.toThrow(InvalidCursorError);
  });
});
