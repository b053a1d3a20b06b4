import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSfsToBuffer } from '../../lambdas/core/scenes/sfs/writer.js';
import { documentClient, DynamoTaskStore } from '../../lambdas/core/tasks/dynamo-task-store.js';
import type { TaskRecord } from '../../lambdas/core/tasks/task-record.js';
import { startLocalPipeline, type LocalPipeline } from '../../local/pipeline.js';
import { buildSampleScene } from '../../local/sample-scenes.js';
import { eventually } from '../helpers/http.js';
import { expectedCallbackSignature } from '../helpers/identity.js';
import { clientsFor } from '../helpers/local-pipeline.js';

// Scale never calls back (dropCallbacks: 1): only the reconciler, run on demand, brings its states home.
const scene = encodeSfsToBuffer(buildSampleScene());
let workDir: string;
let pipeline: LocalPipeline;
let c: ReturnType<typeof clientsFor>;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'e2e-reconcile-'));
  pipeline = await startLocalPipeline({
    workDir,
    logs: { write: () => true } as never,
    visibilityTimeoutMs: 500,
    simulator: { completionDelayMs: 50, dropCallbacks: 1 },
    // On demand only: the schedule must not run between a test's steps.
    reconcileEveryMs: 3_600_000,
    reconcileAfterMinutes: 0,
  });
  c = clientsFor(pipeline);
}, 60_000);
afterAll(async () => {
  await pipeline?.close();
  await rm(workDir, { recursive: true, force: true });
});

type Report = { checked: number; missingStates: number; resubmitted: number; adopted: number };
async function reconcileOverHttp(): Promise<Report> {
  const answer = await fetch(`${pipeline.info.controlUrl}/reconcile`, { method: 'POST' });
  expect(answer.status).toBe(200);
  return (await answer.json()) as Report;
}

/** Reconciles until the record is completed (Scale may still be working on the task at the first run). */
async function reconciledToCompletion(uniqueId: string): Promise<TaskRecord> {
  return eventually(async () => {
    await reconcileOverHttp();
    const record = await eventually(async () => c.reader.get(uniqueId), 5_000, 'the record');
    return record.status === 'completed' ? record : undefined;
  }, 30_000, `${uniqueId} to complete through reconciliation`);
}

