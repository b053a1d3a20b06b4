import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSfsToBuffer, writeSfsFile } from '../../lambdas/core/scenes/sfs/writer.js';
import { startLocalPipeline, type LocalPipeline } from '../../local/pipeline.js';
import { buildSampleScene } from '../../local/sample-scenes.js';
import { eventually } from '../helpers/http.js';
import { clientsFor } from '../helpers/local-pipeline.js';
import { expectedUniqueId } from '../helpers/identity.js';

// Deletes and dead letters through the whole local pipeline: versioned S3, its notifications, the queue and the
// shipped create-task bundle.
let workDir: string;
let pipeline: LocalPipeline;
let c: ReturnType<typeof clientsFor>;
const logs = { chunks: [] as string[], write(chunk: unknown) { this.chunks.push(String(chunk)); return true; } };

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'e2e-failures-'));
  pipeline = await startLocalPipeline({
    workDir,
    logs: logs as never,
    visibilityTimeoutMs: 300,
    config: { maxReceiveCount: 2 },
    // Short enough to test that no Scale call outlives the function.
    functionTimeoutSeconds: { 'create-task': 3 },
    simulator: { completionDelayMs: 50, callbackRetryDelayMs: 50 },
  });
  c = clientsFor(pipeline);
}, 60_000);
afterAll(async () => {
  await pipeline?.close();
  await rm(workDir, { recursive: true, force: true });
});

describe('local pipeline: at-least-once delivery and timeouts', () => {
  it('gives every upload exactly one task while S3 and SQS deliver twice and redeliver messages still in flight', async () => {
    pipeline.queue.configure({ duplicateDeliveryRate: 1, redeliverInFlight: true });
    pipeline.scale.configure({ latencyMs: 400 }); // each create outlives the 300 ms visibility timeout
    const scene = encodeSfsToBuffer(buildSampleScene());
    const objects = await Promise.all([1, 2, 3, 4].map((i) => c.put(`at-least-once/${i}.sfs`, scene)));
    for (const object of objects) expect(await c.settled(object.uniqueId, 30_000)).toMatchObject({ status: 'completed' });
    expect(pipeline.queue.stats.duplicated).toBeGreaterThan(0);
    expect(pipeline.queue.stats.inFlightRedelivered).toBeGreaterThan(0);
    for (const object of objects) expect(c.tasksFor(object.uniqueId)).toHaveLength(1);
    pipeline.queue.configure({ duplicateDeliveryRate: 0, redeliverInFlight: false });
    pipeline.scale.configure({ latencyMs: 0 });
    await pipeline.queue.idle();
  }, 60_000);

  it("lets a backlog Scale's limit cannot serve within an invocation wait in the queue: one task each, no dead letters", async () => {
    // One create a second, and invocations of 3 s: most turns come after an invocation's deadline. Two failed
    // deliveries would dead-letter a message (maxReceiveCount 2); waiting for a turn is not a failed delivery.
    pipeline.scale.configure({ rateLimit: { requestsPerSecond: 1, retryAfterSeconds: 1 } });
    const scene = encodeSfsToBuffer(buildSampleScene());
    const objects = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((i) => c.put(`backlog/${i}.sfs`, scene)));
    for (const object of objects) expect(await c.settled(object.uniqueId, 40_000)).toMatchObject({ status: 'completed' });
    for (const object of objects) expect(c.tasksFor(object.uniqueId)).toHaveLength(1);
    expect(logs.chunks.join('')).toContain('upload waits for its turn at Scale: sent back to the queue');
    expect(await readFile(pipeline.info.deadLetterFile, 'utf8')).not.toContain('backlog/');
    pipeline.scale.configure({ rateLimit: null });
    await pipeline.queue.idle();
  }, 60_000);

  it('ends a Scale call that would outlive the function inside its timeout, and records the attempt', async () => {
    pipeline.scale.configure({ latencyMs: 10_000 });
    const object = await c.put('slow-scale/scene.sfs', encodeSfsToBuffer(buildSampleScene()));
    const record = await eventually(async () => {
      const current = await c.reader.get(object.uniqueId);
      return current?.attempts ? current : undefined;
    }, 10_000, 'the first failed attempt');
    expect(record).toMatchObject({ status: 'submitting', lastError: expect.stringContaining('timed out') });
    // The function ended the call itself: Lambda's timeout never had to kill it.
    expect(logs.chunks.join('')).not.toContain('Task timed out');
    pipeline.scale.configure({ latencyMs: 0 });
    expect(await c.settled(object.uniqueId, 20_000)).toMatchObject({ status: 'completed' });
  }, 40_000);
});

describe('local pipeline: deletes and dead letters', () => {
  it('cancels the pending task of an object removed with the AWS CLI', async () => {
    pipeline.scale.configure({ startDelayMs: 30_000 });
    const file = join(workDir, 'to delete.sfs');
    await writeSfsFile(file, buildSampleScene({ seed: 3 }));
    const key = 'deletes/drive 1/scene.sfs';
    await c.awsCli(['s3', 'cp', file, `s3://${pipeline.info.bucket}/${key}`]);
    const created = await eventually(() => pipeline.notified.find((n) => n.key === key && n.eventName?.startsWith('ObjectCreated:')));
    const uniqueId = expectedUniqueId(created);
    await eventually(async () => ((await c.reader.get(uniqueId))?.status === 'pending' ? true : undefined), 10_000, 'the task');

    await c.awsCli(['s3', 'rm', `s3://${pipeline.info.bucket}/${key}`]);
    expect(await c.settled(uniqueId)).toMatchObject({ status: 'canceled', reason: expect.stringContaining('deleted from S3') });
    expect(c.tasksFor(uniqueId).map((t) => t.task.status)).toEqual(['canceled']);
    expect(pipeline.notified.find((n) => n.key === key && n.eventName === 'ObjectRemoved:DeleteMarkerCreated')).toBeDefined();
    pipeline.scale.configure({ startDelayMs: 0 });
  }, 30_000);

  it('parks an upload Scale keeps refusing the key for as failed, in the dead-letter file, and says so', async () => {
    pipeline.scale.configure({ refuseApiKey: 403 });
    const object = await c.put('dead-letters/scene.sfs', encodeSfsToBuffer(buildSampleScene()));
    const record = await eventually(async () => {
      const current = await c.reader.get(object.uniqueId);
      return current?.status === 'failed' ? current : undefined;
    }, 15_000, 'the failed record');
    expect(record).toMatchObject({ attempts: 2, lastError: expect.stringContaining('403') });
    const deadLetters = await eventually(async () => {
      const text = await readFile(pipeline.info.deadLetterFile, 'utf8');
      return text.includes('dead-letters/scene.sfs') ? text : undefined;
    }, 5_000, 'the dead letter');
    expect(deadLetters.trim().split('\n').filter((line) => line.includes('dead-letters/scene.sfs'))).toHaveLength(1);
    expect(logs.chunks.join('')).toContain('gave up after 2 deliveries; the message goes to the dead-letter queue');
    pipeline.scale.configure({ refuseApiKey: null });
  }, 30_000);
});
