import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { clearCaches } from '@aws-lambda-powertools/parameters';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signCallbackRef } from '../../lambdas/core/scene-identity.js';
import { callbackEvent } from '../../local/events.js';
import { closedPort } from '../helpers/http.js';
import { SECRETS, startPipelineEnv } from '../helpers/pipeline-env.js';

type Handler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;
let env: Awaited<ReturnType<typeof startPipelineEnv>>;
let handler: Handler;
const context = { functionName: 'callback', awsRequestId: 'test' } as Context;

beforeAll(async () => {
  env = await startPipelineEnv({ callbackUrl: 'http://127.0.0.1:9/callback' }); // never called here
  ({ handler } = await import('../../lambdas/callback/handler.js'));
});
afterAll(() => env.close());

let n = 0;
const newRef = () => `sfs-${(++n).toString(16).padStart(40, '0')}`;
const taskIdFor = (ref: string) => ref.slice(-24);

function body(ref: string, status: string, updatedAt: string, extra: { response?: unknown; completedAt?: string; metadata?: unknown } = {}) {
  const task = {
    task_id: taskIdFor(ref),
    status,
    type: 'multistage',
    created_at: '2026-11-01T00:00:00.000Z',
    updated_at: updatedAt,
    completed_at: extra.completedAt ?? (status === 'completed' ? updatedAt : null),
    params: { attachments: ['http://127.0.0.1:9/scene.sfs'], scene_format: 'sensor_fusion' },
    metadata: extra.metadata ?? { source: { bucket: 'scenes', key: 'dir/scene one.sfs', eTag: 'etag1', size: 1234 } },
    unique_id: ref,
    project: 'scenes-default',
    response: extra.response,
  };
  return JSON.stringify({ task, response: extra.response, task_id: task.task_id, status });
}

function call(ref: string, text: string, options: { auth?: string | null; sig?: string } = {}) {
  const headers: Record<string, string> = options.auth === null ? {} : { 'Scale-Callback-Auth': options.auth ?? SECRETS.callbackAuthKey };
  return handler(callbackEvent({ body: text, headers, query: { ref, sig: options.sig ?? signCallbackRef(ref, SECRETS.signingKey) } }), context);
}

async function archived(ref: string): Promise<string[]> {
  const list = await env.s3Client.send(new ListObjectsV2Command({ Bucket: 'results', Prefix: `callbacks/${ref}/` }));
  return (list.Contents ?? []).map((o) => o.Key!);
}

describe('callback handler: authentication', () => {
  it.each([
    ['a missing auth header', { auth: null }],
    ['a wrong auth header', { auth: 'not-the-key' }],
    ['a wrong signature', { sig: signCallbackRef('another-ref', SECRETS.signingKey) }],
    ['a signature under another key', { sig: 'AAAA' }],
  ])('answers 401 to %s and writes nothing', async (_name, options) => {
    const ref = newRef();
    const answer = await call(ref, body(ref, 'completed', '2026-11-02T00:00:00.000Z'), options);
    expect(answer.statusCode).toBe(401);
    expect(answer.body).not.toContain(SECRETS.callbackAuthKey);
    expect(await env.reader.get(ref)).toBeUndefined();
    expect(await archived(ref)).toEqual([]);
  });

  it('answers 401 when the URL has no ref or sig', async () => {
    const answer = await handler(callbackEvent({ body: '{}', headers: { 'scale-callback-auth': SECRETS.callbackAuthKey } }), context);
    expect(answer.statusCode).toBe(401);
  });
});

