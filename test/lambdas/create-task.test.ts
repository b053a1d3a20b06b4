import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ScaleClient } from '../../lambdas/core/scale/client.js';
import { encodeSfsToBuffer } from '../../lambdas/core/scenes/sfs/writer.js';
import { s3NotificationBody, sqsEvent, sqsRecord, type ObjectCreated } from '../../local/events.js';
import { buildSampleScene } from '../../local/sample-scenes.js';
import { eventually, startRecorder } from '../helpers/http.js';
import { expectedCallbackSignature, expectedUniqueId, presignedUrlExpiry } from '../helpers/identity.js';
import { SECRETS, startPipelineEnv } from '../helpers/pipeline-env.js';

let env: Awaited<ReturnType<typeof startPipelineEnv>>;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
const context = { functionName: 'create-task', awsRequestId: 'test', getRemainingTimeInMillis: () => 60_000 } as Context;
const scene = encodeSfsToBuffer(buildSampleScene());

beforeAll(async () => {
  recorder = await startRecorder();
  env = await startPipelineEnv({
    callbackUrl: `${recorder.url}/callback`,
    routing: { routes: [{ prefix: 'highway/', project: 'scenes-highway', priority: 30, tags: ['highway'] }], tags: ['default'] },
  });
  ({ handler } = await import('../../lambdas/create-task/handler.js'));
});
afterAll(async () => {
  await env.close();
  await recorder.close();
});
beforeEach(() => {
  env.scale.configure({ failNextRequests: 0, dropNextRequests: 0, rateLimit: null });
});

const message = (objects: ObjectCreated[]) => sqsRecord(s3NotificationBody(objects));
const simTasksFor = (uniqueId: string) => env.scale.state().tasks.filter((t) => t.unique_id === uniqueId);

async function upload(key: string, body: Uint8Array | string = scene) {
  const put = await env.put(key, body);
  return { ...put, uniqueId: expectedUniqueId(put) };
}

