import type { Logger } from '@aws-lambda-powertools/logger';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig, RoutingSchema } from '../../lambdas/core/shared/config.js';
import { ScaleClient } from '../../lambdas/core/scale/client.js';
import type { CreateMultistageTaskRequest } from '../../lambdas/core/scale/schemas.js';
import { S3SceneObjects } from '../../lambdas/core/scenes/scene-objects.js';
import { submitScene } from '../../lambdas/core/scenes/submit-scene.js';
import { encodeSfsToBuffer } from '../../lambdas/core/scenes/sfs/writer.js';
import { s3NotificationBody, sqsEvent, sqsRecord, type S3ObjectEvent } from '../../local/events.js';
import { buildSampleFrame, buildSampleScene } from '../../local/sample-scenes.js';
import { eventually, startRecorder } from '../helpers/http.js';
import { expectedUniqueId } from '../helpers/identity.js';
import { SECRETS, startPipelineEnv } from '../helpers/pipeline-env.js';

// The stack's default, versioned bucket; unversioned and suspended buckets have their own file.
let env: Awaited<ReturnType<typeof startPipelineEnv>>;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
let logger: Logger;
const MAX_RECEIVES = 3;
const contextWith = (remainingMs: number) => {
  const deadline = Date.now() + remainingMs;
  return { functionName: 'create-task', awsRequestId: 'test', getRemainingTimeInMillis: () => deadline - Date.now() } as Context;
};
const scene = encodeSfsToBuffer(buildSampleScene());
/** An .sfs file of just this header (padded) and the binary section's marker. */
const headerOnly = (json: string) => {
  const header = Buffer.from(json);
  return Buffer.concat([header, Buffer.alloc((4 - (header.length % 4)) % 4, 0x20), Buffer.alloc(4)]);
};

beforeAll(async () => {
  recorder = await startRecorder();
  env = await startPipelineEnv({ callbackUrl: `${recorder.url}/callback` });
  process.env.MAX_RECEIVE_COUNT = String(MAX_RECEIVES);
  ({ handler } = await import('../../lambdas/create-task/handler.js'));
  // The handler's own logger, made after the environment is set (its level comes from there).
  ({ logger } = await import('../../lambdas/core/shared/logger.js'));
});
afterAll(async () => {
  await env.close();
  await recorder.close();
});
afterEach(() => {
  env.scale.configure({ refuseApiKey: null, rateLimit: null, startDelayMs: 0, completionDelayMs: 20 });
  vi.restoreAllMocks();
});

const deliver = (object: S3ObjectEvent, receiveCount = 1) => handler(sqsEvent([sqsRecord(s3NotificationBody([object]), receiveCount)]), contextWith(60_000));
const simTasksFor = (uniqueId: string) => env.scale.state().tasks.filter((t) => t.unique_id === uniqueId);
/** The client's methods bound to it, so one of them can be replaced. */
const bind = (scale: ScaleClient) => ({
  createMultistageTask: scale.createMultistageTask.bind(scale),
  findTaskByUniqueId: scale.findTaskByUniqueId.bind(scale),
  cancelTask: (taskId: string) => scale.cancelTask(taskId),
});
async function upload(key: string, body: Uint8Array | string = scene) {
  const put = await env.put(key, body);
  return { ...put, uniqueId: expectedUniqueId(put) };
}

