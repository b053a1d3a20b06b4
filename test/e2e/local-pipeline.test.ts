import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RATE_ITEM_ID } from '../../lambdas/core/scale/dynamo-rate-store.js';
import { encodeSfsToBuffer, writeSfsFile } from '../../lambdas/core/scenes/sfs/writer.js';
import { documentClient } from '../../lambdas/core/tasks/dynamo-task-store.js';
import { buildBundles } from '../../local/build-bundles.js';
import { LOCAL_CREDENTIALS, startLocalPipeline, type LocalPipeline } from '../../local/pipeline.js';
import { buildSampleFrame, buildSampleScene } from '../../local/sample-scenes.js';
import { eventually } from '../helpers/http.js';
import { expectedCallbackSignature, expectedUniqueId } from '../helpers/identity.js';
import { clientsFor } from '../helpers/local-pipeline.js';

const scene = encodeSfsToBuffer(buildSampleScene({ lidarFrames: 2 }));
let workDir: string;
let bundles: Awaited<ReturnType<typeof buildBundles>>;
let pipeline: LocalPipeline;
let c: ReturnType<typeof clientsFor>;
const logs = { chunks: [] as string[], write(chunk: unknown) { this.chunks.push(String(chunk)); return true; } };

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'e2e-'));
  bundles = await buildBundles(join(workDir, 'bundles'));
  pipeline = await startLocalPipeline({ workDir: join(workDir, 'main'), bundles, logs: logs as never, visibilityTimeoutMs: 500, simulator: { completionDelayMs: 50, callbackRetryDelayMs: 50 } });
  c = clientsFor(pipeline);
}, 60_000);
afterAll(async () => {
  await pipeline?.close();
  await rm(workDir, { recursive: true, force: true });
});