describe('callback handler: bad bodies', () => {
  it('answers 400 to a body that is not JSON, and stores nothing', async () => {
    const ref = newRef();
    const answer = await call(ref, '{"task_id": ');
    expect(answer).toMatchObject({ statusCode: 400, body: JSON.stringify({ error: 'body is not valid JSON' }) });
    expect(await archived(ref)).toEqual([]);
  });

  it('answers 400 naming what is wrong with a body that is not a callback', async () => {
    const ref = newRef();
    const answer = await call(ref, JSON.stringify({ status: 'completed', task: { status: 'completed' } }));
    expect(answer.statusCode).toBe(400);
    expect(JSON.parse(answer.body).error).toMatch(/task_id: expected string.*task\.task_id: expected string/);
    expect(await env.reader.get(ref)).toBeUndefined();
  });

  it('answers 400 to an unknown status', async () => {
    const ref = newRef();
    const answer = await call(ref, body(ref, 'exploded', '2026-11-02T00:00:00.000Z'));
    expect(answer.statusCode).toBe(400);
    expect(JSON.parse(answer.body).error).toContain('unknown task status "exploded"');
  });

  it('answers 413 to an oversized body, and stores nothing', async () => {
    const ref = newRef();
    const answer = await call(ref, body(ref, 'completed', '2026-11-02T00:00:00.000Z', { response: { blob: 'x'.repeat(5 * 1024 * 1024) } }));
    expect(answer.statusCode).toBe(413);
    expect(await archived(ref)).toEqual([]);
    expect(await env.reader.get(ref)).toBeUndefined();
  });
});