describe('create-task handler', () => {
  it.each([
    ['spaces', 'drive 2026/scene one.sfs'],
    ['plus signs', 'a+b/c+d.sfs'],
    ['percent signs', 'rates/100%/50%done.sfs'],
    ['unicode', 'städte/東京/シーン é.sfs'],
  ])('creates one task for a key with %s, decoded from the event', async (_name, key) => {
    const object = await upload(key);
    const result = await handler(sqsEvent([message([object])]), context);
    expect(result.batchItemFailures).toEqual([]);

    const record = await env.reader.get(object.uniqueId);
    expect(record).toMatchObject({ status: 'pending', key, bucket: 'scenes', size: scene.length, project: 'scenes-default', sceneFormat: 'sensor_fusion', adopted: false });
    const [task] = simTasksFor(object.uniqueId);
    expect(record!.taskId).toBe(task!.task.task_id);
    expect(task!.task.metadata).toEqual({ source: { bucket: 'scenes', key, versionId: object.versionId, eTag: object.eTag, sequencer: object.sequencer, size: scene.length } });
    expect(task!.task.tags).toEqual(['default']);
    // The presigned URL worked: Scale downloaded the whole scene.
    const settled = await eventually(() => env.scale.state().tasks.find((t) => t.unique_id === object.uniqueId && t.settled));
    expect(settled.downloads).toEqual([expect.objectContaining({ statusCode: 200, bytes: scene.length })]);
    expect(settled.task.status).toBe('completed');
  });

  it('signs the callback URL for the upload and records when the attachment URL expires', async () => {
    const object = await upload('signed/scene.sfs');
    await handler(sqsEvent([message([object])]), context);
    const [task] = simTasksFor(object.uniqueId);
    const callbackUrl = new URL(task!.task.callback_url!);
    expect(`${callbackUrl.origin}${callbackUrl.pathname}`).toBe(`${recorder.url}/callback`);
    expect(Object.fromEntries(callbackUrl.searchParams)).toEqual({ ref: object.uniqueId, sig: expectedCallbackSignature(object.uniqueId, SECRETS.signingKey) });
    // What S3 will honour is what the URL itself says (its signing time plus its lifetime), not what was asked.
    const [attachment] = task!.task.params.attachments as string[];
    const record = await env.reader.get(object.uniqueId);
    expect(record!.attachmentExpiresAt).toBe(presignedUrlExpiry(attachment!).toISOString());
    expect(new URL(attachment!).searchParams.get('X-Amz-Expires')).toBe('21600');
  });

  it('routes by the longest matching prefix', async () => {
    const object = await upload('highway/a1/scene.sfs');
    await handler(sqsEvent([message([object])]), context);
    const [task] = simTasksFor(object.uniqueId);
    expect(task!.task).toMatchObject({ project: 'scenes-highway', priority: 30, tags: ['highway'] });
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ project: 'scenes-highway', route: 'highway/' });
  });

  it('creates one Scale task for duplicate deliveries, in one batch and across batches', async () => {
    const object = await upload('dup/scene.sfs');
    const first = await handler(sqsEvent([message([object]), message([object])]), context);
    const second = await handler(sqsEvent([message([object])]), context);
    expect([first.batchItemFailures, second.batchItemFailures]).toEqual([[], []]);
    expect(simTasksFor(object.uniqueId)).toHaveLength(1);
    expect((await env.reader.get(object.uniqueId))?.taskId).toBe(simTasksFor(object.uniqueId)[0]!.task.task_id);
  });

  it('adopts the task Scale already has for the unique_id (409)', async () => {
    const object = await upload('adopt/scene.sfs');
    const existing = await new ScaleClient({ apiKey: SECRETS.scaleApiKey, baseUrl: env.scale.apiUrl }).createMultistageTask({
      project: 'scenes-default',
      attachments: [`${recorder.url}/elsewhere.sfs`],
      scene_format: 'sensor_fusion',
      unique_id: object.uniqueId,
    });
    await handler(sqsEvent([message([object])]), context);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'pending', taskId: existing.task.task_id, adopted: true });
    expect(simTasksFor(object.uniqueId)).toHaveLength(1);
  });

  it('fails only the record when Scale keeps answering 5xx, and creates the task on redelivery', async () => {
    const object = await upload('flaky/scene.sfs');
    const msg = message([object]);
    env.scale.configure({ failNextRequests: 1000 });
    const result = await handler(sqsEvent([msg]), context);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: msg.messageId }]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'submitting' });
    expect(simTasksFor(object.uniqueId)).toHaveLength(0);

    env.scale.configure({ failNextRequests: 0 });
    expect((await handler(sqsEvent([msg]), context)).batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'pending' });
    expect(simTasksFor(object.uniqueId)).toHaveLength(1);
  }, 60_000);

  it('rides out a 429 within the retry budget', async () => {
    const object = await upload('rate-limited/scene.sfs');
    env.scale.configure({ rateLimit: { requestsPerSecond: 1, retryAfterSeconds: 1 } });
    await fetch(`${env.scale.apiUrl}/tasks`, { headers: { authorization: `Basic ${Buffer.from(`${SECRETS.scaleApiKey}:`).toString('base64')}` } });
    const result = await handler(sqsEvent([message([object])]), context);
    expect(result.batchItemFailures).toEqual([]);
    expect(env.scale.state().requests.rateLimited).toBeGreaterThan(0);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'pending' });
  });

  it('records create_failed with Scale’s text on a permanent 400, without retrying', async () => {
    process.env.ROUTING = JSON.stringify({ project: 'scenes-default', routes: [{ prefix: 'lost/', project: 'no-such-project' }] });
    const { handler: otherHandler } = await import('../../lambdas/create-task/handler.js?routing=lost' as string);
    const object = await upload('lost/scene.sfs');
    const requestsBefore = env.scale.state().requests.total;
    const result = await otherHandler(sqsEvent([message([object])]), context);
    expect(result.batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'create_failed', scaleError: { status: 400, message: 'Project "no-such-project" was not found.' } });
    expect(env.scale.state().requests.total).toBe(requestsBefore + 1);
  });

  it.each([
    ['vanished', async () => ({ bucket: 'scenes', key: 'gone/scene.sfs', size: 100, eTag: 'abc123', versionId: 'v-never-seen', sequencer: '0001A22B270DE40000' }), 'deleted before it was processed'],
    ['empty', () => upload('empty/scene.sfs', ''), 'the object is empty (0 bytes)'],
    ['corrupt', () => upload('corrupt/scene.sfs', 'this is not a scene at all'), 'not an .sfs scene: no zero byte within the first 26 bytes'],
    ['invalid header', () => upload('invalid/scene.sfs', encodeSfsToBuffer({ version: '1.0', sensors: [{ id: 'x', type: 'sonar' }] })), 'sensors[0].type: has unknown type "sonar"'],
  ])('records a %s object as rejected, once, and sends nothing to Scale', async (_name, make, reason) => {
    const object = await make();
    const uniqueId = expectedUniqueId(object);
    const result = await handler(sqsEvent([message([object])]), context);
    expect(result.batchItemFailures).toEqual([]);
    expect(await env.reader.get(uniqueId)).toMatchObject({ status: 'rejected', key: object.key, reason: expect.stringContaining(reason) });
    expect(simTasksFor(uniqueId)).toHaveLength(0);
  });

  it('reports only the failed messages of a batch', async () => {
    const good = await upload('batch/good.sfs');
    const rejected = await upload('batch/empty.sfs', '');
    const [ok, garbage, empty] = [message([good]), sqsRecord('this is not an S3 notification'), message([rejected])];
    const result = await handler(sqsEvent([ok, garbage, empty]), context);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: garbage.messageId }]);
    expect(await env.reader.get(expectedUniqueId(good))).toMatchObject({ status: 'pending' });
    expect(await env.reader.get(expectedUniqueId(rejected))).toMatchObject({ status: 'rejected' });
  });

  it('ignores the S3 test event', async () => {
    const result = await handler(sqsEvent([sqsRecord(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'scenes' }))]), context);
    expect(result.batchItemFailures).toEqual([]);
  });
});
