import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { sqsEvent, sqsRecord } from '../../local/events.js';
import { closedPort } from '../helpers/http.js';
import { startPipelineEnv } from '../helpers/pipeline-env.js';

// The callback function applies what API Gateway stored in the results bucket; here the test stores it, as the
// S3 integration would, and hands the function the bucket's own notification.
type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
let env: Awaited<ReturnType<typeof startPipelineEnv>>;
let handler: Handler;
let logger: Logger;
const context = { functionName: 'callback', awsRequestId: 'test', getRemainingTimeInMillis: () => 30_000 } as Context;

beforeAll(async () => {
  env = await startPipelineEnv({ callbackUrl: 'http://127.0.0.1:9/callback' }); // never called here
  ({ handler } = await import('../../lambdas/callback/handler.js'));
  // The handler's own logger, made after the environment is set.
  ({ logger } = await import('../../lambdas/core/shared/logger.js'));
});
afterAll(() => env.close());
afterEach(() => vi.restoreAllMocks());

let n = 0;
const newRef = () => `sfs-${(++n).toString(16).padStart(40, '0')}`;
const taskIdFor = (ref: string) => ref.slice(-24);

function body(ref: string, status: string, updatedAt: string, extra: { response?: unknown; completedAt?: string; audits?: unknown[] } = {}) {
  const task = {
    task_id: taskIdFor(ref),
    status,
    type: 'multistage',
    created_at: '2026-11-01T00:00:00.000Z',
    updated_at: updatedAt,
    completed_at: extra.completedAt ?? (status === 'completed' ? updatedAt : null),
    params: { attachments: ['http://127.0.0.1:9/scene.sfs'], scene_format: 'sensor_fusion' },
    metadata: { source: { bucket: 'scenes', key: 'dir/scene one.sfs', versionId: 'v1', eTag: 'etag1', sequencer: '0001A', size: 1234 } },
    unique_id: ref,
    project: 'scenes-default',
    audits: extra.audits ?? [],
    response: extra.response,
  };
  return JSON.stringify({ task, response: extra.response, task_id: task.task_id, status });
}

/** Stores a body as API Gateway does and returns the bucket's notification for it, as an SQS message. */
async function stored(ref: string, text: string, key = `callbacks/${ref}/${randomUUID()}.json`) {
  await env.s3Client.send(new PutObjectCommand({ Bucket: 'results', Key: key, Body: text, ContentType: 'application/json' }));
  const record = env.s3Events.filter((r) => r.s3.bucket.name === 'results' && decodeURIComponent(r.s3.object.key) === key).at(-1)!;
  return { key, message: sqsRecord(JSON.stringify({ Records: [record] })) };
}

async function apply(ref: string, text: string) {
  // S3 stamps event times to the millisecond: keep arrivals apart, so "arrival" is unambiguous here.
  await new Promise((resolve) => setTimeout(resolve, 3));
  const { key, message } = await stored(ref, text);
  const result = await handler(sqsEvent([message]), context);
  return { key, message, result };
}