describe('poison input is rejected once, in bounded words, and never jams the queue', () => {
  it.each([
    ['a header of 50,000 empty sensors', 'poison/empties.sfs', () => encodeSfsToBuffer({ version: '1.0', sensors: Array.from({ length: 50_000 }, () => ({})) }), /^invalid scene header: 50000 of 50000 sensors are invalid: .*… and \d+ more problems$/],
    ['a sensor type of 450 KB', 'poison/long type.sfs', () => encodeSfsToBuffer({ version: '1.0', sensors: [{ id: 'a', type: 'x'.repeat(450_000) }] }), /has unknown type "x+…" \(expected camera/],
    // ~8 MiB, the header cap: millions of elements must cost a linear, small check, not minutes of CPU.
    ['a header of 2.8 million empty items', 'poison/items.sfs', () => headerOnly(`{"version":"1.0","sensors":[],"$items":[${new Array(2_796_180).fill('{}').join(',')}]}`), /^invalid scene header: 2796180 of 2796180 \$items are invalid: .*… and 2796\d\d\d more problems$/],
    ['a manifest of 300,000 numbers', 'poison/numbers.frames.json', () => JSON.stringify({ frames: new Array(300_000).fill(0) }), /^the frame manifest lists 300000 frames; at most 2000 are allowed$/],
  ])('%s', async (_name, key, body, reason) => {
    const object = await upload(key, body());
    const result = await deliver(object);
    expect(result.batchItemFailures).toEqual([]);
    const record = await env.reader.get(object.uniqueId);
    expect(record).toMatchObject({ status: 'rejected', reason: expect.stringMatching(reason) });
    expect(Buffer.byteLength(record!.reason!)).toBeLessThanOrEqual(1024);
    expect(simTasksFor(object.uniqueId)).toHaveLength(0);
  });
});

describe('a refused Scale API key is retried, visible and alarmed, never recorded as the upload’s fault', () => {
  it('fails the message, records attempts with Scale’s text, marks the last attempt failed, and resumes once the key is fixed', async () => {
    const errors = vi.spyOn(logger, 'error');
    env.scale.configure({ refuseApiKey: 401 });
    const object = await upload('auth/scene.sfs');
    const message = sqsRecord(s3NotificationBody([object]), 1);
    for (let receive = 1; receive <= MAX_RECEIVES; receive++) {
      message.attributes.ApproximateReceiveCount = String(receive);
      const result = await handler(sqsEvent([message]), contextWith(60_000));
      expect(result.batchItemFailures).toEqual([{ itemIdentifier: message.messageId }]);
      expect(await env.reader.get(object.uniqueId)).toMatchObject({
        status: receive < MAX_RECEIVES ? 'submitting' : 'failed',
        attempts: receive,
        lastError: expect.stringContaining('401 Please provide a valid API key'),
      });
    }
    // What the stack's metric filter counts: error lines with failureKind "scale_auth" (and never the key).
    const failures = errors.mock.calls.filter(([, extra]) => (extra as { failureKind?: string } | undefined)?.failureKind === 'scale_auth');
    expect(failures).toHaveLength(MAX_RECEIVES);
    expect(failures.at(-1)![0]).toContain('dead-letter queue');
    expect(failures.at(-1)![1]).toMatchObject({ attempt: MAX_RECEIVES, error: expect.stringContaining('401 Please provide a valid API key') });
    expect(JSON.stringify(errors.mock.calls)).not.toContain('live_handler_test_key');
    expect(simTasksFor(object.uniqueId)).toHaveLength(0);

    // The key is fixed and the message redriven: the upload gets its task.
    env.scale.configure({ refuseApiKey: null });
    message.attributes.ApproximateReceiveCount = '1';
    expect((await handler(sqsEvent([message]), contextWith(60_000))).batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'pending', attempts: MAX_RECEIVES });
    expect(simTasksFor(object.uniqueId)).toHaveLength(1);
  });
});

describe('a message that is not an S3 notification', () => {
  it('fails alone, and the log says what it was, in bounded words', async () => {
    const errors = vi.spyOn(logger, 'error');
    const garbage = sqsRecord(JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'scenes' }, object: { key: `bad%E0%A4%A${'x'.repeat(300_000)}.sfs` } } }] }));
    const result = await handler(sqsEvent([garbage]), contextWith(60_000));
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: garbage.messageId }]);
    const [message, extra] = errors.mock.calls.at(-1)!;
    expect(message).toContain('is not a readable S3 event notification');
    expect(extra).toMatchObject({ messageId: garbage.messageId, error: expect.stringContaining('is not URL-encoded as S3 sends keys') });
    expect(JSON.stringify(extra).length).toBeLessThan(2_000);
  });
});

