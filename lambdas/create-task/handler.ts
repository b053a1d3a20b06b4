import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { cancelOnDelete } from '../core/scenes/cancel-on-delete.js';
import { parseConfig, requireEnv, RoutingSchema } from '../core/shared/config.js';
import { documentClient, DynamoTaskStore } from '../core/tasks/dynamo-task-store.js';
import { describeFailure } from '../core/shared/failures.js';
import { logger } from '../core/shared/logger.js';
import { changesInMessage, type BucketChange } from '../core/scenes/s3-event.js';
import { ScaleClient } from '../core/scale/client.js';
import { DynamoRateStore } from '../core/scale/dynamo-rate-store.js';
import { FlowControl, type RequestPacer } from '../core/scale/flow-control.js';
import { SharedFlowControl } from '../core/scale/shared-flow-control.js';
import { S3SceneObjects } from '../core/scenes/scene-objects.js';
import { readSecret } from '../core/shared/secrets.js';
import { sceneSourceOf, submitScene } from '../core/scenes/submit-scene.js';
import { queueWaitSeconds, waitingFor, type MessageRequeue } from '../core/scenes/wait-in-queue.js';
import { boundText, clip } from '../core/shared/validation.js';

// Cold start: configuration errors surface here, naming the variable or key.
const routing = parseConfig(RoutingSchema, JSON.parse(requireEnv('ROUTING')), 'ROUTING environment variable');
const callbackBaseUrl = requireEnv('CALLBACK_URL');
const scaleApiUrl = requireEnv('SCALE_API_URL');
const apiKeySecret = requireEnv('SCALE_API_KEY_SECRET_ID');
const signingSecret = requireEnv('CALLBACK_SIGNING_SECRET_ID');
const maxReceiveCount = Number(requireEnv('MAX_RECEIVE_COUNT'));
const cancelOnDeleteEnabled = requireEnv('CANCEL_ON_DELETE') === 'true';
const objects = new S3SceneObjects(new S3Client({}));
const store = new DynamoTaskStore(documentClient(new DynamoDBClient({})), requireEnv('TASKS_TABLE'));
const processor = new BatchProcessor(EventType.SQS);
const sqs = new SQSClient({});
const ingestQueueUrl = requireEnv('INGEST_QUEUE_URL');
const requeue: MessageRequeue = {
  send: async (body, delaySeconds, abortSignal) =>
    void (await sqs.send(new SendMessageCommand({ QueueUrl: ingestQueueUrl, MessageBody: body, DelaySeconds: delaySeconds }), { abortSignal })),
};
/** A copy sent back to the queue gets this long at most, and never runs into the invocation's last second. */
const REQUEUE_TIMEOUT_MS = 5_000;

/** Time kept back from the invocation's deadline to record outcomes after the last Scale call: 5 s, or a fifth. */
const reserveMs = (remainingMs: number) => Math.min(5_000, remainingMs / 5);
/** Every Scale call of this invocation ends by then (one invocation at a time per instance). */
let deadline = Infinity;
/** When Lambda stops this invocation. */
let invocationEnd = Infinity;
/**
 * Scale's rate limit, kept between invocations (a warm instance keeps its module state): every Scale call of the
 * instance waits for its turn here. With a rate table, one rate shared by every instance (its store requests fail
 * fast: a slow one falls back to this instance's own flow control for a while); without, this instance's own share,
 * found from its 429s.
 */
const rateTable = process.env.SCALE_RATE_TABLE;
const flowControl: RequestPacer = rateTable
  ? new SharedFlowControl(new DynamoRateStore(documentClient(new DynamoDBClient({ maxAttempts: 1 })), rateTable), {
      onFallback: (err) => logger.warn("the shared Scale rate cannot be used (see error): keeping to this instance's own flow control for 30 s", { error: describeFailure(err).message }),
    })
  : new FlowControl();

async function scaleClient(): Promise<ScaleClient> {
  const apiKey = await readSecret(apiKeySecret, 'the Scale API key');
  return new ScaleClient({ apiKey, baseUrl: scaleApiUrl, deadline, flowControl, onRetry: (notice) => logger.warn('retrying Scale call', { ...notice }) });
}

async function applyChange(change: BucketChange, claimId: string): Promise<Record<string, unknown>> {
  if (change.kind === 'removed') return cancelOnDelete(change.removal, { store, scale: await scaleClient(), cancelOnDelete: cancelOnDeleteEnabled });
  const [scale, signingKey] = await Promise.all([scaleClient(), readSecret(signingSecret, 'the callback signing key')]);
  return submitScene(change.upload, { objects, store, scale, routing, callbackBaseUrl, signingKey, claimId });
}

