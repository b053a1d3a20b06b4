import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDynamoFront, type DynamoFront } from '../../local/dynamodb-front.js';
import { createTasksTable, startDynamo } from '../../local/emulators/dynamodb.js';
import { LocalEventBus } from '../../local/event-bus.js';
import { FunctionPool } from '../../local/function-pool.js';
import { StreamPipe } from '../../local/stream-pipe.js';
import { startRecorder } from '../helpers/http.js';

/**
 * A stand-in enrichment: one detail per record whose status changed; it fails on a "poison" item, and on a
 * REMOVE (the pipe's filter must keep those from it).
 */
const HANDLER = `
export async function handler(records) {
  return records.flatMap((r) => {
    if (r.eventName === 'REMOVE') throw new Error('a REMOVE passed the filter');
    if (r.dynamodb.NewImage.poison) throw new Error('poison');
    const status = r.dynamodb.NewImage.status?.S;
    const previous = r.dynamodb.OldImage?.status?.S;
    if (status === previous) return [];
    return [{ uniqueId: r.dynamodb.Keys.uniqueId.S, status, ...(previous ? { previousStatus: previous } : {}), batchSize: records.length }];
  });
}
`;
type Detail = { uniqueId: string; status: string; previousStatus?: string; batchSize: number };
type Event = { version: string; id: string; 'detail-type': string; source: string; account: string; time: string; region: string; resources: string[]; detail: Detail };

