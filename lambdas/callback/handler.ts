import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { applyCallback, authenticateCallback, type CallbackKeys } from '../core/apply-callback.js';
import { S3CallbackArchive } from '../core/callback-archive.js';
import { requireEnv } from '../core/config.js';
import { documentClient, DynamoTaskStore } from '../core/dynamo-task-store.js';
import { logger } from '../core/logger.js';
import { readSecret } from '../core/secrets.js';

/** Below API Gateway's 10 MB and Lambda's 6 MB request limits, with room for the event around the body. */
export const MAX_CALLBACK_BYTES = 5 * 1024 * 1024;

const authSecret = requireEnv('CALLBACK_AUTH_SECRET_ID');
const signingSecret = requireEnv('CALLBACK_SIGNING_SECRET_ID');
const s3 = new S3Client({});
const archive = new S3CallbackArchive(s3, requireEnv('RESULTS_BUCKET'));
const store = new DynamoTaskStore(documentClient(new DynamoDBClient({})), requireEnv('TASKS_TABLE'));

async function readCallbackKeys(): Promise<CallbackKeys> {
  const [authKey, signingKey] = await Promise.all([readSecret(authSecret, 'the Scale callback auth key'), readSecret(signingSecret, 'the callback signing key')]);
  return { authKey, signingKey };
}

const respond = (statusCode: number, body: Record<string, unknown>): APIGatewayProxyResult => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  const entry = Object.entries(event.headers ?? {}).find(([key]) => key.toLowerCase() === name);
  return entry?.[1] ?? undefined;
}

export const handler = async (event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult> => {
  logger.addContext(context);
  const keys = await readCallbackKeys().catch((err: unknown) => {
    logger.error('cannot read the callback secrets', { error: err as Error });
    return undefined;
  });
  if (!keys) return respond(503, { error: 'callback receiver is not configured yet; Scale will retry' });
  const query = event.queryStringParameters ?? {};
  const auth = authenticateCallback(header(event, 'scale-callback-auth'), query.ref, query.sig, keys);
  if (!auth.ok) {
    logger.warn('callback refused', { reason: auth.reason, sourceIp: event.requestContext?.identity?.sourceIp });
    return respond(401, { error: 'unauthorized' });
  }

  const body = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? '');
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_CALLBACK_BYTES) {
    logger.warn('callback too large', { uniqueId: auth.uniqueId, bytes });
    return respond(413, { error: `body is ${bytes} bytes; at most ${MAX_CALLBACK_BYTES} are accepted` });
  }

  try {
    const outcome = await applyCallback(auth.uniqueId, body, { store, archive });
    if (outcome.kind === 'invalid') {
      logger.warn('callback rejected', { uniqueId: auth.uniqueId, reason: outcome.message });
      return respond(400, { error: outcome.message });
    }
    logger.info(`callback ${outcome.kind}`, { ...outcome });
    return respond(200, { ok: true, applied: outcome.kind === 'applied' });
  } catch (err) {
    logger.error('storing the callback failed; Scale will retry', { uniqueId: auth.uniqueId, error: err as Error });
    return respond(500, { error: 'storing the callback failed; retry later' });
  }
};
