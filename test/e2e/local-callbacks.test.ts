import { GetObjectCommand } from '@aws-sdk/client-s3';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSfsToBuffer } from '../../lambdas/core/scenes/sfs/writer.js';
import type { TaskRecord } from '../../lambdas/core/tasks/task-record.js';
import { startLocalPipeline, type LocalPipeline } from '../../local/pipeline.js';
import { buildSampleScene } from '../../local/sample-scenes.js';
import { eventually } from '../helpers/http.js';
import { expectedCallbackSignature } from '../helpers/identity.js';
import { clientsFor } from '../helpers/local-pipeline.js';

// Scale's callbacks through the callback path as deployed: API Gateway (payload limit, REQUEST authorizer with
// its cache, S3 integration) → results bucket → notification → callback queue → callback function → table.
const API_LIMIT = 10_485_760;
const scene = encodeSfsToBuffer(buildSampleScene());
let workDir: string;
let pipeline: LocalPipeline;
let c: ReturnType<typeof clientsFor>;
const logs = { chunks: [] as string[], write(chunk: unknown) { this.chunks.push(String(chunk)); return true; } };
const logLines = (needle: string) => logs.chunks.join('').split('\n').filter((line) => line.includes(needle));

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'e2e-callbacks-'));
  pipeline = await startLocalPipeline({ workDir, logs: logs as never, visibilityTimeoutMs: 500, simulator: { completionDelayMs: 50, callbackRetryDelayMs: 50 } });
  c = clientsFor(pipeline);
}, 60_000);
afterAll(async () => {
  await pipeline?.close();
  await rm(workDir, { recursive: true, force: true });
});

/** An upload whose task Scale completed, and whose completion callback has been applied. */
async function completedUpload(key: string): Promise<TaskRecord> {
  const object = await c.put(key, scene);
  const record = await c.settled(object.uniqueId);
  expect(record.status).toBe('completed');
  return record;
}

/** A valid Scale callback for the record's task, as Scale writes one (a later state than any so far). */
function callbackBody(record: TaskRecord, response: unknown, status = 'completed'): string {
  const updatedAt = new Date(Date.now() + 60_000).toISOString();
  const task = {
    task_id: record.taskId,
    status,
    type: 'multistage',
    created_at: record.submittedAt,
    updated_at: updatedAt,
    completed_at: status === 'completed' ? updatedAt : null,
    params: { attachments: ['http://127.0.0.1:9/scene.sfs'], scene_format: 'sensor_fusion' },
    metadata: { source: { bucket: record.bucket, key: record.key, versionId: record.versionId, eTag: record.eTag, size: record.size } },
    unique_id: record.uniqueId,
    response,
  };
  // Indented and non-ASCII: bytes that a re-serialisation or a wrong decoding would change.
  return JSON.stringify({ task, response, task_id: record.taskId, status, note: 'Köln, 東京 ✓' }, null, 1);
}

function post(ref: string, body: string | Buffer | ReadableStream<Uint8Array>, options: { auth?: string | null; sig?: string | null; headers?: Record<string, string> } = {}) {
  const query = new URLSearchParams({ ref });
  if (options.sig !== null) query.set('sig', options.sig ?? expectedCallbackSignature(ref, pipeline.secrets.signingKey));
  const auth = options.auth === undefined ? pipeline.secrets.callbackAuthKey : options.auth;
  const headers = { 'content-type': 'application/json', ...(auth === null ? {} : { 'scale-callback-auth': auth }), ...options.headers };
  return fetch(`${pipeline.info.callbackUrl}?${query}`, { method: 'POST', headers, body, duplex: 'half' } as RequestInit);
}

const storedBytes = async (key: string) => Buffer.from(await (await c.s3.send(new GetObjectCommand({ Bucket: pipeline.info.resultsBucket, Key: key }))).Body!.transformToByteArray());
const invocations = () => ({ authorizer: pipeline.pools.callbackAuth.invocations, callback: pipeline.pools.callback.invocations });