describe('local pipeline, end to end', () => {
  it('takes an upload made with the AWS CLI through to a completed record', async () => {
    const file = join(workDir, 'cli scene.sfs');
    await writeSfsFile(file, buildSampleScene({ seed: 7 }));
    await c.awsCli(['s3', 'cp', file, `s3://${pipeline.info.bucket}/cli/drive 7/scene.sfs`]);
    const event = await eventually(() => pipeline.notified.find((n) => n.key === 'cli/drive 7/scene.sfs'));
    const record = await c.settled(expectedUniqueId(event));
    expect(record).toMatchObject({ status: 'completed', key: 'cli/drive 7/scene.sfs', size: (await stat(file)).size });
    expect(JSON.parse(record.responseJson!)).toMatchObject({ frames: 2 });
  });

  it('takes a multipart upload through, announced as CompleteMultipartUpload', async () => {
    const file = join(workDir, 'big.sfs');
    await writeSfsFile(file, buildSampleScene({ lidarFrames: 10, pointsPerFrame: 120_000 }));
    expect((await stat(file)).size).toBeGreaterThan(12 * 1024 * 1024);
    await c.awsCli(['s3', 'cp', file, `s3://${pipeline.info.bucket}/multipart/big scene.sfs`]);
    const event = await eventually(() => pipeline.notified.find((n) => n.key === 'multipart/big scene.sfs'));
    expect(event.eventName).toBe('ObjectCreated:CompleteMultipartUpload');
    const record = await c.settled(expectedUniqueId(event));
    expect(record.status).toBe('completed');
    expect(c.tasksFor(record.uniqueId)[0]!.downloads).toEqual([expect.objectContaining({ statusCode: 200, bytes: (await stat(file)).size })]);
  }, 60_000);

  it.each([['with spaces/scene one.sfs'], ['plus+signs/a+b.sfs'], ['percent/100%/50%.sfs'], ['unicode/東京/köln é.sfs']])('handles the key %s', async (key) => {
    const object = await c.put(key, scene);
    expect(await c.settled(object.uniqueId)).toMatchObject({ status: 'completed', key });
  });

  it('takes a frame manifest through as a split_base64 task', async () => {
    for (const i of [0, 1, 2]) await c.put(`frames e2e/lidar/${i}.json`, JSON.stringify(buildSampleFrame(i)));
    const object = await c.put('frames e2e/scene.frames.json', JSON.stringify({ frames: ['lidar/0.json', 'lidar/1.json', 'lidar/2.json'] }));
    expect(await c.settled(object.uniqueId)).toMatchObject({ status: 'completed', sceneFormat: 'split_base64', frameCount: 3 });
    expect(c.tasksFor(object.uniqueId)[0]!.downloads.map((d) => d.statusCode)).toEqual([200, 200, 200]);
  });

  it('ignores objects that are not scenes', async () => {
    const sentBefore = pipeline.queue.stats.sent;
    const records = await c.recordCount();
    await c.put('notes/readme.txt', 'not a scene');
    await c.put('notes/scene.sfs.bak', scene);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(pipeline.queue.stats.sent).toBe(sentBefore);
    expect(await c.recordCount()).toBe(records);
  });

  it('rejects a corrupt scene without a Scale task', async () => {
    const object = await c.put('corrupt/scene.sfs', Buffer.from('{"version": "1.0", "sensors": [ oops'));
    const record = await c.settled(object.uniqueId);
    expect(record).toMatchObject({ status: 'rejected', reason: expect.stringContaining('no zero byte') });
    expect(c.tasksFor(object.uniqueId)).toEqual([]);
  });

  it('creates one Scale task when the same object version is delivered twice', async () => {
    const object = await c.put('twice/scene.sfs', scene);
    await c.settled(object.uniqueId);
    const event = pipeline.notified.find((n) => n.key === 'twice/scene.sfs')!;
    pipeline.notify([event]);
    pipeline.notify([event]);
    await pipeline.queue.idle();
    expect(c.tasksFor(object.uniqueId)).toHaveLength(1);
    expect((await c.reader.get(object.uniqueId))?.status).toBe('completed');
  });

  it('refuses a tampered presigned URL with 403 SignatureDoesNotMatch', async () => {
    const object = await c.put('presign/scene.sfs', scene);
    const url = await getSignedUrl(c.s3, new GetObjectCommand({ Bucket: object.bucket, Key: object.key }), { expiresIn: 300 });
    expect((await fetch(url)).status).toBe(200);
    const tampered = url.replace('presign/scene.sfs', 'presign/other.sfs');
    const answer = await fetch(tampered);
    expect(answer.status).toBe(403);
    expect(await answer.text()).toContain('<Code>SignatureDoesNotMatch</Code>');
    const forgedSignature = url.replace(/X-Amz-Signature=[0-9a-f]{4}/, 'X-Amz-Signature=0000');
    expect((await fetch(forgedSignature)).status).toBe(403);
  });

  it('keeps every scene to exactly one task while Scale rate-limits and fails 30 % of creates', async () => {
    pipeline.scale.configure({ rateLimit: { requestsPerSecond: 3, retryAfterSeconds: 1 }, serverErrorRate: 0.3, faultScope: 'create', seed: 42 });
    try {
      const objects = await Promise.all(Array.from({ length: 8 }, (_, i) => c.put(`stress/scene ${i}.sfs`, encodeSfsToBuffer(buildSampleScene({ seed: 100 + i })))));
      const records = await Promise.all(objects.map((o) => c.settled(o.uniqueId, 60_000)));
      expect(records.map((r) => r.status)).toEqual(objects.map(() => 'completed'));
      for (const o of objects) expect(c.tasksFor(o.uniqueId)).toHaveLength(1);
      expect(pipeline.scale.state().requests.injectedErrors).toBeGreaterThan(0);
      expect(pipeline.scale.state().requests.rateLimited).toBeGreaterThan(0);
      // The create-task instances learnt the limit together, in the shared rate table.
      const dynamo = new DynamoDBClient({ region: pipeline.info.region, endpoint: pipeline.info.dynamodbEndpoint, credentials: LOCAL_CREDENTIALS });
      const { Item } = await documentClient(dynamo).send(new GetCommand({ TableName: pipeline.info.rateTable, Key: { id: RATE_ITEM_ID } }));
      dynamo.destroy();
      expect(pipeline.info.rateTable).toBe('scale-rate');
      expect(Item?.epoch).toBeGreaterThanOrEqual(1);
    } finally {
      pipeline.scale.configure({ rateLimit: null, serverErrorRate: 0 });
    }
  }, 90_000);

  it('refuses forged callbacks as API Gateway does (401 without an identity, 403 from the authorizer) and writes nothing', async () => {
    const object = await c.put('forged/scene.sfs', scene);
    const before = await c.settled(object.uniqueId);
    await pipeline.callbackQueue.idle();
    const body = JSON.stringify({ task_id: before.taskId, status: 'error', task: { task_id: before.taskId, status: 'error', updated_at: '2099-01-01T00:00:00Z' }, response: { error: 'forged' } });
    const post = (query: string, auth?: string) =>
      fetch(`${pipeline.info.callbackUrl}?${query}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { 'scale-callback-auth': auth } : {}) }, body });
    const goodSig = expectedCallbackSignature(object.uniqueId, pipeline.secrets.signingKey);
    const authorizerCalls = pipeline.pools.callbackAuth.invocations;
    // A missing identity source never reaches the authorizer.
    expect((await post(`ref=${object.uniqueId}&sig=${goodSig}`)).status).toBe(401); // no header
    expect((await post(`ref=${object.uniqueId}`, pipeline.secrets.callbackAuthKey)).status).toBe(401); // no sig
    expect(pipeline.pools.callbackAuth.invocations).toBe(authorizerCalls);
    // Complete identities the authorizer denies.
    const wrongKey = await post(`ref=${object.uniqueId}&sig=${goodSig}`, 'guessed-key');
    expect(wrongKey.status).toBe(403);
    expect(await wrongKey.json()).toEqual({ Message: 'User is not authorized to access this resource with an explicit deny' });
    expect((await post(`ref=${object.uniqueId}&sig=${expectedCallbackSignature(object.uniqueId, 'guessed')}`, pipeline.secrets.callbackAuthKey)).status).toBe(403);
    expect(pipeline.pools.callbackAuth.invocations).toBe(authorizerCalls + 2);
    expect(await c.reader.get(object.uniqueId)).toEqual(before);
    expect(await c.archived(`callbacks/${object.uniqueId}/`)).toHaveLength(1);
  });
});

describe('local pipeline with presigned URLs S3 refuses', () => {
  it('records the error Scale reports when it cannot download the attachment', async () => {
    const broken = await startLocalPipeline({
      workDir: join(workDir, 'broken'),
      bundles,
      logs: logs as never,
      functionCredentials: { ...LOCAL_CREDENTIALS, secretAccessKey: 'not-the-secret' },
      simulator: { completionDelayMs: 50, callbackRetryDelayMs: 50 },
    });
    try {
      const bc = clientsFor(broken);
      const object = await bc.put('bad-url/scene.sfs', scene);
      const record = await bc.settled(object.uniqueId);
      expect(record.status).toBe('error');
      expect(JSON.parse(record.responseJson!)).toEqual({
        error: 'One or more attachments could not be downloaded.',
        attachments: [{ statusCode: 403, url: expect.stringContaining('bad-url/scene.sfs') }],
      });
    } finally {
      await broken.close();
    }
  }, 60_000);
});