describe('deletes win until Scale has the task, then cancel it', () => {
  it('rejects an upload whose object was deleted before it was processed, although its version is still readable', async () => {
    const object = await upload('deleted/scene.sfs');
    await env.remove(object.key);
    expect((await deliver(object)).batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'rejected', reason: expect.stringContaining('deleted before it was processed') });
    expect(simTasksFor(object.uniqueId)).toHaveLength(0);
  });

  it('rejects a version that a newer upload replaced before processing, and gives the newer one its task', async () => {
    const older = await upload('replaced/scene.sfs');
    const newer = await upload('replaced/scene.sfs');
    expect(newer.uniqueId).not.toBe(older.uniqueId);
    await deliver(newer);
    await deliver(older);
    expect(await env.reader.get(older.uniqueId)).toMatchObject({ status: 'rejected', reason: expect.stringContaining(`a newer version (${newer.versionId}) replaced this one`) });
    expect(await env.reader.get(newer.uniqueId)).toMatchObject({ status: 'pending', versionId: newer.versionId, attachmentPinned: true });
    expect(simTasksFor(older.uniqueId)).toHaveLength(0);
    const [task] = simTasksFor(newer.uniqueId);
    expect(new URL((task!.task.params.attachments as string[])[0]!).searchParams.get('versionId')).toBe(newer.versionId);
  });

  it('cancels the pending task of a deleted object and records canceled', async () => {
    env.scale.configure({ startDelayMs: 10_000 }); // Scale has not started the work
    const object = await upload('cancel/scene.sfs');
    await deliver(object);
    const { taskId } = (await env.reader.get(object.uniqueId))!;
    const removal = await env.remove(object.key);
    expect(removal.eventName).toBe('ObjectRemoved:DeleteMarkerCreated');
    expect((await deliver(removal)).batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'canceled', taskId, reason: expect.stringContaining('deleted from S3') });
    expect(simTasksFor(object.uniqueId)[0]!.task.status).toBe('canceled');
    // Delivered again (S3 and SQS deliver at least once): nothing changes, nothing fails.
    expect((await deliver(removal)).batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'canceled' });
  });

  it('records Scale’s refusal to cancel a completed task and does not retry it', async () => {
    const object = await upload('cancel-late/scene.sfs');
    await deliver(object);
    // Callbacks go to a recorder here, so Scale's own state says when the task is done.
    await eventually(() => (simTasksFor(object.uniqueId)[0]?.task.status === 'completed' ? true : undefined), 10_000, 'completion');
    const removal = await env.remove(object.key);
    expect((await deliver(removal)).batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'pending', cancelError: { status: 400, message: expect.stringContaining('can no longer be canceled') } });
    expect(simTasksFor(object.uniqueId)[0]!.task.status).toBe('completed');
  });

  it('cancels the task an earlier delivery created (its answer lost) when a redelivery finds the object deleted', async () => {
    env.scale.configure({ startDelayMs: 10_000 });
    const object = await upload('lost-answer/scene.sfs');
    // The earlier delivery claimed the upload and created the task, then died before recording it.
    expect(await env.store.startSubmission({ ...object, sceneFormat: 'sensor_fusion', project: 'scenes-default' }, 'earlier-delivery', new Date().toISOString())).toBe('started');
    const earlier = await new ScaleClient({ apiKey: SECRETS.scaleApiKey, baseUrl: env.scale.apiUrl }).createMultistageTask({
      project: 'scenes-default',
      attachments: [`${recorder.url}/scene.sfs`],
      scene_format: 'sensor_fusion',
      unique_id: object.uniqueId,
    });
    await env.remove(object.key);
    expect((await deliver(object, 2)).batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({
      status: 'canceled',
      taskId: earlier.task.task_id,
      adopted: true,
      reason: expect.stringContaining('the task an earlier delivery had created was canceled at Scale'),
    });
    expect(simTasksFor(object.uniqueId).map((t) => t.task.status)).toEqual(['canceled']);
  });

  it('cancels a task whose create finished after a duplicate delivery rejected the deleted upload', async () => {
    env.scale.configure({ startDelayMs: 10_000 });
    const object = await upload('race/scene.sfs');
    const scale = new ScaleClient({ apiKey: SECRETS.scaleApiKey, baseUrl: env.scale.apiUrl });
    // Delivery 1 passes every check, then its create is held until the race below has run.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slowScale = { ...bind(scale), createMultistageTask: async (request: CreateMultistageTaskRequest) => (await held, scale.createMultistageTask(request)) };
    const deps = { objects: new S3SceneObjects(env.s3Client), store: env.store, routing: parseConfig(RoutingSchema, { project: 'scenes-default' }, 'routing'), callbackBaseUrl: `${recorder.url}/callback`, signingKey: SECRETS.signingKey };
    const event = { ...object, eventName: 'ObjectCreated:Put' };
    const first = submitScene(event, { ...deps, scale: slowScale });
    await eventually(async () => ((await env.reader.get(object.uniqueId))?.status === 'submitting' ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 200)); // past its HEAD and header read
    // The object is deleted; a duplicate delivery finds it gone and no task at Scale yet: rejected.
    await env.remove(object.key);
    expect(await submitScene(event, { ...deps, scale })).toMatchObject({ kind: 'rejected' });
    release();
    expect(await first).toMatchObject({ kind: 'canceled' });
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'canceled', reason: expect.stringContaining('the task created meanwhile was canceled at Scale') });
    expect(simTasksFor(object.uniqueId).map((t) => t.task.status)).toEqual(['canceled']);
  });

  it('cancels the task of a failed upload that a delivery had created before its answer was lost', async () => {
    env.scale.configure({ startDelayMs: 10_000 });
    const object = await upload('failed-then-deleted/scene.sfs');
    const created = await new ScaleClient({ apiKey: SECRETS.scaleApiKey, baseUrl: env.scale.apiUrl }).createMultistageTask({
      project: 'scenes-default',
      attachments: [`${recorder.url}/scene.sfs`],
      scene_format: 'sensor_fusion',
      unique_id: object.uniqueId,
    });
    const source = { ...object, sceneFormat: 'sensor_fusion' as const };
    await env.store.recordFailedAttempt(source, { attempt: MAX_RECEIVES, error: 'network error (ECONNRESET)', terminal: true }, new Date().toISOString());
    expect((await deliver(await env.remove(object.key))).batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'canceled', taskId: created.task.task_id, adopted: true });
    expect(simTasksFor(object.uniqueId).map((t) => t.task.status)).toEqual(['canceled']);
  });

  it('sends a delete that arrives while the upload is still being submitted back to the queue, to wait for it', async () => {
    const object = await upload('cancel-early/scene.sfs');
    expect(await env.store.startSubmission({ ...object, sceneFormat: 'sensor_fusion', project: 'scenes-default' }, 'another-delivery', new Date().toISOString())).toBe('started');
    const removal = await env.remove(object.key);
    const message = sqsRecord(s3NotificationBody([removal]));
    const sentBefore = env.sqs.sent.length;
    // Waiting is no failed delivery: the removal does not walk towards the dead-letter queue while the upload settles.
    expect((await handler(sqsEvent([message]), contextWith(60_000))).batchItemFailures).toEqual([]);
    expect(env.sqs.sent.slice(sentBefore).map((m) => [m.queue, m.body, m.delaySeconds])).toEqual([['ingest', message.body, 60]]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'submitting' });

    // After a day of waiting, the usual retries and the dead-letter queue.
    const dayOld = sqsRecord(s3NotificationBody([{ ...removal, eventTime: new Date(Date.now() - 25 * 3_600_000).toISOString() }]));
    expect((await handler(sqsEvent([dayOld]), contextWith(60_000))).batchItemFailures).toEqual([{ itemIdentifier: dayOld.messageId }]);
    expect(env.sqs.sent.length).toBe(sentBefore + 1);
  });
});