describe('reconciliation in the local pipeline', () => {
  it('submits again, as a new task, an upload whose task could not download its attachment, and keeps the old task', async () => {
    pipeline.scale.configure({ failNextDownloads: 1 });
    const upload = await c.put('reconcile/expired url.sfs', scene);
    // The task errors (an expired URL, as Scale reports it); its callback is dropped, so reconciling brings it home…
    await eventually(() => (c.tasksFor(upload.uniqueId)[0]?.status === 'error' ? true : undefined), 20_000, 'the task to error');
    expect((await reconcileOverHttp()).missingStates).toBeGreaterThanOrEqual(1);
    const errored = await eventually(async () => {
      const record = await c.reader.get(upload.uniqueId);
      return record?.status === 'error' ? record : undefined;
    }, 20_000, 'the error to be recorded');
    // …and the next run resubmits it: a second task, which completes.
    const report = (await reconcileOverHttp()) as Report & { retriedErrors: number };
    expect(report.retriedErrors).toBe(1);
    const completed = await reconciledToCompletion(upload.uniqueId);
    const tasks = c.tasksFor(upload.uniqueId);
    expect(tasks.map((t) => t.status)).toEqual(['error', 'completed']);
    expect(completed).toMatchObject({ previousTaskIds: [errored.taskId], resubmissions: 1, taskId: tasks[1]!.task.task_id });
  }, 60_000);


  it('completes uploads whose callbacks Scale never sends, with one Scale task each', async () => {
    const uploads = [await c.put('reconcile/a.sfs', scene), await c.put('reconcile/b.sfs', scene)];
    // Both tasks complete at Scale; not one callback is sent.
    await eventually(() => (uploads.every((u) => c.tasksFor(u.uniqueId)[0]?.status === 'completed') ? true : undefined), 20_000, 'Scale to complete both');
    for (const u of uploads) expect((await c.reader.get(u.uniqueId))?.status).toBe('pending');

    const report = await reconcileOverHttp();
    expect(report.missingStates).toBeGreaterThanOrEqual(2);
    for (const u of uploads) {
      const record = await reconciledToCompletion(u.uniqueId);
      expect(record.taskId).toBe(c.tasksFor(u.uniqueId)[0]!.task.task_id);
      expect(c.tasksFor(u.uniqueId)).toHaveLength(1);
      expect(c.tasksFor(u.uniqueId)[0]!.callbacks).toEqual([expect.objectContaining({ dropped: true, attempts: [] })]);
    }
    expect(pipeline.pools.reconcile.invocations).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('a callback arriving after reconciliation changes neither status nor response', async () => {
    const upload = await c.put('reconcile/late.sfs', scene);
    await eventually(() => (c.tasksFor(upload.uniqueId)[0]?.status === 'completed' ? true : undefined), 20_000, 'Scale to complete');
    const before = await reconciledToCompletion(upload.uniqueId);
    const task = c.tasksFor(upload.uniqueId)[0]!.task;
    // The completion body Scale would have sent, sent by hand now, signed as create-task signs the callback URL.
    const body = JSON.stringify({ task, response: task.response, task_id: task.task_id, status: task.status });
    const query = new URLSearchParams({ ref: upload.uniqueId, sig: expectedCallbackSignature(upload.uniqueId, pipeline.secrets.signingKey) });
    const applied = pipeline.pools.callback.invocations;
    const answer = await fetch(`${pipeline.info.callbackUrl}?${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'scale-callback-auth': pipeline.secrets.callbackAuthKey },
      body,
    });
    expect(answer.status).toBe(200);
    await eventually(() => (pipeline.pools.callback.invocations > applied ? true : undefined), 10_000, 'the late callback to be processed');
    await pipeline.callbackQueue.idle();
    const after = await c.reader.get(upload.uniqueId);
    expect(after?.status).toBe('completed');
    expect(before.responseJson).toEqual(expect.stringContaining('"frames"'));
    expect(after?.responseJson).toBe(before.responseJson);
    expect(after?.responseRef).toEqual(before.responseRef);
    expect(after?.scaleUpdatedAt).toBe(before.scaleUpdatedAt);
  }, 60_000);

  it('resubmits an upload left submitting whose task never reached Scale, through SQS, and completes it', async () => {
    // The notification is lost (the message never reaches the queue), after an earlier delivery had claimed the
    // upload: the record says `submitting`, and Scale has no task for it.
    const send = pipeline.queue.send.bind(pipeline.queue);
    pipeline.queue.send = () => 'lost';
    const upload = await c.put('reconcile/stuck.sfs', scene).finally(() => (pipeline.queue.send = send));
    const { info } = pipeline;
    const dynamo = new DynamoDBClient({ region: info.region, endpoint: info.dynamodbEndpoint, credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey } });
    const store = new DynamoTaskStore(documentClient(dynamo), info.tasksTable);
    const claimedAt = new Date(Date.now() - 60 * 60_000).toISOString();
    const { uniqueId, bucket, key, versionId, eTag, sequencer, size } = upload;
    expect(await store.startSubmission({ uniqueId, bucket, key, versionId, eTag, sequencer, size, sceneFormat: 'sensor_fusion', project: pipeline.config.routing.project }, 'claim-lost', claimedAt)).toBe('started');
    expect((await c.reader.get(uniqueId))?.status).toBe('submitting');
    expect(c.tasksFor(uniqueId)).toEqual([]);

    const sentBefore = pipeline.sqs.sent.length;
    const report = await reconcileOverHttp();
    expect(report.resubmitted).toBe(1);
    expect(pipeline.sqs.sent.slice(sentBefore)).toEqual([expect.objectContaining({ queue: 'ingest', body: expect.stringContaining('reconcile/stuck.sfs') })]);
    await eventually(() => (c.tasksFor(uniqueId)[0]?.status === 'completed' ? true : undefined), 20_000, 'the resubmitted task to complete at Scale');
    const record = await reconciledToCompletion(uniqueId);
    expect(c.tasksFor(uniqueId)).toHaveLength(1);
    expect(record.taskId).toBe(c.tasksFor(uniqueId)[0]!.task.task_id);
  }, 60_000);
});