let dir: string;
let dynamo: Awaited<ReturnType<typeof startDynamo>>;
let front: DynamoFront;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let pool: FunctionPool;
let pipe: StreamPipe<Detail> | undefined;
let bus: LocalEventBus | undefined;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'event-bus-'));
  await writeFile(join(dir, 'handler.mjs'), HANDLER);
  pool = new FunctionPool('task-events', join(dir, 'handler.mjs'), { PATH: process.env.PATH }, 1, new Writable({ write: (_c, _e, done) => done() }), { timeoutSeconds: 5 });
  dynamo = await startDynamo();
  front = await startDynamoFront({ target: dynamo.endpoint, streamedTables: ['tasks'] });
  front.onRecords((records) => pipe?.push(records));
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: front.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  doc = DynamoDBDocumentClient.from(client);
  await createTasksTable(client, 'tasks');
});
afterEach(async () => {
  pipe?.stop();
  bus?.stop();
  pipe = bus = undefined;
  for (const close of closers.splice(0)) await close();
});
afterAll(async () => {
  client?.destroy();
  await pool?.close();
  await front?.close();
  await dynamo?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The pipe as the stack has it (INSERT and MODIFY only), enriching with the stand-in, onto a bus of its own. */
async function startPipe(name: string, options: { eventsUrl?: string; maxAttempts?: number } = {}) {
  const files = { events: join(dir, `${name}-events.jsonl`), deadLetters: join(dir, `${name}-dead-letters.jsonl`) };
  await writeFile(files.events, '');
  await writeFile(files.deadLetters, '');
  const errors: string[] = [];
  bus = new LocalEventBus({
    eventsFile: files.events,
    source: 'scale-sfs-pipeline',
    detailType: 'Task status changed',
    region: 'us-east-1',
    eventsUrl: options.eventsUrl,
    postRetryDelayMs: 10,
    onError: (err) => errors.push((err as Error).message),
  });
  const target = bus;
  pipe = new StreamPipe<Detail>({
    filter: (record) => record.eventName === 'INSERT' || record.eventName === 'MODIFY',
    enrich: (records: DynamoDBRecord[]) => pool.invoke<Detail[]>(records),
    target: (details) => target.put(details),
    deadLetterFile: files.deadLetters,
    maxAttempts: options.maxAttempts ?? 3,
    retryDelayMs: 20,
    onError: (err) => errors.push((err as Error).message),
  });
  const settled = async () => {
    await pipe!.idle();
    await target.idle();
  };
  const lines = async (file: string) => (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as unknown);
  return { pipe, bus, files, errors, settled, events: () => lines(files.events) as Promise<Event[]>, deadLetters: () => lines(files.deadLetters) };
}

const setStatus = (uniqueId: string, status: string) =>
  doc.send(new UpdateCommand({ TableName: 'tasks', Key: { uniqueId }, UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': status } }));

describe('the task events pipe and bus', () => {
  it('appends one event per status change, in order per key, in batches of at most 10, and POSTs the same events', async () => {
    const recorder = await startRecorder();
    closers.push(recorder.close);
    const local = await startPipe('ordered', { eventsUrl: `${recorder.url}/events` });
    const statuses = ['submitting', 'pending', 'completed'];
    // Keys written concurrently, each key's changes in sequence; a touch that leaves the status as it is in between.
    await Promise.all(
      ['k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8'].map(async (uniqueId) => {
        await doc.send(new PutCommand({ TableName: 'tasks', Item: { uniqueId, status: statuses[0] } }));
        await doc.send(new UpdateCommand({ TableName: 'tasks', Key: { uniqueId }, UpdateExpression: 'SET touched = :t', ExpressionAttributeValues: { ':t': true } }));
        for (const status of statuses.slice(1)) await setStatus(uniqueId, status);
        await doc.send(new DeleteCommand({ TableName: 'tasks', Key: { uniqueId } }));
      }),
    );
    await local.settled();

    const events = await local.events();
    expect(events).toHaveLength(24);
    for (const uniqueId of ['k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8']) {
      const own = events.filter((e) => e.detail.uniqueId === uniqueId).map((e) => [e.detail.previousStatus, e.detail.status]);
      expect(own).toEqual([[undefined, 'submitting'], ['submitting', 'pending'], ['pending', 'completed']]);
    }
    for (const event of events) {
      expect(event).toMatchObject({ version: '0', 'detail-type': 'Task status changed', source: 'scale-sfs-pipeline', account: '000000000000', region: 'us-east-1', resources: [] });
      expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(event.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(event.detail.batchSize).toBeLessThanOrEqual(10);
    }
    // 32 records reached the enrichment (the 8 removals were filtered out): at least 4 batches.
    expect(local.pipe.stats.records).toBe(32);
    expect(local.pipe.stats.attempts).toBeGreaterThanOrEqual(4);
    expect(await local.deadLetters()).toEqual([]);
    expect(recorder.received.map((r) => (r.body as Event).id)).toEqual(events.map((e) => e.id));
    expect(recorder.received.every((r) => r.path === '/events' && r.headers['content-type'] === 'application/json')).toBe(true);
    expect(local.errors).toEqual([]);
  });

  it('retries a failed POST, and gives up on a receiver that keeps failing while the file keeps every event', async () => {
    const flaky = await startRecorder((n) => (n === 1 ? 503 : 200));
    const broken = await startRecorder(() => 500);
    closers.push(flaky.close, broken.close);

    const first = await startPipe('post-retry', { eventsUrl: flaky.url });
    await doc.send(new PutCommand({ TableName: 'tasks', Item: { uniqueId: 'p1', status: 'submitting' } }));
    await first.settled();
    expect(flaky.calls()).toBe(2);
    expect(flaky.received.map((r) => (r.body as Event).detail.uniqueId)).toEqual(['p1']);
    pipe!.stop();

    const second = await startPipe('post-broken', { eventsUrl: broken.url });
    await setStatus('p1', 'pending');
    await second.settled();
    expect(broken.calls()).toBe(3);
    expect(second.bus.stats).toEqual({ put: 1, posted: 0, postFailed: 1 });
    expect(second.errors).toEqual([expect.stringMatching(/could not be POSTed to .* \(HTTP 500\); it is in .*post-broken-events\.jsonl/)]);
    expect((await second.events()).map((e) => e.detail.status)).toEqual(['pending']);
  });

  it('retries a batch whose enrichment fails, dead-letters it after the last attempt, and goes on with the next', async () => {
    const local = await startPipe('poison', { maxAttempts: 3 });
    const invocationsBefore = pool.invocations;
    await doc.send(new PutCommand({ TableName: 'tasks', Item: { uniqueId: 'bad', status: 'submitting', poison: true } }));
    await local.settled();
    expect(pool.invocations - invocationsBefore).toBe(3);
    const [deadLetter, ...more] = (await local.deadLetters()) as Array<{ records: DynamoDBRecord[]; attempts: number; error: string }>;
    expect(more).toEqual([]);
    expect(deadLetter!.attempts).toBe(3);
    expect(deadLetter!.error).toBe('task-events failed: poison');
    expect(deadLetter!.records.map((r) => [r.eventName, r.dynamodb!.Keys])).toEqual([['INSERT', { uniqueId: { S: 'bad' } }]]);
    expect(local.pipe.stats).toMatchObject({ retried: 2, deadLettered: 1, delivered: 0 });

    await doc.send(new PutCommand({ TableName: 'tasks', Item: { uniqueId: 'good', status: 'submitting' } }));
    await local.settled();
    expect((await local.events()).map((e) => e.detail.uniqueId)).toEqual(['good']);
    expect(local.errors.filter((e) => e === 'task-events failed: poison')).toHaveLength(3);
  });

  it('refuses a put with an event over EventBridge\'s 256 KB limit, writing none of it', async () => {
    const local = await startPipe('too-large');
    await expect(local.bus.put([{ small: true }, { large: 'x'.repeat(256 * 1024) }])).rejects.toThrow(/larger than EventBridge's 262144 bytes/);
    expect(await local.events()).toEqual([]);
  });
});