describe('frames stay in the manifest’s scope', () => {
  it('never attaches an object outside the manifest’s folder, however it is named', async () => {
    await env.put('team-b/private/export.json', JSON.stringify(buildSampleFrame(0, 5)));
    await env.put('team-a/drive/0.json', JSON.stringify(buildSampleFrame(0, 5)));
    for (const [name, entry] of [['absolute', '/team-b/private/export.json'], ['climbing', '../../team-b/private/export.json']] as const) {
      const object = await upload(`team-a/drive/${name}.frames.json`, JSON.stringify({ frames: ['0.json', entry] }));
      expect((await deliver(object)).batchItemFailures).toEqual([]);
      const record = await env.reader.get(object.uniqueId);
      expect(record?.status, name).toBe('rejected');
      expect(simTasksFor(object.uniqueId), name).toHaveLength(0);
    }
    expect(JSON.stringify(env.scale.state().tasks)).not.toContain('team-b');
  });
});

describe('the precheck reads the header once and checks it against the object’s size', () => {
  it.each([
    ['cut short', () => scene.subarray(0, scene.length - 100), /spans bytes .* \(truncated upload\?\)/],
    ['an item larger than its dtype and shape say', () => encodeSfsToBuffer({ version: '1.0', sensors: [], p: new Float32Array(6) }).toString('latin1').replace('"shape":[6]', '"shape":[9]'), /declares float32 × \[9\] = 36 bytes but holds 24/],
  ])('rejects a scene %s before any task exists', async (_name, body, reason) => {
    const content = body();
    const object = await upload(`precheck/${_name}.sfs`, typeof content === 'string' ? Buffer.from(content, 'latin1') : content);
    expect((await deliver(object)).batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'rejected', reason: expect.stringMatching(reason) });
    expect(simTasksFor(object.uniqueId)).toHaveLength(0);
  });
});

