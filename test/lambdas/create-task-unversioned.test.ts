import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSfsToBuffer } from '../../lambdas/core/scenes/sfs/writer.js';
import { s3NotificationBody, sqsEvent, sqsRecord, type S3ObjectEvent } from '../../local/events.js';
import { buildSampleFrame, buildSampleScene } from '../../local/sample-scenes.js';
import { startRecorder } from '../helpers/http.js';
import { expectedUniqueId } from '../helpers/identity.js';
import { startPipelineEnv } from '../helpers/pipeline-env.js';

// An existing bucket that was never versioned (existingScenesBucketName): no versionId anywhere.
let env: Awaited<ReturnType<typeof startPipelineEnv>>;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
const context = { functionName: 'create-task', awsRequestId: 'test', getRemainingTimeInMillis: () => 60_000 } as Context;
const scene = encodeSfsToBuffer(buildSampleScene());

beforeAll(async () => {
  recorder = await startRecorder();
  env = await startPipelineEnv({ callbackUrl: `${recorder.url}/callback`, versioning: 'unversioned' });
  process.env.CANCEL_ON_DELETE = 'false';
  ({ handler } = await import('../../lambdas/create-task/handler.js'));
});
afterAll(async () => {
  await env.close();
  await recorder.close();
});

const deliver = (object: S3ObjectEvent) => handler(sqsEvent([sqsRecord(s3NotificationBody([object]))]), context);
const simTasksFor = (uniqueId: string) => env.scale.state().tasks.filter((t) => t.unique_id === uniqueId);
async function upload(key: string, body: Uint8Array | string = scene) {
  const put = await env.put(key, body);
  expect(put).not.toHaveProperty('versionId');
  return { ...put, uniqueId: expectedUniqueId(put) };
}

describe('create-task on an unversioned bucket', () => {
  it('gives a re-upload of the same bytes its own task, and a redelivery none', async () => {
    const first = await upload('same/scene.sfs');
    await deliver(first);
    await deliver(first);
    const second = await upload('same/scene.sfs');
    expect(second.eTag).toBe(first.eTag);
    expect(second.uniqueId).not.toBe(first.uniqueId);
    await deliver(second);
    await deliver(second);
    expect(simTasksFor(first.uniqueId)).toHaveLength(1);
    expect(simTasksFor(second.uniqueId)).toHaveLength(1);
    // What cannot be pinned is said: the URL names the key, not a version.
    expect(await env.reader.get(second.uniqueId)).toMatchObject({ status: 'pending', sequencer: second.sequencer, attachmentPinned: false });
  });

  it('rejects an upload overwritten before processing under its own id, and the newer upload still gets its task', async () => {
    const older = await upload('overwritten/scene.sfs');
    const newer = await upload('overwritten/scene.sfs', encodeSfsToBuffer(buildSampleScene({ pointsPerFrame: 300 })));
    await deliver(older);
    await deliver(newer);
    expect(await env.reader.get(older.uniqueId)).toMatchObject({ status: 'rejected', eTag: older.eTag, reason: expect.stringContaining('overwritten before it was processed') });
    expect(await env.reader.get(newer.uniqueId)).toMatchObject({ status: 'pending', eTag: newer.eTag });
    expect(simTasksFor(newer.uniqueId)).toHaveLength(1);
  });

  it('gives a manifest re-uploaded unchanged, once its frames exist, the task it was refused before', async () => {
    const manifest = JSON.stringify({ frames: ['0.json', '1.json'] });
    const early = await upload('late-frames/drive.frames.json', manifest);
    await deliver(early);
    expect(await env.reader.get(early.uniqueId)).toMatchObject({ status: 'rejected', reason: expect.stringContaining('2 missing') });
    for (const i of [0, 1]) await env.put(`late-frames/${i}.json`, JSON.stringify(buildSampleFrame(i, 5)));
    const again = await upload('late-frames/drive.frames.json', manifest);
    await deliver(again);
    expect(await env.reader.get(again.uniqueId)).toMatchObject({ status: 'pending', frameCount: 2, attachmentPinned: false });
  });

  it('rejects an upload deleted before processing, and with cancelOnDelete off leaves open tasks alone on delete', async () => {
    const gone = await upload('gone/scene.sfs');
    const removal = await env.remove(gone.key);
    expect(removal).toMatchObject({ eventName: 'ObjectRemoved:Delete' });
    expect(removal).not.toHaveProperty('versionId');
    await deliver(gone);
    expect(await env.reader.get(gone.uniqueId)).toMatchObject({ status: 'rejected', reason: expect.stringContaining('deleted before it was processed') });

    env.scale.configure({ startDelayMs: 10_000 });
    const kept = await upload('kept/scene.sfs');
    await deliver(kept);
    expect((await deliver(await env.remove(kept.key))).batchItemFailures).toEqual([]);
    expect(await env.reader.get(kept.uniqueId)).toMatchObject({ status: 'pending' });
    expect(simTasksFor(kept.uniqueId)[0]!.task.status).toBe('pending');
    env.scale.configure({ startDelayMs: 0 });
  });
});
