import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Routing } from '../../lambdas/core/config.js';
import { documentClient, DynamoTaskStore } from '../../lambdas/core/dynamo-task-store.js';
import { TaskReader } from '../../lambdas/core/task-reader.js';
import { createTasksTable, startDynamo } from '../../local/emulators/dynamodb.js';
import { startS3 } from '../../local/emulators/s3.js';
import { startSecretsManager } from '../../local/emulators/secrets-manager.js';
import { startScaleSimulator } from '../../local/scale-simulator/server.js';

export const SECRETS = {
  scaleApiKey: 'live_handler_test_key_5f3a9c',
  callbackAuthKey: 'callback-auth-7d2e1b',
  signingKey: 'signing-key-3c8f0a6e1d',
};

export const SECRET_IDS = { apiKey: 'scale/api-key', callbackAuth: 'scale/callback-auth', signing: 'pipeline/callback-signing' };

/**
 * Everything the two functions talk to, on loopback: s3rver, dynalite, a Secrets Manager endpoint and the Scale
 * simulator. Sets the environment the stack would set, with the SDK's own AWS_ENDPOINT_URL_* variables.
 */
export async function startPipelineEnv(options: { routing?: Partial<Routing>; callbackUrl: string }) {
  const [s3, dynamo, secrets, scale] = await Promise.all([
    startS3(['scenes', 'results']),
    startDynamo(),
    startSecretsManager({ [SECRET_IDS.apiKey]: SECRETS.scaleApiKey, [SECRET_IDS.callbackAuth]: SECRETS.callbackAuthKey, [SECRET_IDS.signing]: SECRETS.signingKey }),
    startScaleSimulator({ apiKey: SECRETS.scaleApiKey, callbackAuthKey: SECRETS.callbackAuthKey, projects: ['scenes-default', 'scenes-highway'], config: { completionDelayMs: 20, callbackRetryDelayMs: 20 } }),
  ]);
  const routing = { project: 'scenes-default', ...options.routing };
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
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
  });
  const s3Client = new S3Client({});
  const dynamoClient = new DynamoDBClient({});
  await createTasksTable(dynamoClient, 'tasks');
  const doc = documentClient(dynamoClient);
  return {
    s3,
    dynamo,
    secrets,
    scale,
    s3Client,
    store: new DynamoTaskStore(doc, 'tasks'),
    reader: new TaskReader(doc, 'tasks'),
    async put(key: string, body: Uint8Array | string, bucket = 'scenes') {
      const out = await s3Client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      return { bucket, key, size: typeof body === 'string' ? Buffer.byteLength(body) : body.length, eTag: out.ETag!.replace(/"/g, '') };
    },
    async close() {
      await scale.close();
      await Promise.all([s3.close(), dynamo.close(), secrets.close()]);
    },
  };
}