describe('callbacks through the local API Gateway', () => {
  it('stores an 8 MB callback byte for byte and applies it, its response by reference', async () => {
    const record = await completedUpload('callbacks/eight mb.sfs');
    // Scale sends the response twice (in the task and beside it): 4 MiB of it make an 8 MiB body.
    const body = callbackBody(record, { points: 'p'.repeat(4 * 1024 * 1024) });
    expect(Buffer.byteLength(body)).toBeGreaterThan(8 * 1024 * 1024);
    const answer = await post(record.uniqueId, body);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ ok: true });

    const applied = await eventually(async () => {
      const current = await c.reader.get(record.uniqueId);
      return current?.callbackCount === 2 ? current : undefined;
    }, 20_000, 'the 8 MB callback to be applied');
    expect(applied.status).toBe('completed');
    expect(applied.responseJson).toBeUndefined();
    const key = applied.responseRef!.key;
    expect(applied.responseRef).toEqual({ bucket: 'results', key: expect.stringMatching(new RegExp(`^callbacks/${record.uniqueId}/[0-9a-f-]{36}\\.json$`)) });
    expect(applied.lastCallbackArchive).toEqual(applied.responseRef);
    expect((await storedBytes(key)).equals(Buffer.from(body, 'utf8'))).toBe(true);
    const object = await c.s3.send(new GetObjectCommand({ Bucket: 'results', Key: key }));
    expect(object.ContentType).toBe('application/json');
    await object.Body!.transformToByteArray();
    expect(await c.archived(`callbacks/${record.uniqueId}/`)).toHaveLength(2);
  }, 40_000);

  it('refuses a body of 10,485,761 bytes with 413 before anything runs, and accepts exactly 10,485,760', async () => {
    const record = await completedUpload('callbacks/limit.sfs');
    await pipeline.callbackQueue.idle();
    const before = invocations();
    const text = callbackBody(record, { blob: 'b'.repeat(5_000_000) });
    const exact = Buffer.from(text + ' '.repeat(API_LIMIT - Buffer.byteLength(text))); // JSON may end in spaces
    const over = Buffer.concat([exact, Buffer.from(' ')]);
    expect([exact.length, over.length]).toEqual([10_485_760, 10_485_761]);

    const tooLarge = await post(record.uniqueId, over);
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toEqual({ message: 'Request Too Long' });
    // Without a Content-Length too: the limit holds while the body streams in.
    const chunked = new ReadableStream({
      start(controller) {
        for (let at = 0; at < over.length; at += 1024 * 1024) controller.enqueue(over.subarray(at, at + 1024 * 1024));
        controller.close();
      },
    });
    expect((await post(record.uniqueId, chunked)).status).toBe(413);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(invocations()).toEqual(before);
    expect(await c.archived(`callbacks/${record.uniqueId}/`)).toHaveLength(1);

    const accepted = await post(record.uniqueId, exact);
    expect(accepted.status).toBe(200);
    const applied = await eventually(async () => {
      const current = await c.reader.get(record.uniqueId);
      return current?.callbackCount === 2 ? current : undefined;
    }, 20_000, 'the 10 MB callback to be applied');
    expect((await storedBytes(applied.lastCallbackArchive!.key)).equals(exact)).toBe(true);
    // Scale's completion callback had the same identity: the authorizer's Allow came from API Gateway's cache.
    expect(invocations()).toEqual({ authorizer: before.authorizer, callback: before.callback + 1 });
  }, 60_000);

  it('answers a flood of 1,000 calls without sig with 401, invoking nothing, while a genuine callback gets through', async () => {
    // A task Scale has not started: no callback yet, so the genuine one's identity is not in the authorizer cache.
    pipeline.scale.configure({ startDelayMs: 60_000 });
    const object = await c.put('callbacks/flood.sfs', scene);
    const record = await eventually(async () => {
      const current = await c.reader.get(object.uniqueId);
      return current?.status === 'pending' ? current : undefined;
    }, 10_000, 'the pending task');
    pipeline.scale.configure({ startDelayMs: 0 });
    await pipeline.callbackQueue.idle();
    const before = invocations();
    const refusedBefore = pipeline.api.stats.refused[401] ?? 0;
    const junk = JSON.stringify({ junk: 'x'.repeat(1024) });
    let issued = 0;
    const statuses: number[] = [];
    const worker = async () => {
      while (issued < 1_000) {
        issued++;
        const answer = await post(record.uniqueId, junk, { sig: null });
        await answer.arrayBuffer();
        statuses.push(answer.status);
      }
    };
    const flood = Promise.all(Array.from({ length: 50 }, worker));
    await eventually(() => (statuses.length >= 100 ? true : undefined), 10_000, 'the flood to be under way');
    const started = Date.now();
    const genuine = await post(record.uniqueId, callbackBody(record, { flood: 'survived' }));
    const genuineMs = Date.now() - started;
    const floodStillRunning = statuses.length < 1_000;
    await flood;

    expect(genuine.status).toBe(200);
    expect(floodStillRunning).toBe(true);
    expect(genuineMs).toBeLessThan(3_000);
    expect(statuses).toHaveLength(1_000);
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(pipeline.api.stats.refused[401]).toBe(refusedBefore + 1_000);
    const applied = await c.settled(record.uniqueId);
    expect(applied).toMatchObject({ status: 'completed', callbackCount: 1 });
    expect(JSON.parse(applied.responseJson!)).toEqual({ flood: 'survived' });
    // Only the genuine call invoked anything: the authorizer once, the callback function once.
    expect(invocations()).toEqual({ authorizer: before.authorizer + 1, callback: before.callback + 1 });
  }, 60_000);

  it('answers a genuine URL with a wrong scale-callback-auth header 403, logs an auth refusal, stores nothing', async () => {
    const record = await completedUpload('callbacks/wrong key.sfs');
    const refusalsBefore = logLines('"callbackRefusal":"auth"').length;
    const before = invocations();
    const cacheHitsBefore = pipeline.api.stats.authorizerCacheHits;
    const body = callbackBody(record, { forged: true }, 'error');

    const answer = await post(record.uniqueId, body, { auth: 'a-rotated-key' });
    expect(answer.status).toBe(403);
    expect(await answer.json()).toEqual({ Message: 'User is not authorized to access this resource with an explicit deny' });
    await eventually(() => (logLines('"callbackRefusal":"auth"').length === refusalsBefore + 1 ? true : undefined), 5_000, 'the refusal in the logs');
    // The same identity again: API Gateway's cache answers, the authorizer is not asked twice.
    expect((await post(record.uniqueId, body, { auth: 'a-rotated-key' })).status).toBe(403);
    expect(pipeline.api.stats.authorizerCacheHits).toBe(cacheHitsBefore + 1);
    expect(invocations()).toEqual({ authorizer: before.authorizer + 1, callback: before.callback });

    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await c.archived(`callbacks/${record.uniqueId}/`)).toHaveLength(1);
    expect(await c.reader.get(record.uniqueId)).toMatchObject({ status: 'completed', callbackCount: 1 });
  });

  it('stores a body that is not a Scale callback, refuses it in the callback function, and changes nothing', async () => {
    const record = await completedUpload('callbacks/not a callback.sfs');
    const refusalsBefore = logLines('"callbackRefusal":"body"').length;
    expect((await post(record.uniqueId, '{"hello": "world"}')).status).toBe(200);
    await eventually(() => (logLines('"callbackRefusal":"body"').length === refusalsBefore + 1 ? true : undefined), 10_000, 'the body refusal in the logs');
    expect(await c.archived(`callbacks/${record.uniqueId}/`)).toHaveLength(2);
    expect(await c.reader.get(record.uniqueId)).toMatchObject({ status: 'completed', callbackCount: 1 });
    await pipeline.callbackQueue.idle();
    expect(await readFile(pipeline.info.callbackDeadLetterFile, 'utf8')).toBe('');
  });
});

