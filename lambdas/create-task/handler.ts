import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseConfig, requireEnv, RoutingSchema } from '../core/config.js';
import { documentClient, DynamoTaskStore } from '../core/dynamo-task-store.js';
import { logger } from '../core/logger.js';
import { uploadsInMessage } from '../core/s3-event.js';
import { ScaleClient } from '../core/scale/client.js';
import { S3SceneObjects } from '../core/scene-objects.js';
import { readSecret } from '../core/secrets.js';
import { submitScene } from '../core/submit-scene.js';

// Cold start: configuration errors surface here, naming the variable or key.
const routing = parseConfig(RoutingSchema, JSON.parse(requireEnv('ROUTING')), 'ROUTING environment variable');
const callbackBaseUrl = requireEnv('CALLBACK_URL');
const scaleApiUrl = requireEnv('SCALE_API_URL');
const apiKeySecret = requireEnv('SCALE_API_KEY_SECRET_ID');
const signingSecret = requireEnv('CALLBACK_SIGNING_SECRET_ID');
const objects = new S3SceneObjects(new S3Client({}));
const store = new DynamoTaskStore(documentClient(new DynamoDBClient({})), requireEnv('TASKS_TABLE'));
const processor = new BatchProcessor(EventType.SQS);

async function handleMessage(record: SQSRecord): Promise<void> {
  const [apiKey, signingKey] = await Promise.all([readSecret(apiKeySecret, 'the Scale API key'), readSecret(signingSecret, 'the callback signing key')]);
  const scale = new ScaleClient({
    apiKey,
    baseUrl: scaleApiUrl,
    onRetry: (notice) => logger.warn('retrying Scale call', { ...notice }),
  });
  for (const upload of uploadsInMessage(record.body)) {
    const outcome = await submitScene(upload, { objects, store, scale, routing, callbackBaseUrl, signingKey });
    logger.info(`upload ${outcome.kind}`, { messageId: record.messageId, bucket: upload.bucket, key: upload.key, ...outcome });
  }
}

async function recordHandler(record: SQSRecord): Promise<void> {
  try {
    await handleMessage(record);
  } catch (err) {
    // Only this message is reported failed: SQS delivers it again, then parks it in the dead-letter queue.
    logger.error('message failed; it will be retried', { messageId: record.messageId, receiveCount: record.attributes.ApproximateReceiveCount, error: err as Error });
    throw err;
  }
}

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  logger.addContext(context);
  // Every record failed: still answer with the list rather than throwing, so the response is the same shape.
  return processPartialResponse(event, recordHandler, processor, { context, throwOnFullBatchFailure: false });
};