describe('callback function: applying stored callbacks', () => {
  it('applies a completed callback and points the record at the stored body', async () => {
    const ref = newRef();
    expect(await env.store.startSubmission({ uniqueId: ref, bucket: 'scenes', key: 'dir/scene one.sfs', eTag: 'etag1', size: 1234, sceneFormat: 'sensor_fusion', project: 'scenes-default' }, 'claim-1', '2026-11-01T00:00:00.000Z')).toBe('started');
    expect(await env.store.recordSubmitted(ref, { taskId: taskIdFor(ref), attachmentPinned: true, adopted: false }, '2026-11-01T00:00:01.000Z')).toBe('recorded');
    const { key, result } = await apply(ref, body(ref, 'completed', '2026-11-02T10:00:00.000Z', { response: { annotations: { cuboids: 12 } } }));
    expect(result.batchItemFailures).toEqual([]);
    expect(await env.reader.get(ref)).toMatchObject({
      status: 'completed',
      scaleStatus: 'completed',
      taskId: taskIdFor(ref),
      scaleUpdatedAt: '2026-11-02T10:00:00.000Z',
      completedAt: '2026-11-02T10:00:00.000Z',
      callbackCount: 1,
      responseJson: JSON.stringify({ annotations: { cuboids: 12 } }),
      createdAt: '2026-11-01T00:00:00.000Z',
      lastCallbackArchive: { bucket: 'results', key },
    });
  });

  it('changes nothing for an exact duplicate, but counts it', async () => {
    const ref = newRef();
    const text = body(ref, 'completed', '2026-11-02T10:00:00.000Z', { response: { n: 1 } });
    const first = await apply(ref, text);
    const before = await env.reader.get(ref);
    await apply(ref, text);
    const after = await env.reader.get(ref);
    expect(after).toMatchObject({ callbackCount: 2, lastCallbackArchive: { key: first.key } });
    expect({ ...after, callbackCount: 0, lastCallbackAt: '', updatedAt: '' }).toEqual({ ...before, callbackCount: 0, lastCallbackAt: '', updatedAt: '' });
  });

  it('ignores an older callback that arrives after a newer one', async () => {
    const ref = newRef();
    await apply(ref, body(ref, 'completed', '2026-11-02T12:00:00.000Z', { response: { audited: true } }));
    await apply(ref, body(ref, 'error', '2026-11-02T09:00:00.000Z', { response: { error: 'old' } }));
    expect(await env.reader.get(ref)).toMatchObject({ status: 'completed', responseJson: JSON.stringify({ audited: true }), scaleUpdatedAt: '2026-11-02T12:00:00.000Z' });
  });

  it('keeps both of two different callbacks with the same updated_at and chooses by status rank, then arrival', async () => {
    const at = '2026-11-02T10:00:00.000Z';
    // A recall at the same instant as the completion, arriving first: the recall (pending) still wins.
    const recalled = newRef();
    const recall = await apply(recalled, body(recalled, 'pending', at));
    const completion = await apply(recalled, body(recalled, 'completed', at, { response: { n: 1 } }));
    expect(await env.reader.get(recalled)).toMatchObject({ status: 'pending', callbackCount: 2, lastCallbackArchive: { key: recall.key } });
    expect(completion.result.batchItemFailures).toEqual([]);
    // Same status and instant, different content: an audit (more audits is later in a task's life) wins, even
    // when Scale retries the older body after it; every body stays stored.
    const audited = newRef();
    const plain = body(audited, 'completed', at, { response: { v: 'first' } });
    await apply(audited, plain);
    const second = await apply(audited, body(audited, 'completed', at, { response: { v: 'audited' }, audits: [{ action: 'approved' }] }));
    await apply(audited, plain);
    expect(await env.reader.get(audited)).toMatchObject({ status: 'completed', responseJson: JSON.stringify({ v: 'audited' }), lastCallbackArchive: { key: second.key } });
    const listed = await env.s3Client.send(new ListObjectsV2Command({ Bucket: 'results', Prefix: `callbacks/${audited}/` }));
    expect(listed.Contents).toHaveLength(3);
    // Same status, instant and audits, different content: the later arrival wins.
    const arrival = newRef();
    await apply(arrival, body(arrival, 'error', at, { response: { v: 'one' } }));
    await apply(arrival, body(arrival, 'error', at, { response: { v: 'two' } }));
    expect(await env.reader.get(arrival)).toMatchObject({ status: 'error', responseJson: JSON.stringify({ v: 'two' }) });
  });

  it('applies a whole batch for several tasks, failing only the record that is not a notification', async () => {
    const [one, two] = [newRef(), newRef()];
    const messages = [];
    for (const text of [
      body(one, 'completed', '2026-11-02T10:00:00.000Z', { response: { n: 1 } }),
      body(two, 'completed', '2026-11-02T10:00:00.000Z', { response: { n: 2 } }),
      body(one, 'pending', '2026-11-03T10:00:00.000Z'),
      body(two, 'completed', '2026-11-02T10:00:00.000Z', { response: { n: 2 } }),
    ]) {
      await new Promise((resolve) => setTimeout(resolve, 3));
      messages.push((await stored(JSON.parse(text).task.unique_id as string, text)).message);
    }
    const broken = sqsRecord('not a notification');
    const result = await handler(sqsEvent([messages[0]!, messages[1]!, broken, messages[2]!, messages[3]!]), context);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: broken.messageId }]);
    expect(await env.reader.get(one)).toMatchObject({ status: 'pending', scaleUpdatedAt: '2026-11-03T10:00:00.000Z', callbackCount: 2 });
    // The second of two identical bodies changed nothing but the count.
    expect(await env.reader.get(two)).toMatchObject({ status: 'completed', responseJson: JSON.stringify({ n: 2 }), callbackCount: 2 });
  });

  it('follows a recall from completed back to pending', async () => {
    const ref = newRef();
    await apply(ref, body(ref, 'completed', '2026-11-02T10:00:00.000Z', { response: { n: 1 } }));
    await apply(ref, body(ref, 'pending', '2026-11-03T10:00:00.000Z'));
    const record = await env.reader.get(ref);
    expect(record).toMatchObject({ status: 'pending', scaleUpdatedAt: '2026-11-03T10:00:00.000Z', callbackCount: 2 });
    expect(record!.completedAt).toBeUndefined();
    expect(record!.responseJson).toBeUndefined();
  });

  it("orders by the task's updated_at, not completed_at, and records completed_at as the completion time", async () => {
    // Audited at 12:00 after completing at 10:00, against a body completed (and last updated) at 11:00.
    const audited = (ref: string) => body(ref, 'completed', '2026-11-02T12:00:00.000Z', { completedAt: '2026-11-02T10:00:00.000Z', response: { v: 'audited' } });
    const earlier = (ref: string) => body(ref, 'completed', '2026-11-02T11:00:00.000Z', { completedAt: '2026-11-02T11:00:00.000Z', response: { v: 'earlier' } });
    for (const [name, first, second] of [['audited first', audited, earlier], ['audited last', earlier, audited]] as const) {
      const ref = newRef();
      await apply(ref, first(ref));
      await apply(ref, second(ref));
      expect(await env.reader.get(ref), name).toMatchObject({
        status: 'completed',
        scaleUpdatedAt: '2026-11-02T12:00:00.000Z',
        completedAt: '2026-11-02T10:00:00.000Z',
        responseJson: JSON.stringify({ v: 'audited' }),
        callbackCount: 2,
      });
    }
  });

  it("never applies a callback to a record whose task it does not name", async () => {
    // Ids that disagree within one body: refused, even while the record has no task yet to compare with.
    const racing = newRef();
    await env.store.startSubmission({ uniqueId: racing, bucket: 'scenes', key: 'dir/racing.sfs', eTag: 'e', sequencer: '0001B', size: 10, sceneFormat: 'sensor_fusion', project: 'scenes-default' }, 'claim-1', '2026-11-01T00:00:00.000Z');
    const disagreeing = JSON.parse(body(racing, 'completed', '2026-11-02T10:00:00.000Z', { response: { n: 1 } })) as { task_id: string };
    disagreeing.task_id = 'some-other-task';
    const errors = vi.spyOn(logger, 'error');
    const refused = await apply(racing, JSON.stringify(disagreeing));
    expect(refused.result.batchItemFailures).toEqual([]);
    expect(errors).toHaveBeenCalledWith('callback body refused', expect.objectContaining({ callbackRefusal: 'body', key: refused.key, reason: `task_id some-other-task differs from task.task_id ${taskIdFor(racing)}` }));
    const untouched = await env.reader.get(racing);
    expect(untouched).toMatchObject({ status: 'submitting', claimId: 'claim-1' });
    expect(untouched).not.toHaveProperty('taskId');
    expect(untouched).not.toHaveProperty('callbackCount');

    // Agreeing ids, but another task than the record's (its URL was reused): counted, never applied.
    const ref = newRef();
    const own = await apply(ref, body(ref, 'completed', '2026-11-02T10:00:00.000Z', { response: { own: true } }));
    expect(own.result.batchItemFailures).toEqual([]);
    const foreign = JSON.parse(body(ref, 'error', '2026-11-03T10:00:00.000Z', { response: { error: 'not yours' } })) as { task_id: string; task: { task_id: string } };
    foreign.task_id = foreign.task.task_id = 'another-task-entirely';
    await apply(ref, JSON.stringify(foreign));
    expect(await env.reader.get(ref)).toMatchObject({
      status: 'completed',
      taskId: taskIdFor(ref),
      scaleUpdatedAt: '2026-11-02T10:00:00.000Z',
      responseJson: JSON.stringify({ own: true }),
      lastCallbackArchive: { key: own.key },
      callbackCount: 2,
    });
  });

  it('keeps a large response where it was stored and points to it', async () => {
    const ref = newRef();
    const { key } = await apply(ref, body(ref, 'completed', '2026-11-02T10:00:00.000Z', { response: { points: 'p'.repeat(400 * 1024) } }));
    const record = await env.reader.get(ref);
    expect(record!.responseJson).toBeUndefined();
    expect(record!.responseRef).toEqual({ bucket: 'results', key });
  });

  it('keeps a response too deeply nested to write out again where it was stored', async () => {
    const ref = newRef();
    // 20,000 nested arrays: JSON.parse reads it, JSON.stringify overflows the stack on it.
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const text = `${body(ref, 'completed', '2026-11-02T10:00:00.000Z').slice(0, -1)},"response":${deep}}`;
    const { key, result } = await apply(ref, text);
    expect(result.batchItemFailures).toEqual([]);
    expect(await env.reader.get(ref)).toMatchObject({ status: 'completed', responseRef: { bucket: 'results', key } });
  });

  it('rebuilds a lost create-side record from the task metadata', async () => {
    const ref = newRef();
    await apply(ref, body(ref, 'error', '2026-11-02T10:00:00.000Z', { response: { error: 'One or more attachments could not be downloaded.' } }));
    expect(await env.reader.get(ref)).toMatchObject({ schemaVersion: 1, uniqueId: ref, status: 'error', bucket: 'scenes', key: 'dir/scene one.sfs', versionId: 'v1', sequencer: '0001A', project: 'scenes-default' });
    expect(await env.reader.getByTaskId(taskIdFor(ref))).toMatchObject({ uniqueId: ref });
  });
});

