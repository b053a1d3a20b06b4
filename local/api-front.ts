import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CALLBACK_ARCHIVE_PREFIX } from '../lambdas/core/callbacks/callback-auth.js';
import { callbackAuthorizerEvent } from './events.js';
import type { Credentials } from './presign-check.js';

/** API Gateway's REST payload limit (10 MB): a larger request is refused before anything runs. */
export const API_PAYLOAD_LIMIT_BYTES = 10 * 1024 * 1024;
/** How long API Gateway keeps an authorizer's policy for the same identity sources (the stack's setting). */
export const AUTHORIZER_CACHE_TTL_SECONDS = 300;
/** API Gateway's integration timeout. */
const INTEGRATION_TIMEOUT_MS = 29_000;
/**
 * Past the payload limit a body is still read (and dropped) this far, so that an ordinary client gets to read
 * the 413; a request larger still is cut off after its answer.
 */
const DRAIN_LIMIT_BYTES = 2 * API_PAYLOAD_LIMIT_BYTES;
/** Bounds the authorizer cache's memory under a flood of distinct identities; the oldest entries go first. */
const CACHE_MAX_ENTRIES = 10_000;

type Answer = { status: number; body: unknown; errorType?: string };

/** API Gateway's answers, bodies as it (or the stack's integration responses) writes them. */
const ANSWERS = {
  missingToken: { status: 403, body: { message: 'Missing Authentication Token' }, errorType: 'MissingAuthenticationTokenException' },
  tooLarge: { status: 413, body: { message: 'Request Too Long' } },
  unauthorized: { status: 401, body: { message: 'Unauthorized' }, errorType: 'UnauthorizedException' },
  explicitDeny: { status: 403, body: { Message: 'User is not authorized to access this resource with an explicit deny' }, errorType: 'AccessDeniedException' },
  notAllowed: { status: 403, body: { Message: 'User is not authorized to access this resource' }, errorType: 'AccessDeniedException' },
  authorizerFailed: { status: 500, body: { message: null }, errorType: 'AuthorizerConfigurationException' },
  // The stack's integration response for an S3 answer of 4xx or 5xx.
  integrationFailed: { status: 500, body: { error: 'storing the callback failed; retry later' } },
  integrationTimedOut: { status: 504, body: { message: 'Endpoint request timed out' } },
  stored: { status: 200, body: { ok: true } },
} satisfies Record<string, Answer>;