describe('callback handler: applying results', () => {
  it('archives a completed callback and stores its result', async () => {
    const ref = newRef();
    await env.store.startSubmission({ uniqueId: ref, bucket: 'scenes', key: 'dir/scene one.sfs', eTag: 'etag1', size: 1234, sceneFormat: 'sensor_fusion', project: 'scenes-default' }, 'claim-1', '2026-11-01T00:00:00.000Z');
    await env.store.recordSubmitted(ref, { taskId: taskIdFor(ref), attachmentExpiresAt: '2026-11-01T06:00:00.000Z', attachmentPinned: false, adopted: false }, '2026-11-01T00:00:01.000Z');
    const text = body(ref, 'completed', '2026-11-02T10:00:00.000Z', { response: { annotations: { cuboids: 12 } } });
    const answer = await call(ref, text);
    expect(answer).toMatchObject({ statusCode: 200, body: JSON.stringify({ ok: true, applied: true }) });

    const record = await env.reader.get(ref);
    expect(record).toMatchObject({
      status: 'completed',
      scaleStatus: 'completed',
      taskId: taskIdFor(ref),
      scaleUpdatedAt: '2026-11-02T10:00:00.000Z',
      completedAt: '2026-11-02T10:00:00.000Z',
      callbackCount: 1,
      responseJson: JSON.stringify({ annotations: { cuboids: 12 } }),
      createdAt: '2026-11-01T00:00:00.000Z',
      attachmentExpiresAt: '2026-11-01T06:00:00.000Z',
    });
    const [key] = await archived(ref);
    expect(key).toMatch(new RegExp(`^callbacks/${ref}/.*-completed\\.json$`));
    expect(record!.lastCallbackArchive).toEqual({ bucket: 'results', key });
    const object = await env.s3Client.send(new GetObjectCommand({ Bucket: 'results', Key: key }));
    expect(await object.Body!.transformToString()).toBe(text);
  });

  it('is idempotent for a duplicate callback', async () => {
    const ref = newRef();
    const text = body(ref, 'completed', '2026-11-02T10:00:00.000Z', { response: { n: 1 } });
    await call(ref, text);
    const first = await env.reader.get(ref);
    const again = await call(ref, text);
    expect(again).toMatchObject({ statusCode: 200, body: JSON.stringify({ ok: true, applied: false }) });
    const second = await env.reader.get(ref);
    expect({ ...second, callbackCount: 0, lastCallbackAt: '', updatedAt: '' }).toEqual({ ...first, callbackCount: 0, lastCallbackAt: '', updatedAt: '' });
    expect(second!.callbackCount).toBe(2);
  });

  it('ignores an older callback that arrives after a newer one', async () => {
    const ref = newRef();
    await call(ref, body(ref, 'completed', '2026-11-02T12:00:00.000Z', { response: { audited: true } }));
    const late = await call(ref, body(ref, 'error', '2026-11-02T09:00:00.000Z', { response: { error: 'old' } }));
    expect(late.statusCode).toBe(200);
    expect(await env.reader.get(ref)).toMatchObject({ status: 'completed', responseJson: JSON.stringify({ audited: true }), scaleUpdatedAt: '2026-11-02T12:00:00.000Z' });
  });

  it('follows a recall from completed back to pending', async () => {
    const ref = newRef();
    await call(ref, body(ref, 'completed', '2026-11-02T10:00:00.000Z', { response: { n: 1 } }));
    await call(ref, body(ref, 'pending', '2026-11-03T10:00:00.000Z'));
    const record = await env.reader.get(ref);
    expect(record).toMatchObject({ status: 'pending', scaleUpdatedAt: '2026-11-03T10:00:00.000Z', callbackCount: 2 });
    expect(record!.completedAt).toBeUndefined();
    expect(record!.responseJson).toBeUndefined();
  });

  it('keeps a large response in the archive and points to it', async () => {
    const ref = newRef();
    const response = { points: 'p'.repeat(400 * 1024) };
    expect((await call(ref, body(ref, 'completed', '2026-11-02T10:00:00.000Z', { response }))).statusCode).toBe(200);
    const record = await env.reader.get(ref);
    const [key] = await archived(ref);
    expect(record!.responseJson).toBeUndefined();
    expect(record!.responseRef).toEqual({ bucket: 'results', key });
    const object = await env.s3Client.send(new GetObjectCommand({ Bucket: 'results', Key: key }));
    expect(JSON.parse(await object.Body!.transformToString()).response).toEqual(response);
  });

  it('rebuilds a lost create-side record from the task metadata', async () => {
    const ref = newRef();
    await call(ref, body(ref, 'error', '2026-11-02T10:00:00.000Z', { response: { error: 'One or more attachments could not be downloaded.' } }));
    expect(await env.reader.get(ref)).toMatchObject({
      schemaVersion: 1,
      uniqueId: ref,
      status: 'error',
      bucket: 'scenes',
      key: 'dir/scene one.sfs',
      eTag: 'etag1',
      size: 1234,
      project: 'scenes-default',
      sceneFormat: 'sensor_fusion',
    });
    expect(await env.reader.getByTaskId(taskIdFor(ref))).toMatchObject({ uniqueId: ref });
  });

  it('answers 5xx when DynamoDB is down, after archiving, so Scale retries', async () => {
    const saved = process.env.AWS_ENDPOINT_URL_DYNAMODB;
    process.env.AWS_ENDPOINT_URL_DYNAMODB = `http://127.0.0.1:${await closedPort()}`;
    const { handler: downHandler } = (await import('../../lambdas/callback/handler.js?dynamo=down' as string)) as { handler: Handler };
    const ref = newRef();
    const answer = await downHandler(
      callbackEvent({ body: body(ref, 'completed', '2026-11-02T10:00:00.000Z'), headers: { 'scale-callback-auth': SECRETS.callbackAuthKey }, query: { ref, sig: signCallbackRef(ref, SECRETS.signingKey) } }),
      context,
    ).finally(() => (process.env.AWS_ENDPOINT_URL_DYNAMODB = saved));
    expect(answer.statusCode).toBe(500);
    expect(await archived(ref)).toHaveLength(1);
    expect(await env.reader.get(ref)).toBeUndefined();
  });

  it('answers 503 while its secrets cannot be read', async () => {
    env.secrets.setAvailable(false);
    clearCaches(); // a cold function: nothing cached from earlier calls
    const { handler: fresh } = (await import('../../lambdas/callback/handler.js?secrets=down' as string)) as { handler: Handler };
    const ref = newRef();
    const answer = await fresh(callbackEvent({ body: body(ref, 'completed', '2026-11-02T10:00:00.000Z'), headers: { 'scale-callback-auth': SECRETS.callbackAuthKey }, query: { ref, sig: signCallbackRef(ref, SECRETS.signingKey) } }), context);
    env.secrets.setAvailable(true);
    expect(answer.statusCode).toBe(503);
  });
});
