import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { applyCallback } from '../core/callbacks/apply-callback.js';
import { uniqueIdOfCallbackKey } from '../core/callbacks/callback-auth.js';
import { requireEnv } from '../core/shared/config.js';
import { documentClient, DynamoTaskStore } from '../core/tasks/dynamo-task-store.js';
import { describeFailure } from '../core/shared/failures.js';
import { logger } from '../core/shared/logger.js';
import { changesInMessage } from '../core/scenes/s3-event.js';
import { MAX_CALLBACK_BYTES, S3StoredCallbacks } from '../core/callbacks/stored-callbacks.js';

const store = new DynamoTaskStore(documentClient(new DynamoDBClient({})), requireEnv('TASKS_TABLE'));
const callbacks = new S3StoredCallbacks(new S3Client({}));
const processor = new BatchProcessor(EventType.SQS);

/**
 * Applies the callbacks API Gateway stored (after the authorizer let them in): one S3 notification per stored
 * body. A body that is not a Scale callback is refused here — counted (`callbackRefusal: "body"`), kept where it
 * was stored, never retried. Storage failures are thrown: the message comes back, then goes to the dead letters.
 */
async function recordHandler(record: SQSRecord): Promise<void> {
  for (const change of changesInMessage(record.body)) {
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
    const outcome = await applyCallback({ uniqueId, rawBody, archive: { bucket, key }, arrivedAt: eventTime ?? new Date().toISOString() }, { store });
    if (outcome.kind === 'invalid') logger.error('callback body refused', { ...where, callbackRefusal: 'body', reason: outcome.message });
    else logger.info(`callback ${outcome.kind}`, { ...where, ...outcome });
  }
}

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  logger.addContext(context);
  return processPartialResponse(
    event,
    async (record: SQSRecord) =>
      recordHandler(record).catch((err: unknown) => {
        logger.error('applying a stored callback failed; the message will be delivered again', { messageId: record.messageId, error: describeFailure(err).message });
        throw err;
      }),
    processor,
    { context, throwOnFullBatchFailure: false },
  );
};
