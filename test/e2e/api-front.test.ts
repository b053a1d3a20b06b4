import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiFront, type ApiFront, type ApiFrontOptions } from '../../local/api-front.js';
import { startLocalS3, type LocalS3 } from '../../local/emulators/s3.js';
import { LOCAL_CREDENTIALS } from '../../local/pipeline.js';

// The API Gateway stand-in on its own, with an authorizer whose answers each test chooses: what API Gateway does
// with each kind of answer, its cache, and the event it sends.
const METHOD_ARN = 'arn:aws:execute-api:us-east-1:000000000000:local/prod/POST/callback';
const REF = `sfs-${'a'.repeat(40)}`;
let s3: LocalS3;
let client: S3Client;
const fronts: ApiFront[] = [];

beforeAll(async () => {
  s3 = await startLocalS3({ buckets: ['results'], credentials: LOCAL_CREDENTIALS });
  client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, credentials: LOCAL_CREDENTIALS, forcePathStyle: true });
});
afterAll(async () => {
  for (const front of fronts) await front.close();
  client?.destroy();
  await s3?.close();
});

const policy = (effect: 'Allow' | 'Deny', resource = METHOD_ARN): APIGatewayAuthorizerResult => ({
  principalId: 'p',
  policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }] },
});

/** A front whose authorizer answers with `answer(n)` on its n-th call (1-based) and records the events. */
async function frontWith(answer: (n: number) => APIGatewayAuthorizerResult | Error | unknown, extra: Partial<ApiFrontOptions> = {}, bucket = 'results') {
  const events: APIGatewayRequestAuthorizerEvent[] = [];
  const front = await startApiFront({
    authorize: async (event) => {
      events.push(structuredClone(event));
      const result = answer(events.length);
      if (result instanceof Error) throw result;
      return result as APIGatewayAuthorizerResult;
    },
    results: { endpoint: s3.endpoint, region: 'us-east-1', bucket, credentials: LOCAL_CREDENTIALS },
    ...extra,
  });
  fronts.push(front);
  const call = (query: string, init: RequestInit & { path?: string } = {}) =>
    fetch(`${front.url}${init.path ?? '/callback'}?${query}`, { method: 'POST', body: '{}', ...init, headers: init.headers ?? { 'scale-callback-auth': 'k' } });
  return { front, events, call };
}