describe('callbacks of equal time from the Scale simulator', () => {
  /** Runs one upload with the simulator configured so, until Scale has delivered `callbacks` callbacks. */
  async function uploadWith(key: string, config: Parameters<LocalPipeline['scale']['configure']>[0], callbacks: number) {
    pipeline.scale.configure({ ...config, equalTimestamps: true });
    try {
      const object = await c.put(key, scene);
      await eventually(() => {
        const delivered = c.tasksFor(object.uniqueId)[0]?.callbacks ?? [];
        return delivered.length === callbacks && delivered.every((d) => d.succeeded) ? true : undefined;
      }, 20_000, `${callbacks} callbacks delivered`);
      const record = await eventually(async () => {
        const current = await c.reader.get(object.uniqueId);
        return current?.callbackCount === callbacks ? current : undefined;
      }, 20_000, `${callbacks} callbacks applied`);
      const keys = await c.archived(`callbacks/${object.uniqueId}/`);
      const bodies = await Promise.all(keys.map(async (k) => JSON.parse((await storedBytes(k)).toString('utf8')) as { status: string; task: { updated_at: string } }));
      return { record, keys, bodies };
    } finally {
      pipeline.scale.configure({ auditBeforeCompletion: false, recallAfterCompletion: false, equalTimestamps: false });
    }
  }

  it('stores a completion and a recall of the same time, and ends pending: a recall outranks a completion', async () => {
    const { record, keys, bodies } = await uploadWith('equal-time/recall.sfs', { recallAfterCompletion: true }, 2);
    expect(keys).toHaveLength(2);
    expect(bodies.map((b) => b.status).sort()).toEqual(['completed', 'pending']);
    expect(bodies[0]!.task.updated_at).toBe(bodies[1]!.task.updated_at);
    expect(record).toMatchObject({ status: 'pending', scaleStatus: 'pending' });
    expect(record.completedAt).toBeUndefined();
  }, 40_000);

  it('stores an audit and a completion of the same time, and ends completed', async () => {
    const { record, keys, bodies } = await uploadWith('equal-time/audit.sfs', { auditBeforeCompletion: true }, 2);
    expect(keys).toHaveLength(2);
    expect(bodies.map((b) => b.status)).toEqual(['completed', 'completed']);
    expect(bodies[0]!.task.updated_at).toBe(bodies[1]!.task.updated_at);
    expect(record).toMatchObject({ status: 'completed', scaleStatus: 'completed' });
    expect(keys).toContain(record.lastCallbackArchive!.key);
  }, 40_000);
});
