import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ScaleClient } from '../../lambdas/core/scale/client.js';
import { encodeSfsToBuffer } from '../../lambdas/core/scenes/sfs/writer.js';
import { s3NotificationBody, sqsEvent, sqsRecord, type S3ObjectEvent } from '../../local/events.js';
import { buildSampleScene } from '../../local/sample-scenes.js';
import { startRecorder } from '../helpers/http.js';
import { expectedUniqueId } from '../helpers/identity.js';
import { SECRETS, startPipelineEnv } from '../helpers/pipeline-env.js';

// create-task when Scale's rate limit gives an upload its turn only after the invocation's deadline: the upload
// goes back to the ingest queue (the local SQS), delayed at least to its turn, instead of failing its delivery.
type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
let env: Awaited<ReturnType<typeof startPipelineEnv>>;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
const scene = encodeSfsToBuffer(buildSampleScene());
const contextWith = (remainingMs: number) => {
  const deadline = Date.now() + remainingMs;
  return { functionName: 'create-task', awsRequestId: 'test', getRemainingTimeInMillis: () => deadline - Date.now() } as Context;
};
/** A fresh instance (its own flow control, nothing learnt yet), with the environment as it is now. */
const freshHandler = async (): Promise<Handler> => {
  vi.resetModules();
  return (await import('../../lambdas/create-task/handler.js')).handler;
};
/** Scale allows one request a second and asks for 9 s after a 429; this fills the current second. */
async function fillScalesSecond() {
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  env.scale.configure({ rateLimit: { requestsPerSecond: 1, retryAfterSeconds: 9 } });
  await new ScaleClient({ apiKey: SECRETS.scaleApiKey, baseUrl: env.scale.apiUrl }).getTask('0123456789abcdef01234567').catch(() => undefined);
}
const upload = async (key: string, eventTime?: string): Promise<S3ObjectEvent> => ({ ...(await env.put(key, scene)), eventName: 'ObjectCreated:Put', ...(eventTime ? { eventTime } : {}) });

beforeAll(async () => {
  recorder = await startRecorder();
  env = await startPipelineEnv({ callbackUrl: `${recorder.url}/callback` });
});
afterEach(() => env.scale.configure({ rateLimit: null, startDelayMs: 0, latencyMs: 0 }));
afterAll(async () => {
  await env.close();
  await recorder.close();
});

