import { SignatureV4 } from '@smithy/signature-v4';
import type { IncomingHttpHeaders } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { checkPresignedRequest, NodeSha256, parseQuery, queryAuthOf, type Credentials } from '../presign-check.js';
import { S3Error } from './xml.js';

export interface S3Accounts {
  /** The account: header-signed requests and presigned URLs must be signed with it. */
  credentials: Credentials;
  /**
   * Also accepted on header-signed requests, but URLs presigned with them are refused, as S3 refuses a URL signed
   * with a role's temporary credentials once they have expired while the role's own calls went through earlier.
   */
  urlRefusedCredentials?: Credentials[];
}

export { parseQuery } from '../presign-check.js';

const MAX_SKEW_MS = 15 * 60 * 1000;
const AUTH_HEADER = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/;

/**
 * Authenticates a request as S3 does: a presigned URL (checked by presign-check), or an Authorization header whose
 * SigV4 signature must match one computed afresh over the method, path, query, signed headers and payload hash.
 * Anonymous requests are refused (the buckets are private). Returns the payload hash the request signed, if any.
 */
export async function authenticate(
  request: { method: string; url: URL; rawPath: string; rawQuery: string; headers: IncomingHttpHeaders },
  accounts: S3Accounts,
  now = new Date(),
): Promise<{ payloadHash?: string }> {
  const { method, url, headers } = request;
  const authorization = headers.authorization;
  if (queryAuthOf(request.rawQuery)) {
    if (authorization) throw new S3Error(400, 'InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified');
    return checkPresignedRequest(request, accounts.credentials, now);
  }
  if (!authorization) throw new S3Error(403, 'AccessDenied', 'Access Denied');
  if (!authorization.startsWith('AWS4-HMAC-SHA256 ')) {
    throw new S3Error(400, 'InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
  }
  const parts = AUTH_HEADER.exec(authorization);
  if (!parts) throw new S3Error(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed.');
  const [, credential, signedHeaderList, signature] = parts as unknown as [string, string, string, string];
  const [accessKeyId, , region, service, terminator] = credential.split('/');
  if (!region || !service || terminator !== 'aws4_request') throw new S3Error(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed; the Credential is mal-formed.');
  const candidates = [accounts.credentials, ...(accounts.urlRefusedCredentials ?? [])].filter((c) => c.accessKeyId === accessKeyId);
  if (candidates.length === 0) throw new S3Error(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');

  const payloadHash = headerValue(headers['x-amz-content-sha256']);
  if (!payloadHash) throw new S3Error(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  const signedAt = parseAmzDate(headerValue(headers['x-amz-date']) ?? '');
  if (!signedAt) throw new S3Error(403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  if (Math.abs(now.getTime() - signedAt.getTime()) > MAX_SKEW_MS) {
    throw new S3Error(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
  }

  const signedHeaders = signedHeaderList.split(';');
  if (!signedHeaders.includes('host')) throw new S3Error(400, 'AuthorizationHeaderMalformed', 'The host header must be signed.');
  const headersToSign: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = headerValue(headers[name]);
    if (value === undefined) throw new S3Error(403, 'SignatureDoesNotMatch', `The signed header ${name} is missing from the request.`);
    headersToSign[name] = value;
  }
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of parseQuery(request.rawQuery)) {
    const existing = query[name];
    query[name] = existing === undefined ? value : [existing, value].flat();
  }
  for (const credentials of candidates) {
    const signer = new SignatureV4({ credentials, region, service, sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
    const signed = await signer.sign(
      { method, protocol: 'http:', hostname: url.hostname, path: request.rawPath, query, headers: headersToSign, body: undefined },
      { signingDate: signedAt, signableHeaders: new Set(signedHeaders) },
    );
    const expected = /Signature=([0-9a-f]{64})$/.exec(String(signed.headers.authorization))?.[1] ?? '';
    if (expected.length === signature.length && timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) return { payloadHash };
  }
  throw new S3Error(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  return m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : undefined;
}
