import type { Logger } from '@aws-lambda-powertools/logger';
import { clearCaches } from '@aws-lambda-powertools/parameters';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent, Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { expectedCallbackSignature } from '../helpers/identity.js';
import { SECRETS, startPipelineEnv } from '../helpers/pipeline-env.js';

type Handler = (event: APIGatewayRequestAuthorizerEvent, context: Context) => Promise<APIGatewayAuthorizerResult>;
let env: Awaited<ReturnType<typeof startPipelineEnv>>;
let handler: Handler;
let logger: Logger;
const context = { functionName: 'callback-auth', awsRequestId: 'test', getRemainingTimeInMillis: () => 10_000 } as Context;
const METHOD_ARN = 'arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/POST/callback';
// A ref as create-task makes them: 'sfs-' and 40 hex digits.
const REF = 'sfs-6075c1020613cb0d420717176e118cfa3ed89726';
/*
 * Signatures as literals (HMAC-SHA256, base64url without padding, computed with openssl): each wrong one has the
 * right length and alphabet, so only what the test names differs — the ref it signs or the key it was signed with.
 */
const SIG = {
  genuine: 'JJDS4Tf9m5ZYavPBN5bcyr3aw-TPlasL0n2l2XO4dqc', // REF under SECRETS.signingKey
  otherRef: 'uSG2nvo9y76nV2pMGWO1Jj1cDWU4e--WAYJnW-q9Eok', // sfs-000…0 under SECRETS.signingKey
  otherKey: 'an7JyrKjxlm2hSKWtYj9k7o53067d9jsqec2nXOM-94', // REF under 'another-signing-key'
};

beforeAll(async () => {
  env = await startPipelineEnv({ callbackUrl: 'http://127.0.0.1:9/callback' });
  ({ handler } = await import('../../lambdas/callback-auth/handler.js'));
  ({ logger } = await import('../../lambdas/core/shared/logger.js'));
});
afterAll(() => env.close());
afterEach(() => vi.restoreAllMocks());

function event(headers: Record<string, string>, query: Record<string, string>): APIGatewayRequestAuthorizerEvent {
  return {
    type: 'REQUEST',
    methodArn: METHOD_ARN,
    resource: '/callback',
    path: '/callback',
    httpMethod: 'POST',
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: query,
    multiValueQueryStringParameters: Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]])),
    pathParameters: null,
    stageVariables: null,
    requestContext: { identity: { sourceIp: '198.51.100.7' } } as APIGatewayRequestAuthorizerEvent['requestContext'],
  };
}
const genuine = { ref: REF, sig: SIG.genuine };
const effectOf = (result: APIGatewayAuthorizerResult) => result.policyDocument.Statement[0]!;

describe('callback authorizer', () => {
  it('is tested with the signatures the documented rule gives', () => {
    expect(SECRETS.signingKey).toBe('signing-key-3c8f0a6e1d');
    expect(expectedCallbackSignature(REF, SECRETS.signingKey)).toBe(SIG.genuine);
    expect(expectedCallbackSignature('sfs-0000000000000000000000000000000000000000', SECRETS.signingKey)).toBe(SIG.otherRef);
    expect(expectedCallbackSignature(REF, 'another-signing-key')).toBe(SIG.otherKey);
    for (const sig of Object.values(SIG)) expect(sig).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("allows Scale's callback: a URL this stack signed and Scale's header (any capitalisation)", async () => {
    const result = await handler(event({ 'Scale-Callback-Auth': SECRETS.callbackAuthKey }, genuine), context);
    expect(effectOf(result)).toEqual({ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: METHOD_ARN });
    expect(result).toMatchObject({ principalId: REF, context: { uniqueId: REF } });
  });

  it.each([
    // Scale's header with a URL that does not verify: Scale holding a URL signed under a key the stack lost.
    ['a signature for another ref', SECRETS.callbackAuthKey, { ref: REF, sig: SIG.otherRef }, 'url'],
    ['a signature under another (rotated) key', SECRETS.callbackAuthKey, { ref: REF, sig: SIG.otherKey }, 'url'],
    ['the genuine signature with one character changed', SECRETS.callbackAuthKey, { ref: REF, sig: `${SIG.genuine.slice(0, -1)}d` }, 'url'],
    // Signed with the stack's own key, but not a ref the stack makes: refused before it is used in a key.
    ['a ref that is not one of ours', SECRETS.callbackAuthKey, { ref: '../../etc', sig: expectedCallbackSignature('../../etc', SECRETS.signingKey) }, 'url'],
    // Neither: junk, counted but not alarmed.
    ['a forged URL without the header', 'guess', { ref: REF, sig: SIG.otherKey }, 'signature'],
  ])('denies %s, counted by what failed', async (_name, header, query, refusal) => {
    const warnings = vi.spyOn(logger, 'warn');
    const result = await handler(event({ 'scale-callback-auth': header }, query), context);
    expect(effectOf(result)).toMatchObject({ Effect: 'Deny' });
    expect(result).not.toHaveProperty('context');
    expect(warnings).toHaveBeenCalledWith('callback refused', expect.objectContaining({ callbackRefusal: refusal }));
  });

  it('denies a genuine URL with the wrong header as an auth refusal — the alarmed case — and never logs a secret', async () => {
    const warnings = vi.spyOn(logger, 'warn');
    const result = await handler(event({ 'scale-callback-auth': 'the-test-key-not-the-live-one' }, genuine), context);
    expect(effectOf(result)).toMatchObject({ Effect: 'Deny' });
    expect(warnings).toHaveBeenCalledWith('callback refused', expect.objectContaining({ callbackRefusal: 'auth', sourceIp: '198.51.100.7' }));
    const logged = JSON.stringify(warnings.mock.calls);
    for (const secret of [SECRETS.callbackAuthKey, SECRETS.signingKey, genuine.sig, 'the-test-key-not-the-live-one']) expect(logged).not.toContain(secret);
  });

  it('fails (API Gateway answers 500, Scale retries) while its secrets cannot be read', async () => {
    env.secrets.setAvailable(false);
    clearCaches();
    const { handler: fresh } = (await import('../../lambdas/callback-auth/handler.js?secrets=down' as string)) as { handler: Handler };
    await expect(fresh(event({ 'scale-callback-auth': SECRETS.callbackAuthKey }, genuine), context)).rejects.toThrow();
    env.secrets.setAvailable(true);
  });
});