async function recordHandler(record: SQSRecord): Promise<void> {
  let changes: BucketChange[];
  try {
    changes = changesInMessage(record.body);
  } catch (err) {
    // Not an S3 notification S3 would send: retried, then parked in the dead-letter queue, and said here.
    logger.error('message is not a readable S3 event notification; it goes to the dead-letter queue after its retries', {
      messageId: record.messageId,
      error: describeFailure(err).message,
      body: clip(record.body, 500),
    });
    throw err;
  }
  const attempt = Number(record.attributes.ApproximateReceiveCount) || 1;
  const terminal = attempt >= maxReceiveCount;
  for (const [index, change] of changes.entries()) {
    const object = change.kind === 'created' ? change.upload : change.removal;
    const where = { messageId: record.messageId, event: object.eventName, bucket: object.bucket, key: object.key, versionId: object.versionId };
    const claimId = randomUUID();
    try {
      const outcome = await applyChange(change, claimId);
      logger.info(`${change.kind === 'created' ? 'upload' : 'removal'} ${String(outcome.kind)}`, { ...where, ...outcome });
    } catch (err) {
      const failure = describeFailure(err);
      if (await waitInQueue(record, change, err, failure.message, { ...where, claimId }, index === changes.length - 1)) return;
      if (change.kind === 'created') {
        // The record shows every failed attempt; the last one before the dead-letter queue marks it 'failed'.
        const upload = change.upload;
        await Promise.resolve()
          .then(() => store.recordFailedAttempt(sceneSourceOf(upload, routing), { attempt, error: failure.message, terminal, claimId }, new Date().toISOString()))
          .catch((recordErr: unknown) => logger.error('could not record the failed attempt', { ...where, error: describeFailure(recordErr).message }));
      }
      const what = terminal ? `gave up after ${attempt} deliveries; the message goes to the dead-letter queue` : 'failed; the message will be delivered again';
      logger.error(`${change.kind === 'created' ? 'upload' : 'removal'} ${what}`, { ...where, attempt, maxReceiveCount, failureKind: failure.kind, error: failure.message });
      throw err;
    }
  }
}

/**
 * A change that only has to wait (its turn at Scale's rate limit, or an upload still being submitted) goes back to the
 * queue, delayed, rather than fail its delivery (see wait-in-queue.ts). The copy carries the whole message: its other
 * changes are idempotent. False when it does not apply, or the copy could not be sent in time: then the delivery
 * fails as any other. A send SQS did not answer in time may still have been taken: failing the delivery too would
 * make two messages of one each time, so an upload that is the message's last change counts it as sent (if it was
 * lost, its record stays in 'submitting' and the reconciler sends it again); a delete, which has no record to be
 * found by, or a change with others after it in the message, fails as usual.
 */
async function waitInQueue(record: SQSRecord, change: BucketChange, err: unknown, reason: string, where: Record<string, unknown> & { claimId: string }, last: boolean): Promise<boolean> {
  const object = change.kind === 'created' ? change.upload : change.removal;
  const delaySeconds = queueWaitSeconds(err, object.eventTime, Date.now());
  if (delaySeconds === undefined) return false;
  let unconfirmed = false;
  try {
    const timeoutMs = Math.floor(Math.min(REQUEUE_TIMEOUT_MS, invocationEnd - Date.now() - 1_000));
    if (timeoutMs < 100) throw new Error('the invocation ends in less than a second');
    await requeue.send(record.body, delaySeconds, AbortSignal.timeout(timeoutMs));
  } catch (sendErr) {
    unconfirmed = change.kind === 'created' && last && sendErr instanceof Error && (sendErr.name === 'AbortError' || sendErr.name === 'TimeoutError');
    const what = unconfirmed ? 'SQS did not confirm in time: taken as sent' : 'its delivery fails instead';
    logger.error(`could not send the ${change.kind === 'created' ? 'upload' : 'removal'} back to the queue to wait; ${what}`, {
      ...where,
      error: describeFailure(sendErr).message,
    });
    if (!unconfirmed) return false;
  }
  const waits = waitingFor(err);
  if (change.kind === 'created') {
    const lost = unconfirmed ? ', unless the copy SQS did not confirm was lost (then the reconciler sends it again)' : '';
    const error = boundText(`waiting for Scale's rate limit: back in the queue for ${delaySeconds} s${lost} (${reason})`);
    const attempt = Number(record.attributes.ApproximateReceiveCount) || 1;
    await store
      .recordFailedAttempt(sceneSourceOf(change.upload, routing), { attempt, error, terminal: false, claimId: where.claimId }, new Date().toISOString())
      .catch((recordErr: unknown) => logger.error('could not record the wait', { ...where, error: describeFailure(recordErr).message }));
  }
  const what = waits === 'scale_rate_limit' ? 'waits for its turn at Scale' : 'waits for another change first';
  logger.warn(`${change.kind === 'created' ? 'upload' : 'removal'} ${what}: sent back to the queue`, { ...where, waitingFor: waits, delaySeconds, reason });
  return true;
}

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  logger.addContext(context);
  const remainingMs = context.getRemainingTimeInMillis();
  invocationEnd = Date.now() + remainingMs;
  deadline = Math.floor(invocationEnd - reserveMs(remainingMs));
  // Every record failed: still answer with the list rather than throwing, so the response is the same shape.
  return processPartialResponse(event, recordHandler, processor, { context, throwOnFullBatchFailure: false });
};