export interface ApiFrontOptions {
  /**
   * Runs the REQUEST authorizer (the `callback-auth` function). Like Lambda's answer to API Gateway: a policy, or
   * an Error whose message is exactly 'Unauthorized' (→ 401); any other error or timeout → 500.
   */
  authorize: (event: APIGatewayRequestAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;
  /** Where the S3 integration (PutObject with API Gateway's role) stores callback bodies. */
  results: { endpoint: string; region: string; bucket: string; credentials: Credentials };
  /** Default AUTHORIZER_CACHE_TTL_SECONDS. */
  authorizerCacheTtlSeconds?: number;
}

/** A policy's verdict on this method; what API Gateway caches per identity. */
type Verdict = 'allow' | 'deny' | 'not-allowed';

/** Counts like API Gateway's metrics for the stage, plus what the stand-in can see inside. */
export interface ApiFrontStats {
  /** Requests answered (API Gateway's Count). */
  count: number;
  /** Answers 400–499 and 500–599 (its 4XXError and 5XXError). */
  clientErrors: number;
  serverErrors: number;
  /** Every answer that was not a 2xx, by status. */
  refused: Record<number, number>;
  authorizerInvocations: number;
  /** Requests decided from the authorizer cache, without an invocation. */
  authorizerCacheHits: number;
  /** Bodies stored in the results bucket. */
  stored: number;
}

/**
 * The callback API as the stack deploys it on API Gateway (REST): POST /callback only; the 10 MB payload limit,
 * checked while the body streams in; a REQUEST authorizer with identity sources header scale-callback-auth and
 * query ref and sig (missing or empty: 401 without invoking it), its policies cached per identity; then an S3
 * integration that puts the body, byte for byte, at `callbacks/<ref>/<requestId>.json` in the results bucket.
 */
export async function startApiFront(options: ApiFrontOptions) {
  const ttlMs = (options.authorizerCacheTtlSeconds ?? AUTHORIZER_CACHE_TTL_SECONDS) * 1000;
  const { endpoint, region, bucket, credentials } = options.results;
  // API Gateway does not retry a failed integration: Scale does.
  const s3 = new S3Client({ region, endpoint, credentials, forcePathStyle: true, maxAttempts: 1, requestChecksumCalculation: 'WHEN_REQUIRED' });
  const cache = new Map<string, { verdict: Verdict; principalId: string; expiresAt: number }>();
  const stats: ApiFrontStats = { count: 0, clientErrors: 0, serverErrors: 0, refused: {}, authorizerInvocations: 0, authorizerCacheHits: 0, stored: 0 };

  const send = (res: ServerResponse, requestId: string, answer: Answer, closeAfter = false) => {
    stats.count++;
    if (answer.status >= 400 && answer.status < 500) stats.clientErrors++;
    if (answer.status >= 500) stats.serverErrors++;
    if (answer.status >= 300) stats.refused[answer.status] = (stats.refused[answer.status] ?? 0) + 1;
    const headers = { 'content-type': 'application/json', 'x-amzn-requestid': requestId, ...(answer.errorType ? { 'x-amzn-errortype': answer.errorType } : {}) };
    res.writeHead(answer.status, closeAfter ? { ...headers, connection: 'close' } : headers);
    res.end(JSON.stringify(answer.body), () => closeAfter && res.socket?.destroy());
  };

  /** The cached verdict for these identity values, or the authorizer's; 'unauthorized'/'failed' are never cached. */
  const authorize = async (event: APIGatewayRequestAuthorizerEvent, identity: string[]): Promise<{ verdict: Verdict; principalId: string } | 'unauthorized' | 'failed'> => {
    const key = JSON.stringify(identity);
    const cached = cache.get(key);
    if (cached && cached.expiresAt > Date.now()) {
      stats.authorizerCacheHits++;
      return cached;
    }
    cache.delete(key);
    stats.authorizerInvocations++;
    let result: unknown;
    try {
      result = await options.authorize(event);
    } catch (err) {
      return (err as Error)?.message === 'Unauthorized' ? 'unauthorized' : 'failed';
    }
    const verdict = policyVerdict(result, event.methodArn);
    if (!verdict) return 'failed';
    const principalId = (result as { principalId: string }).principalId;
    if (ttlMs > 0) {
      cache.set(key, { verdict, principalId, expiresAt: Date.now() + ttlMs });
      if (cache.size > CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value!);
    }
    return { verdict, principalId };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const requestId = randomUUID();
    const requestTimeEpoch = Date.now();
    const url = new URL(req.url ?? '/', 'http://api');
    const routed = req.method === 'POST' && url.pathname === '/callback';
    const body = await readBody(req, routed ? API_PAYLOAD_LIMIT_BYTES : 0);
    if (body === 'aborted') return;
    if (!routed) return send(res, requestId, ANSWERS.missingToken, body === 'cut-off');
    if (!(body instanceof Buffer)) return send(res, requestId, ANSWERS.tooLarge, body === 'cut-off');

    const event = callbackAuthorizerEvent({ rawHeaders: req.rawHeaders, query: url.searchParams, sourceIp: req.socket.remoteAddress ?? '127.0.0.1', requestId, requestTimeEpoch });
    const authHeader = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === 'scale-callback-auth')?.[1];
    const identity = [authHeader, event.queryStringParameters?.ref, event.queryStringParameters?.sig];
    if (identity.some((value) => !value)) return send(res, requestId, ANSWERS.unauthorized);
    const authorized = await authorize(event, identity as string[]);
    const verdict = typeof authorized === 'string' ? authorized : authorized.verdict;
    if (typeof authorized === 'string' || authorized.verdict !== 'allow') {
      const refusals = { deny: ANSWERS.explicitDeny, 'not-allowed': ANSWERS.notAllowed, unauthorized: ANSWERS.unauthorized, failed: ANSWERS.authorizerFailed };
      return send(res, requestId, refusals[verdict as keyof typeof refusals]);
    }

    // As the stack maps it: the key takes the authorizer's principalId (the ref it verified), not the query's.
    const key = `${CALLBACK_ARCHIVE_PREFIX}${authorized.principalId}/${requestId}.json`;
    const deadline = AbortSignal.timeout(INTEGRATION_TIMEOUT_MS);
    try {
      // As API Gateway's integration: the body is whole in hand, its length known (an empty one included).
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length, ContentType: 'application/json' }), { abortSignal: deadline });
    } catch {
      return send(res, requestId, deadline.aborted ? ANSWERS.integrationTimedOut : ANSWERS.integrationFailed);
    }
    stats.stored++;
    send(res, requestId, ANSWERS.stored);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 'unknown', ANSWERS.integrationFailed);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      s3.destroy();
    },
  };
}

