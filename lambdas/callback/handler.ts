import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { applyCallback } from '../core/callbacks/apply-callback.js';
import { oneAtATime, runKeyedInOrder, type ScheduledItem } from '../core/callbacks/batch-schedule.js';
import { uniqueIdOfCallbackKey } from '../core/callbacks/callback-auth.js';
import { copyResultFiles as copyFiles, type ResultFilePolicy, type ResultFileStore } from '../core/callbacks/result-files.js';
import { readSecret } from '../core/shared/secrets.js';
import { requireEnv } from '../core/shared/config.js';
import { documentClient, DynamoTaskStore } from '../core/tasks/dynamo-task-store.js';
import { describeFailure } from '../core/shared/failures.js';
import { logger } from '../core/shared/logger.js';
import { changesInMessage, type BucketChange } from '../core/scenes/s3-event.js';
import { MAX_CALLBACK_BYTES, S3StoredCallbacks } from '../core/callbacks/stored-callbacks.js';

const store = new DynamoTaskStore(documentClient(new DynamoDBClient({})), requireEnv('TASKS_TABLE'));
const s3 = new S3Client({});
const callbacks = new S3StoredCallbacks(s3);
const resultsBucket = requireEnv('RESULTS_BUCKET');
const maxReceiveCount = Number(requireEnv('MAX_RECEIVE_COUNT'));
const apiKeySecret = requireEnv('SCALE_API_KEY_SECRET_ID');
const policy: ResultFilePolicy = {
  hosts: JSON.parse(requireEnv('RESULT_FILE_HOSTS')) as string[],
  allowHttp: requireEnv('RESULT_FILES_ALLOW_HTTP') === 'true',
  maxBytes: Number(requireEnv('MAX_RESULT_FILE_BYTES')),
  scaleHosts: ['api.scale.com'],
  timeoutMs: 60_000,
};
const resultFiles: ResultFileStore = {
  put: async (key, body, contentType, signal) => {
    // The length given, so the SDK never has to guess it (an empty body would otherwise go without one).
    await s3.send(new PutObjectCommand({ Bucket: resultsBucket, Key: key, Body: body, ContentLength: body.byteLength, ContentType: contentType }), { abortSignal: signal });
    return { bucket: resultsBucket, key };
  },
};
/**
 * Stored bodies up to this size are applied alongside the batch's other records; a larger one (up to API Gateway's
 * 10 MB, several times that once parsed) is applied with nothing else in flight.
 */
const CONCURRENT_BODY_LIMIT_BYTES = 1024 * 1024;
/**
 * Result files are copied one at a time per instance, whichever record they belong to: the 1 GB function holds one
 * file of up to maxResultFileBytes (≤ 384 MiB) twice while it is hashed and stored, not two.
 */
const copyingSlot = oneAtATime();
/** Copying ends by then, with time left to record the state (one invocation at a time per instance). */
let deadline = Infinity;

/**
 * Applies the callbacks API Gateway stored (after the authorizer let them in): one S3 notification per stored
 * body. A body that is not a Scale callback is refused here — counted (`callbackRefusal: "body"`), kept where it
 * was stored, never retried. Storage failures are thrown: the message comes back, then goes to the dead letters.
 */
async function recordHandler(record: SQSRecord, changes: BucketChange[]): Promise<void> {
  for (const change of changes) {
    if (change.kind !== 'created') continue;
    const { bucket, key, size, eventTime } = change.upload;
    const uniqueId = uniqueIdOfCallbackKey(key);
    const where = { messageId: record.messageId, bucket, key, uniqueId };
    if (!uniqueId) {
      logger.warn('not a stored callback; ignored', where);
      continue;
    }
    const rawBody = (size ?? 0) > MAX_CALLBACK_BYTES ? undefined : await callbacks.read(bucket, key);
    if (rawBody === undefined) {
      // Counted with the refused bodies: nothing API Gateway stored can be this, so it is not a callback to apply.
      logger.error('stored callback missing or larger than API Gateway allows; refused', { ...where, size, callbackRefusal: 'body' });
      continue;
    }
    const lastAttempt = (Number(record.attributes.ApproximateReceiveCount) || 1) >= maxReceiveCount;
    const copyResultFiles = (id: string, urls: string[], version: string) =>
      copyingSlot(() => copyFiles(id, urls, { policy, store: resultFiles, lastAttempt, version, deadline, apiKey: () => readSecret(apiKeySecret, 'the Scale API key') }));
    const outcome = await applyCallback({ uniqueId, rawBody, archive: { bucket, key }, arrivedAt: eventTime ?? new Date().toISOString() }, { store, copyResultFiles });
    if (outcome.kind === 'invalid') logger.error('callback body refused', { ...where, callbackRefusal: 'body', reason: outcome.message });
    else logger.info(`callback ${outcome.kind}`, { ...where, ...outcome });
  }
}

/** A record's message, read once: its changes, or why it is not a notification (the record then fails). */
type Parsed = { record: SQSRecord; changes: BucketChange[] } | { record: SQSRecord; error: Error };

/**
 * When a record may run: after the batch's earlier records for the same tasks (their callbacks in arrival order),
 * and alone when its body may be large. An unreadable message runs at once and fails.
 */
function scheduleOf(record: SQSRecord): ScheduledItem<Parsed> {
  let changes: BucketChange[];
  try {
    changes = changesInMessage(record.body);
  } catch (err) {
    return { item: { record, error: err as Error }, keys: [], alone: false };
  }
  const created = changes.flatMap((change) => (change.kind === 'created' ? [change.upload] : []));
  return {
    item: { record, changes },
    keys: created.map((upload) => uniqueIdOfCallbackKey(upload.key) ?? upload.key),
    alone: created.some((upload) => !((upload.size ?? Infinity) <= CONCURRENT_BODY_LIMIT_BYTES)),
  };
}

/**
 * A batch's records are applied concurrently (records for different tasks do not wait for each other), each task's
 * in the batch's order; a record that fails is reported alone (partial batch response) and comes back.
 */
export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  logger.addContext(context);
  deadline = Date.now() + context.getRemainingTimeInMillis() - 20_000;
  const outcomes = await runKeyedInOrder(event.Records.map(scheduleOf), async (parsed) => {
    if ('error' in parsed) throw parsed.error;
    return recordHandler(parsed.record, parsed.changes);
  });
  const failed = event.Records.filter((record, i) => {
    const outcome = outcomes[i]!;
    if (outcome.status === 'fulfilled') return false;
    logger.error('applying a stored callback failed; the message will be delivered again', { messageId: record.messageId, error: describeFailure(outcome.reason).message });
    return true;
  });
  return { batchItemFailures: failed.map((record) => ({ itemIdentifier: record.messageId })) };
};
