import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent, Context } from 'aws-lambda';
import { authenticateCallback, type CallbackKeys } from '../core/callbacks/callback-auth.js';
import { requireEnv } from '../core/shared/config.js';
import { logger } from '../core/shared/logger.js';
import { readSecret } from '../core/shared/secrets.js';

const authSecret = requireEnv('CALLBACK_AUTH_SECRET_ID');
const signingSecret = requireEnv('CALLBACK_SIGNING_SECRET_ID');

async function readCallbackKeys(): Promise<CallbackKeys> {
  const [authKey, signingKey] = await Promise.all([readSecret(authSecret, 'the Scale callback auth key'), readSecret(signingSecret, 'the callback signing key')]);
  return { authKey, signingKey };
}

function header(event: APIGatewayRequestAuthorizerEvent, name: string): string | undefined {
  const entry = Object.entries(event.headers ?? {}).find(([key]) => key.toLowerCase() === name);
  return entry?.[1] ?? undefined;
}

/**
 * API Gateway's request authorizer for POST /callback: a callback is stored only if its URL carries this stack's
 * signature and its header Scale's callback auth key. Nothing here reads the body, so a refusal costs nothing
 * more, and API Gateway caches the answer per (header, ref, sig).
 */
export const handler = async (event: APIGatewayRequestAuthorizerEvent, context: Context): Promise<APIGatewayAuthorizerResult> => {
  logger.addContext(context);
  // Secrets not set (or not readable): thrown, so API Gateway answers 500 and Scale retries.
  const keys = await readCallbackKeys();
  const query = event.queryStringParameters ?? {};
  const auth = authenticateCallback(header(event, 'scale-callback-auth'), query.ref ?? undefined, query.sig ?? undefined, keys);
  if (!auth.ok) {
    // The log field is what the stack's metric filters count (and alarm on for 'auth').
    logger.warn('callback refused', { callbackRefusal: auth.refusal, reason: auth.reason, sourceIp: event.requestContext?.identity?.sourceIp });
    return policy('refused', 'Deny', event.methodArn);
  }
  return { ...policy(auth.uniqueId, 'Allow', event.methodArn), context: { uniqueId: auth.uniqueId } };
};

function policy(principalId: string, effect: 'Allow' | 'Deny', resource: string): APIGatewayAuthorizerResult {
  return { principalId, policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }] } };
}