describe('callback function: what it refuses', () => {
  it.each([
    ['not JSON', '{"task_id": ', 'body is not valid JSON'],
    ['not a callback', JSON.stringify({ status: 'completed', task: { status: 'completed' } }), 'task_id: expected string'],
    ['an unknown status', undefined, 'unknown task status "exploded"'],
  ])('refuses a body that is %s without retrying it, keeping it stored', async (_name, text, reason) => {
    const errors = vi.spyOn(logger, 'error');
    const ref = newRef();
    const { key, result } = await apply(ref, text ?? body(ref, 'exploded', '2026-11-02T00:00:00.000Z'));
    expect(result.batchItemFailures).toEqual([]);
    expect(errors).toHaveBeenCalledWith('callback body refused', expect.objectContaining({ callbackRefusal: 'body', key, reason: expect.stringContaining(reason) }));
    expect(await env.reader.get(ref)).toBeUndefined();
    const listed = await env.s3Client.send(new ListObjectsV2Command({ Bucket: 'results', Prefix: `callbacks/${ref}/` }));
    expect(listed.Contents).toHaveLength(1);
  });

  it('ignores objects that are not stored callbacks', async () => {
    const { message } = await stored('x', body(newRef(), 'completed', '2026-11-02T00:00:00.000Z'), 'callbacks/not-a-ref/x.json');
    expect((await handler(sqsEvent([message]), context)).batchItemFailures).toEqual([]);
  });

  it('fails the message (so it is retried, then dead-lettered) when DynamoDB is down', async () => {
    const saved = process.env.AWS_ENDPOINT_URL_DYNAMODB;
    process.env.AWS_ENDPOINT_URL_DYNAMODB = `http://127.0.0.1:${await closedPort()}`;
    const { handler: downHandler } = (await import('../../lambdas/callback/handler.js?dynamo=down' as string)) as { handler: Handler };
    const ref = newRef();
    const { message } = await stored(ref, body(ref, 'completed', '2026-11-02T10:00:00.000Z'));
    const result = await downHandler(sqsEvent([message]), context).finally(() => (process.env.AWS_ENDPOINT_URL_DYNAMODB = saved));
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: message.messageId }]);
    expect(await env.reader.get(ref)).toBeUndefined();
  });
});