export type ApiFront = Awaited<ReturnType<typeof startApiFront>>;

/**
 * Reads a request body, keeping at most `limit` bytes: the body, or 'too-large' once the whole request was read
 * past the limit, or 'cut-off' when it went on past DRAIN_LIMIT_BYTES (stopped there; the socket must close).
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'cut-off' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > DRAIN_LIMIT_BYTES) return resolve('cut-off');
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > DRAIN_LIMIT_BYTES) {
        req.off('data', onData).pause();
        resolve('cut-off');
      }
    };
    req.on('data', onData);
    req.once('end', () => resolve(size > limit ? 'too-large' : Buffer.concat(chunks, size)));
    // A client that went away before the end of its request gets no answer (resolve keeps the first outcome).
    req.once('close', () => resolve('aborted'));
    req.once('error', () => resolve('aborted'));
  });
}

/** IAM's wildcards: `*` any run of characters, `?` one. */
function matches(pattern: string, value: string, ignoreCase = false): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, ignoreCase ? 'i' : '').test(value);
}

const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);
const isContextValue = (value: unknown) => ['string', 'number', 'boolean'].includes(typeof value);

/**
 * What API Gateway makes of an authorizer's answer for `methodArn`: an explicit Deny wins, then an Allow; no
 * statement for the method is 'not-allowed'. undefined when API Gateway would refuse the answer itself (no
 * principalId or policy, a malformed statement, a context value that is an object or array): a 500.
 */
export function policyVerdict(result: unknown, methodArn: string): Verdict | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  const { principalId, policyDocument, context } = result as Record<string, unknown>;
  if (typeof principalId !== 'string' || typeof policyDocument !== 'object' || policyDocument === null) return undefined;
  if (context !== undefined && context !== null && (typeof context !== 'object' || !Object.values(context).every(isContextValue))) return undefined;
  const statements = asList((policyDocument as { Statement?: unknown }).Statement);
  const effects: string[] = [];
  for (const statement of statements) {
    if (typeof statement !== 'object' || statement === null) return undefined;
    const { Effect, Action, Resource } = statement as Record<string, unknown>;
    const actions = asList(Action);
    const resources = asList(Resource);
    if ((Effect !== 'Allow' && Effect !== 'Deny') || ![...actions, ...resources].every((v) => typeof v === 'string')) return undefined;
    const forThisMethod =
      (actions as string[]).some((action) => matches(action, 'execute-api:Invoke', true)) && (resources as string[]).some((resource) => matches(resource, methodArn));
    if (forThisMethod) effects.push(Effect);
  }
  if (effects.includes('Deny')) return 'deny';
  return effects.includes('Allow') ? 'allow' : 'not-allowed';
}