describe('create-task waiting for its turn at Scale', () => {
  it('sends each upload that cannot have a turn in time back to the queue, delayed to its turn, and fails none', async () => {
    const handler = await freshHandler();
    const { logger } = await import('../../lambdas/core/shared/logger.js');
    const warnings: unknown[][] = [];
    vi.spyOn(logger, 'warn').mockImplementation((...args: unknown[]) => void warnings.push(args));
    const uploads = [await upload('wait/0.sfs'), await upload('wait/1.sfs'), await upload('wait/2.sfs')];
    const records = uploads.map((u) => sqsRecord(s3NotificationBody([u]), 3));
    const sentBefore = env.sqs.sent.length;
    await fillScalesSecond();
    const answer = await handler(sqsEvent(records), contextWith(8_000));

    expect(answer.batchItemFailures).toEqual([]);
    // One line each, with the field the stack's ScaleRateWaits metric counts.
    const waits = warnings.filter(([message]) => message === 'upload waits for its turn at Scale: sent back to the queue');
    expect(waits.map(([, fields]) => fields)).toEqual(records.map(() => expect.objectContaining({ waitingFor: 'scale_rate_limit', delaySeconds: 9 })));
    // The same bodies, each once, delayed by Scale's Retry-After: the copies are the uploads' next deliveries.
    const sent = env.sqs.sent.slice(sentBefore);
    expect(sent.map((m) => m.body).sort()).toEqual(records.map((r) => r.body).sort());
    expect(sent.map((m) => [m.queue, m.delaySeconds])).toEqual([['ingest', 9], ['ingest', 9], ['ingest', 9]]);
    for (const u of uploads) {
      expect(env.scale.state().tasks.filter((t) => t.unique_id === expectedUniqueId(u))).toHaveLength(0);
      const record = await env.reader.get(expectedUniqueId(u));
      expect(record).toMatchObject({ status: 'submitting', attempts: 1 });
      expect(record).not.toHaveProperty('claimId');
      // A 429 of its own, or a turn the instance's flow control gives after the deadline (once another met the 429).
      expect(record!.lastError).toMatch(/^waiting for Scale's rate limit: back in the queue for 9 s \(ScaleApiError: Scale create task failed after (1 attempt: 429 |0 attempts: not sent: Scale's rate limit \(429, Retry-After 9000 ms)/);
    }
  });

  it('sends a delete whose cancel has to wait for its turn back to the queue too, and leaves the task open till then', async () => {
    env.scale.configure({ startDelayMs: 60_000 }); // Scale has not started the work: the task can be cancelled
    const handler = await freshHandler();
    const { logger } = await import('../../lambdas/core/shared/logger.js');
    const warnings: unknown[][] = [];
    vi.spyOn(logger, 'warn').mockImplementation((...args: unknown[]) => void warnings.push(args));
    const created = await upload('wait/cancel.sfs');
    expect((await handler(sqsEvent([sqsRecord(s3NotificationBody([created]))]), contextWith(8_000))).batchItemFailures).toEqual([]);
    expect(await env.reader.get(expectedUniqueId(created))).toMatchObject({ status: 'pending' });
    const removal = sqsRecord(s3NotificationBody([await env.remove('wait/cancel.sfs')]));
    const sentBefore = env.sqs.sent.length;
    await fillScalesSecond();
    const answer = await handler(sqsEvent([removal]), contextWith(8_000));

    expect(answer.batchItemFailures).toEqual([]);
    expect(env.sqs.sent.slice(sentBefore).map((m) => [m.body, m.delaySeconds])).toEqual([[removal.body, 9]]);
    const [wait] = warnings.filter(([message]) => message === 'removal waits for its turn at Scale: sent back to the queue');
    expect(wait?.[1]).toMatchObject({ waitingFor: 'scale_rate_limit', delaySeconds: 9 });
    expect(await env.reader.get(expectedUniqueId(created))).toMatchObject({ status: 'pending' });
    expect(env.scale.state().tasks.find((t) => t.unique_id === expectedUniqueId(created))?.status).toBe('pending');
  });

  it('cancels, when it comes back, a task created over a rejection whose cancel had to wait for its turn', async () => {
    env.scale.configure({ startDelayMs: 60_000 }); // Scale has not started the work: the task can be cancelled
    const handler = await freshHandler();
    const older = await upload('wait/replaced.sfs');
    const uniqueId = expectedUniqueId(older);
    // This delivery is inside Scale's create call while the object is replaced and another delivery rejects it.
    env.scale.configure({ latencyMs: 1_500 });
    const sentBefore = env.sqs.sent.length;
    const creating = handler(sqsEvent([sqsRecord(s3NotificationBody([older]))]), contextWith(8_000));
    await new Promise((resolve) => setTimeout(resolve, 500));
    await env.put('wait/replaced.sfs', scene);
    const source = { ...older, uniqueId, sceneFormat: 'sensor_fusion' as const, project: 'scenes-default' };
    expect(await env.store.startSubmission(source, 'other-delivery', new Date().toISOString())).toBe('resumed');
    await env.store.recordRejection(uniqueId, 'other-delivery', 'a newer version replaced this one', new Date().toISOString());
    // The create is the one request Scale allows this second: the cancel right after it meets the limit.
    env.scale.configure({ latencyMs: 0, rateLimit: { requestsPerSecond: 1, retryAfterSeconds: 9 } });
    expect((await creating).batchItemFailures).toEqual([]);
    const copies = env.sqs.sent.slice(sentBefore);
    expect(copies.map((m) => m.delaySeconds)).toEqual([9]);
    expect(await env.reader.get(uniqueId)).toMatchObject({ status: 'pending', cancelOwed: 'a newer version replaced this one' });

    // The copy comes back once the limit allows (to an instance past the 9 s pause): the record is pending, and the
    // cancel it owes is made.
    env.scale.configure({ rateLimit: null });
    const later = await freshHandler();
    expect((await later(sqsEvent([sqsRecord(copies[0]!.body)]), contextWith(8_000))).batchItemFailures).toEqual([]);
    expect(env.scale.state().tasks.filter((t) => t.unique_id === uniqueId).map((t) => t.status)).toEqual(['canceled']);
    const record = await env.reader.get(uniqueId);
    expect(record).toMatchObject({ status: 'canceled', reason: 'a newer version replaced this one; the task created meanwhile was canceled at Scale' });
    expect(record).not.toHaveProperty('cancelOwed');
  });

  it('fails the delivery as usual once the upload has waited a day', async () => {
    const handler = await freshHandler();
    const old = await upload('wait/old.sfs', new Date(Date.now() - 25 * 3_600_000).toISOString());
    const record = sqsRecord(s3NotificationBody([old]), 2);
    const sentBefore = env.sqs.sent.length;
    await fillScalesSecond();
    const answer = await handler(sqsEvent([record]), contextWith(8_000));

    expect(answer.batchItemFailures).toEqual([{ itemIdentifier: record.messageId }]);
    expect(env.sqs.sent.length).toBe(sentBefore);
    const stored = await env.reader.get(expectedUniqueId(old));
    expect(stored).toMatchObject({ status: 'submitting', attempts: 1 });
    expect(stored!.lastError).toMatch(/^ScaleApiError: Scale create task failed after 1 attempt: 429 .*gave up: the next try would pass the deadline/);
  });

  it('fails the delivery as usual, and says why, when the queue does not take the copy', async () => {
    const queueUrl = process.env.INGEST_QUEUE_URL!;
    process.env.INGEST_QUEUE_URL = env.sqs.queueUrl('no-such-queue');
    try {
      const handler = await freshHandler();
      const { logger } = await import('../../lambdas/core/shared/logger.js');
      const errors: unknown[][] = [];
      vi.spyOn(logger, 'error').mockImplementation((...args: unknown[]) => void errors.push(args));
      const lost = await upload('wait/unsent.sfs');
      const record = sqsRecord(s3NotificationBody([lost]));
      await fillScalesSecond();
      const answer = await handler(sqsEvent([record]), contextWith(8_000));

      expect(answer.batchItemFailures).toEqual([{ itemIdentifier: record.messageId }]);
      expect(errors[0]![0]).toBe('could not send the upload back to the queue to wait; its delivery fails instead');
      expect(String((errors[0]![1] as { error: string }).error)).toMatch(/QueueDoesNotExist/);
      expect((await env.reader.get(expectedUniqueId(lost)))!.lastError).toMatch(/^ScaleApiError: .*429 /);
    } finally {
      process.env.INGEST_QUEUE_URL = queueUrl;
    }
  });

  it('gives up on a queue that does not answer before the invocation ends: an upload counts the copy as sent, a delete fails', async () => {
    // Accepts connections and never answers: SQS stalled (it may or may not have taken the copy).
    const sockets = new Set<Socket>();
    const stalled = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    const [queueUrl, endpoint] = [process.env.INGEST_QUEUE_URL!, process.env.AWS_ENDPOINT_URL_SQS!];
    process.env.AWS_ENDPOINT_URL_SQS = `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`;
    process.env.INGEST_QUEUE_URL = `${process.env.AWS_ENDPOINT_URL_SQS}/000000000000/ingest`;
    try {
      const handler = await freshHandler();
      const { logger } = await import('../../lambdas/core/shared/logger.js');
      const errors: unknown[][] = [];
      vi.spyOn(logger, 'error').mockImplementation((...args: unknown[]) => void errors.push(args));
      const timeouts = vi.spyOn(AbortSignal, 'timeout');
      const stuck = await upload('wait/stalled.sfs');
      const record = sqsRecord(s3NotificationBody([stuck]));
      await fillScalesSecond();
      const started = Date.now();
      const answer = await handler(sqsEvent([record]), contextWith(3_000));

      // Failing the delivery as well could make two messages of one: the record stays in 'submitting' instead, for
      // the reconciler to send again should the copy have been lost.
      expect(answer.batchItemFailures).toEqual([]);
      // The send was bounded to end a second before the invocation does (and Lambda would have cut it off).
      const sendBound = timeouts.mock.calls.map(([ms]) => ms).at(-1)!;
      expect(sendBound).toBeGreaterThan(0);
      expect(sendBound).toBeLessThanOrEqual(2_000);
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(errors[0]![0]).toBe('could not send the upload back to the queue to wait; SQS did not confirm in time: taken as sent');
      expect(String((errors[0]![1] as { error: string }).error)).toMatch(/abort/i);
      const stored = await env.reader.get(expectedUniqueId(stuck));
      expect(stored).toMatchObject({ status: 'submitting', attempts: 1 });
      expect(stored!.lastError).toMatch(/^waiting for Scale's rate limit: back in the queue for 9 s, unless the copy SQS did not confirm was lost \(then the reconciler sends it again\) \(ScaleApiError/);

      // A delete has no record to be found by: its delivery fails, to come back as usual.
      const early = await upload('wait/stalled-delete.sfs');
      const submission = { ...early, uniqueId: expectedUniqueId(early), sceneFormat: 'sensor_fusion' as const, project: 'scenes-default' };
      expect(await env.store.startSubmission(submission, 'another-delivery', new Date().toISOString())).toBe('started');
      const removal = sqsRecord(s3NotificationBody([await env.remove('wait/stalled-delete.sfs')]));
      expect((await handler(sqsEvent([removal]), contextWith(2_500))).batchItemFailures).toEqual([{ itemIdentifier: removal.messageId }]);
      expect(errors[1]![0]).toBe('could not send the removal back to the queue to wait; its delivery fails instead');

      // Nor may an upload with other changes after it in the message: they would be lost with the copy, unrecorded.
      const [first, second] = [await upload('wait/stalled-first.sfs'), await upload('wait/stalled-second.sfs')];
      const both = sqsRecord(s3NotificationBody([first, second]));
      expect((await handler(sqsEvent([both]), contextWith(2_500))).batchItemFailures).toEqual([{ itemIdentifier: both.messageId }]);
      expect(errors.map(([message]) => message).filter((m) => String(m).startsWith('could not send')).at(-1)).toBe(
        'could not send the upload back to the queue to wait; its delivery fails instead',
      );
    } finally {
      [process.env.INGEST_QUEUE_URL, process.env.AWS_ENDPOINT_URL_SQS] = [queueUrl, endpoint];
      for (const socket of sockets) socket.destroy();
      stalled.close();
    }
  });
});
