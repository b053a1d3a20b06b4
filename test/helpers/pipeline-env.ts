import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Routing } from '../../lambdas/core/shared/config.js';
import { documentClient, DynamoTaskStore } from '../../lambdas/core/tasks/dynamo-task-store.js';
import { TaskReader } from '../../lambdas/core/tasks/task-reader.js';
import { createTasksTable, startDynamo } from '../../local/emulators/dynamodb.js';
import { startLocalS3, type VersioningMode } from '../../local/emulators/s3.js';
import { s3ObjectEvent, type S3EventRecord } from '../../local/events.js';
import { startSecretsManager } from '../../local/emulators/secrets-manager.js';
import { startLocalSqs } from '../../local/emulators/sqs.js';
import { startScaleSimulator } from '../../local/scale-simulator/server.js';

export const SECRETS = {
  scaleApiKey: 'live_handler_test_key_5f3a9c',
  callbackAuthKey: 'callback-auth-7d2e1b',
  signingKey: 'signing-key-3c8f0a6e1d',
};

/** A body's length in bytes, as PutObject's ContentLength. */
const byteLength = (body: Uint8Array | string) => (typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);

export const SECRET_IDS = { apiKey: 'scale/api-key', callbackAuth: 'scale/callback-auth', signing: 'pipeline/callback-signing' };

const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * Everything the two functions talk to, on loopback: the local S3 (versioned like the stack's buckets unless
 * `versioning` says otherwise), dynalite, a Secrets Manager endpoint and the Scale simulator. Sets the environment
 * the stack would set, with the SDK's own AWS_ENDPOINT_URL_* variables.
 */
export async function startPipelineEnv(options: { routing?: Partial<Routing>; callbackUrl: string; versioning?: VersioningMode }) {
  // The ingest queue, as far as the functions send to it: what they sent is kept (`sqs.sent`), nothing is delivered.
  const [s3, dynamo, secrets, scale, sqs] = await Promise.all([
    startLocalS3({ buckets: ['scenes', 'results'], versioning: options.versioning ?? 'enabled', credentials: CREDENTIALS }),
    startDynamo(),
    startSecretsManager({ [SECRET_IDS.apiKey]: SECRETS.scaleApiKey, [SECRET_IDS.callbackAuth]: SECRETS.callbackAuthKey, [SECRET_IDS.signing]: SECRETS.signingKey }),
    startScaleSimulator({ apiKey: SECRETS.scaleApiKey, callbackAuthKey: SECRETS.callbackAuthKey, projects: ['scenes-default', 'scenes-highway'], config: { completionDelayMs: 20, callbackRetryDelayMs: 20 } }),
    startLocalSqs({ queues: { ingest: { send: () => undefined } } }),
  ]);
  const routing = { project: 'scenes-default', ...options.routing };
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
    AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    INGEST_QUEUE_URL: sqs.queueUrl('ingest'),
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    // TEST_LOG_LEVEL=DEBUG shows the functions' logs when a test needs explaining.
    POWERTOOLS_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'SILENT',
    POWERTOOLS_SERVICE_NAME: 'test',
    TASKS_TABLE: 'tasks',
    RESULTS_BUCKET: 'results',
    ROUTING: JSON.stringify(routing),
    CALLBACK_URL: options.callbackUrl,
    SCALE_API_URL: scale.apiUrl,
    SCALE_API_KEY_SECRET_ID: SECRET_IDS.apiKey,
    CALLBACK_AUTH_SECRET_ID: SECRET_IDS.callbackAuth,
    CALLBACK_SIGNING_SECRET_ID: SECRET_IDS.signing,
    MAX_RECEIVE_COUNT: '5',
    CANCEL_ON_DELETE: 'true',
    RESULT_FILE_HOSTS: '["127.0.0.1"]',
    RESULT_FILES_ALLOW_HTTP: 'true',
    MAX_RESULT_FILE_BYTES: String(1024 * 1024),
  });
  const s3Client = new S3Client({});
  const dynamoClient = new DynamoDBClient({});
  await createTasksTable(dynamoClient, 'tasks');
  const doc = documentClient(dynamoClient);
  // Every record S3 notified, in order: what the stack's queue would receive (before any suffix filter).
  const s3Events: S3EventRecord[] = [];
  s3.onEvent((records) => s3Events.push(...records));
  /** The record S3 emitted for this request: the first of `eventPrefix` for the key since `since`. */
  const eventFor = (since: number, bucket: string, key: string, eventPrefix: string, versionId?: string) => {
    const record = s3Events.slice(since).map(s3ObjectEvent).find((e) => e.bucket === bucket && e.key === key && e.eventName!.startsWith(eventPrefix) && (!versionId || e.versionId === versionId));
    if (!record) throw new Error(`S3 notified no ${eventPrefix} for s3://${bucket}/${key}`);
    return record;
  };
  return {
    s3,
    dynamo,
    secrets,
    scale,
    sqs,
    s3Client,
    store: new DynamoTaskStore(doc, 'tasks'),
    reader: new TaskReader(doc, 'tasks'),
    s3Events,
    /** Uploads an object; answers with what S3's event said of it. */
    async put(key: string, body: Uint8Array | string, bucket = 'scenes') {
      const since = s3Events.length;
      // The length given: the SDK sends none for an empty string and warns about a stream of unknown length.
      const out = await s3Client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: byteLength(body) }));
      const event = eventFor(since, bucket, key, 'ObjectCreated:', out.VersionId);
      return { bucket, key, size: event.size!, eTag: event.eTag!, ...(event.versionId ? { versionId: event.versionId } : {}), sequencer: event.sequencer! };
    },
    /** Deletes the key (a delete marker when versioned) or one version of it; answers with S3's removal event. */
    async remove(key: string, versionId?: string, bucket = 'scenes') {
      const since = s3Events.length;
      await s3Client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
      return eventFor(since, bucket, key, 'ObjectRemoved:');
    },
    async close() {
      await scale.close();
      await Promise.all([s3.close(), dynamo.close(), secrets.close(), sqs.close()]);
    },
  };
}