describe('one deadline per invocation', () => {
  it('ends every Scale call before the function would time out, sending the messages that ran out of time back to wait', async () => {
    const objects = await Promise.all(['a', 'b', 'c'].map((name) => upload(`deadline/${name}.sfs`)));
    // One create per second, and Scale asks to wait 9 s: without a shared deadline each message would wait it out.
    env.scale.configure({ rateLimit: { requestsPerSecond: 1, retryAfterSeconds: 9 } });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const messages = objects.map((o) => sqsRecord(s3NotificationBody([o])));
    const sentBefore = env.sqs.sent.length;
    const started = Date.now();
    const result = await handler(sqsEvent(messages), contextWith(8_000));
    expect(Date.now() - started).toBeLessThan(8_000);
    const statuses = await Promise.all(objects.map(async (o) => (await env.reader.get(o.uniqueId))?.status));
    expect(statuses.filter((s) => s === 'pending')).toHaveLength(1);
    // Only the rate limit stood in the way of the other two: they wait in the queue, their deliveries not failed.
    expect(result.batchItemFailures).toEqual([]);
    const sentBack = new Set(env.sqs.sent.slice(sentBefore).map((m) => m.body));
    expect(sentBack.size).toBe(2);
    for (const [i, o] of objects.entries()) {
      const record = await env.reader.get(o.uniqueId);
      if (sentBack.has(messages[i]!.body)) expect(record).toMatchObject({ status: 'submitting', attempts: 1, lastError: expect.stringContaining("waiting for Scale's rate limit") });
      else expect(record).toMatchObject({ status: 'pending' });
    }
  });
});