const stored = async (prefix: string) => ((await client.send(new ListObjectsV2Command({ Bucket: 'results', Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);

describe('local API Gateway: routes and identity sources', () => {
  it('answers other routes and methods 403 Missing Authentication Token, and calls nothing', async () => {
    const { events, call } = await frontWith(() => policy('Allow'));
    for (const init of [{ path: '/other' }, { method: 'PUT' }, { method: 'GET', body: null }, { path: '/callback/extra' }]) {
      const answer = await call(`ref=${REF}&sig=s`, init);
      expect(answer.status).toBe(403);
      expect(await answer.json()).toEqual({ message: 'Missing Authentication Token' });
    }
    expect(events).toEqual([]);
  });

  it.each([
    ['an empty header', 'ref=R&sig=s', { 'scale-callback-auth': '' }],
    ['no header', 'ref=R&sig=s', {}],
    ['no ref', 'sig=s', { 'scale-callback-auth': 'k' }],
    ['an empty sig', 'ref=R&sig=', { 'scale-callback-auth': 'k' }],
  ])('answers 401 {"message":"Unauthorized"} without calling the authorizer for %s', async (_name, query, headers) => {
    const { front, events, call } = await frontWith(() => policy('Allow'));
    const answer = await call(query.replace('R', REF), { headers });
    expect(answer.status).toBe(401);
    expect(await answer.json()).toEqual({ message: 'Unauthorized' });
    expect(events).toEqual([]);
    expect(front.stats).toMatchObject({ count: 1, clientErrors: 1, serverErrors: 0, refused: { 401: 1 }, authorizerInvocations: 0 });
  });
});

describe('local API Gateway: the authorizer and its cache', () => {
  it('sends a REQUEST authorizer event in API Gateway shape, without the body', async () => {
    const { events, call } = await frontWith(() => policy('Allow'));
    const answer = await call(`ref=first&ref=${REF}&sig=s%2Bg`, { headers: { 'Scale-Callback-Auth': 'the key', 'X-Twice': 'one', 'user-agent': 'scale' }, body: '{"secret":1}' });
    expect(answer.status).toBe(200);
    const [event] = events;
    expect(event).toMatchObject({
      type: 'REQUEST',
      methodArn: METHOD_ARN,
      resource: '/callback',
      path: '/callback',
      httpMethod: 'POST',
      // The last value of a repeated parameter; all of them in the multi-value map.
      queryStringParameters: { ref: REF, sig: 's+g' },
      multiValueQueryStringParameters: { ref: ['first', REF], sig: ['s+g'] },
      pathParameters: null,
      stageVariables: null,
      requestContext: { accountId: '000000000000', apiId: 'local', stage: 'prod', resourcePath: '/callback', httpMethod: 'POST', path: '/prod/callback' },
    });
    expect(event!.headers).toMatchObject({ 'Scale-Callback-Auth': 'the key', 'X-Twice': 'one', 'user-agent': 'scale' });
    expect(event!.multiValueHeaders).toMatchObject({ 'Scale-Callback-Auth': ['the key'] });
    expect(event!.requestContext.identity).toMatchObject({ sourceIp: '127.0.0.1', userAgent: 'scale' });
    expect(event!.requestContext.requestId).toBe(answer.headers.get('x-amzn-requestid'));
    expect(event!.requestContext.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(JSON.stringify(event)).not.toContain('secret');
  });

  it('caches Allow and Deny per (header, ref, sig) for the TTL, and only those', async () => {
    const { front, events, call } = await frontWith((n) => policy(n === 1 ? 'Deny' : 'Allow'), { authorizerCacheTtlSeconds: 0.5 });
    const denied = await call(`ref=${REF}&sig=s`);
    expect(denied.status).toBe(403);
    expect(await denied.json()).toEqual({ Message: 'User is not authorized to access this resource with an explicit deny' });
    expect((await call(`ref=${REF}&sig=s`)).status).toBe(403); // cached Deny
    expect((await call(`ref=${REF}&sig=t`)).status).toBe(200); // another sig: asked again (Allow)
    expect((await call(`ref=${REF}&sig=s`, { headers: { 'scale-callback-auth': 'other' } })).status).toBe(200); // another header
    expect(events).toHaveLength(3);
    expect(front.stats.authorizerCacheHits).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await call(`ref=${REF}&sig=s`)).status).toBe(200); // expired: asked again
    expect(events).toHaveLength(4);
  });

  it.each([
    ["Error('Unauthorized')", new Error('Unauthorized'), 401, { message: 'Unauthorized' }],
    ['any other error', new Error('Task timed out after 10.00 seconds'), 500, { message: null }],
    ['a result without a policy', { principalId: 'p' }, 500, { message: null }],
    ['a context value that is an object', { ...policy('Allow'), context: { nested: { a: 1 } } }, 500, { message: null }],
    ['an Allow for another method', policy('Allow', 'arn:aws:execute-api:us-east-1:000000000000:local/prod/GET/callback'), 403, { Message: 'User is not authorized to access this resource' }],
  ])('answers %s as API Gateway does, and does not cache errors', async (_name, result, status, body) => {
    const { events, call } = await frontWith(() => result);
    const answer = await call(`ref=${REF}&sig=s`);
    expect(answer.status).toBe(status);
    expect(await answer.json()).toEqual(body);
    await call(`ref=${REF}&sig=s`);
    expect(events).toHaveLength(status === 403 ? 1 : 2);
    expect(await stored(`callbacks/${REF}/${answer.headers.get('x-amzn-requestid')}`)).toEqual([]);
  });

  it('honours wildcards in the policy resource', async () => {
    const { call } = await frontWith(() => policy('Allow', 'arn:aws:execute-api:us-east-1:000000000000:local/*/POST/*'));
    expect((await call(`ref=${REF}&sig=wild`)).status).toBe(200);
  });
});

describe('local API Gateway: the S3 integration', () => {
  it('puts the exact bytes at callbacks/<principalId>/<requestId>.json and answers 200 {"ok":true}', async () => {
    // The key takes the ref the authorizer verified (its principalId), as the stack maps it, not the query's.
    const { front, call } = await frontWith(() => ({ ...policy('Allow'), principalId: REF }));
    const bytes = Buffer.concat([Buffer.from('{"a": "Köln"}\r\n'), Buffer.from([0xff, 0xfe, 0x00])]); // not even UTF-8
    const answer = await call(`ref=${REF}&ref=sfs-the-query-says-otherwise&sig=bytes`, { body: bytes });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ ok: true });
    const key = `callbacks/${REF}/${answer.headers.get('x-amzn-requestid')}.json`;
    const object = await client.send(new GetObjectCommand({ Bucket: 'results', Key: key }));
    expect(object.ContentType).toBe('application/json');
    expect(Buffer.from(await object.Body!.transformToByteArray()).equals(bytes)).toBe(true);
    expect(front.stats).toMatchObject({ count: 1, stored: 1, refused: {} });
  });

  it('answers 500 when S3 refuses the put', async () => {
    const { front, call } = await frontWith(() => policy('Allow'), {}, 'no-such-bucket');
    const answer = await call(`ref=${REF}&sig=s`);
    expect(answer.status).toBe(500);
    expect(await answer.json()).toEqual({ error: 'storing the callback failed; retry later' });
    expect(front.stats).toMatchObject({ serverErrors: 1, refused: { 500: 1 }, stored: 0 });
  });
});
