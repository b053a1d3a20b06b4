import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { S3Error } from './s3/xml.js';

const toBytes = (data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof data === 'string' ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);

/** SHA-256 (and HMAC-SHA-256 when keyed) in the shape the SDK's signer expects, backed by node:crypto. */
export class NodeSha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** A request exactly as it arrived: path and query undecoded, as the signer saw them. */
export interface QuerySignedRequest {
  method: string;
  rawPath: string;
  rawQuery: string;
  headers: IncomingHttpHeaders;
}

/** The local S3's region: a URL signed for another is refused, as S3 refuses one signed for the wrong region. */
export const LOCAL_S3_REGION = 'us-east-1';

/** The query of a request as S3 reads it: percent-decoded, '+' kept as '+', repeated names in order. */
export function parseQuery(search: string): Array<[string, string]> {
  if (search.startsWith('?')) search = search.slice(1);
  if (!search) return [];
  try {
    return search.split('&').filter(Boolean).map((pair) => {
      const at = pair.indexOf('=');
      return at < 0 ? [decodeURIComponent(pair), ''] : [decodeURIComponent(pair.slice(0, at)), decodeURIComponent(pair.slice(at + 1))];
    });
  } catch {
    throw new S3Error(400, 'InvalidArgument', 'The query string is not correctly percent-encoded.');
  }
}

const ONE_MECHANISM = 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified';

/** Which query-string authentication a request carries: SigV4 (`X-Amz-*`), SigV2 (`AWSAccessKeyId`/`Signature`), or none. */
export function queryAuthOf(rawQuery: string): 'sigv4' | 'sigv2' | undefined {
  const names = new Set(parseQuery(rawQuery).map(([name]) => name));
  const v4 = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature'].some((name) => names.has(name));
  const v2 = names.has('AWSAccessKeyId') || names.has('Signature');
  if (v4 && v2) throw new S3Error(400, 'InvalidArgument', ONE_MECHANISM);
  return v4 ? 'sigv4' : v2 ? 'sigv2' : undefined;
}

/**
 * Verifies a query-signed (presigned) request as S3 does, SigV4 or SigV2: known access key, not expired, and a
 * signature that matches one computed afresh from the request with the secret key. Throws the S3Error S3 answers
 * with; returns the payload hash a SigV4 URL signed (UNSIGNED-PAYLOAD unless the URL names one).
 */
export function checkPresignedRequest(request: QuerySignedRequest, credentials: Credentials, now = new Date()): { payloadHash?: string } {
  const kind = queryAuthOf(request.rawQuery);
  if (kind === 'sigv4') return checkSigV4(request, credentials, now);
  if (kind === 'sigv2') return checkSigV2(request, credentials, now);
  throw new S3Error(403, 'AccessDenied', 'Access Denied');
}

const queryError = (message: string, details: Record<string, string> = {}) => new S3Error(400, 'AuthorizationQueryParametersError', message, {}, details);
const unknownKey = (accessKeyId: string) =>
  new S3Error(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {}, { AWSAccessKeyId: accessKeyId });
const mismatch = (details: Record<string, string>) =>
  new S3Error(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', {}, details);
/** S3 states times in its errors to the second. */
const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const expired = (expiresAtMs: number, now: Date, details: Record<string, string> = {}) =>
  new S3Error(403, 'AccessDenied', 'Request has expired', {}, { ...details, Expires: isoSeconds(expiresAtMs), ServerTime: isoSeconds(now.getTime()) });

function sameText(given: string, computed: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(computed);
  return a.length === b.length && timingSafeEqual(a, b);
}

function headerText(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** RFC 3986 encoding as SigV4 specifies it: everything but A-Z a-z 0-9 - _ . ~ is percent-encoded. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** S3 signs the key it resolved, encoded once: the path decoded and re-encoded segment by segment (no dot-segment folding). */
function canonicalUri(rawPath: string): string {
  try {
    return rawPath.split('/').map((segment) => uriEncode(decodeURIComponent(segment))).join('/');
  } catch {
    throw new S3Error(400, 'InvalidURI', 'Could not parse the specified URI.');
  }
}

const SIGV4_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', 'X-Amz-Expires'];
const SEVEN_DAYS_S = 604_800;

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  return m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : undefined;
}

function checkSigV4(request: QuerySignedRequest, credentials: Credentials, now: Date): { payloadHash: string } {
  const pairs = parseQuery(request.rawQuery);
  const param = (name: string) => pairs.find(([n]) => n === name)?.[1];
  if (SIGV4_PARAMS.some((name) => !param(name))) {
    throw queryError('Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
  }
  if (param('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') throw queryError('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  const amzDate = param('X-Amz-Date')!;
  const signedAt = parseAmzDate(amzDate);
  if (!signedAt) throw queryError('X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"');
  const scope = param('X-Amz-Credential')!.split('/');
  const [accessKeyId, day, region, service, terminator] = scope;
  if (scope.length !== 5 || !accessKeyId || terminator !== 'aws4_request') {
    throw queryError('Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
  }
  if (day !== amzDate.slice(0, 8)) throw queryError(`Invalid credential date "${day}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  if (region !== LOCAL_S3_REGION) {
    throw queryError(`Error parsing the X-Amz-Credential parameter; the region '${region}' is wrong; expecting '${LOCAL_S3_REGION}'`, { Region: LOCAL_S3_REGION });
  }
  if (service !== 's3') throw queryError(`Error parsing the X-Amz-Credential parameter; incorrect service "${service}". This endpoint belongs to "s3".`);
  const expiresText = param('X-Amz-Expires')!;
  if (!/^-?\d+$/.test(expiresText)) throw queryError('X-Amz-Expires should be a number');
  const expiresIn = Number(expiresText);
  if (expiresIn < 0) throw queryError('X-Amz-Expires must be non-negative');
  if (expiresIn > SEVEN_DAYS_S) throw queryError(`X-Amz-Expires must be less than a week (in seconds) that is; the maximum expires is ${SEVEN_DAYS_S} seconds`);
  if (accessKeyId !== credentials.accessKeyId) throw unknownKey(accessKeyId);
  const expiresAt = signedAt.getTime() + expiresIn * 1000;
  if (now.getTime() > expiresAt) throw expired(expiresAt, now, { 'X-Amz-Expires': expiresText });

  const signedHeaders = param('X-Amz-SignedHeaders')!.split(';');
  // A URL grants exactly what was signed: x-amz-* headers added by whoever holds it are refused, not ignored.
  const notSigned = Object.keys(request.headers).filter((name) => name.startsWith('x-amz-') && !signedHeaders.includes(name));
  if (notSigned.length > 0) {
    throw new S3Error(403, 'AccessDenied', 'There were headers present in the request which were not signed', {}, { HeadersNotSigned: notSigned.join(', ') });
  }
  // A query-signed request signs no body unless the URL says otherwise: a signed x-amz-content-sha256 header, or
  // the X-Amz-Content-Sha256 parameter some presigners add (itself covered by the signature, as every parameter is).
  const payloadHash = (signedHeaders.includes('x-amz-content-sha256') ? headerText(request.headers, 'x-amz-content-sha256') : undefined)
    ?? param('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
  const canonicalQuery = pairs
    .filter(([name]) => name !== 'X-Amz-Signature')
    .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${(headerText(request.headers, name) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [request.method, canonicalUri(request.rawPath), canonicalQuery, canonicalHeaders, signedHeaders.join(';'), payloadHash].join('\n');
  const credentialScope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, credentialScope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const signingKey = [day, region, service, 'aws4_request'].reduce<Buffer>(
    (key, part) => createHmac('sha256', key).update(part).digest(),
    Buffer.from(`AWS4${credentials.secretAccessKey}`),
  );
  const computed = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  const given = param('X-Amz-Signature')!;
  if (!sameText(given, computed)) throw mismatch({ AWSAccessKeyId: accessKeyId, StringToSign: stringToSign, SignatureProvided: given, CanonicalRequest: canonicalRequest });
  return { payloadHash };
}

/**
 * The query parameters S3 counts as part of the resource in a SigV2 signature (S3's documented list plus the ones
 * the SDKs sign); any other parameter is outside the signature, as with S3.
 */
const SIGV2_SUBRESOURCES = new Set([
  'accelerate', 'acl', 'analytics', 'cors', 'delete', 'inventory', 'lifecycle', 'location', 'logging', 'metrics', 'notification', 'object-lock',
  'partNumber', 'policy', 'replication', 'requestPayment', 'response-cache-control', 'response-content-disposition', 'response-content-encoding',
  'response-content-language', 'response-content-type', 'response-expires', 'restore', 'select', 'select-type', 'tagging', 'torrent', 'uploadId',
  'uploads', 'versionId', 'versioning', 'versions', 'website',
]);

/**
 * SigV2 query authentication: Signature = Base64(HMAC-SHA1(secret, StringToSign)) with
 * StringToSign = VERB \n Content-MD5 \n Content-Type \n Expires \n CanonicalizedAmzHeaders CanonicalizedResource,
 * the resource being the path exactly as sent followed by the sorted subresources with their decoded values.
 */
function checkSigV2(request: QuerySignedRequest, credentials: Credentials, now: Date): { payloadHash?: string } {
  const pairs = parseQuery(request.rawQuery);
  const param = (name: string) => pairs.find(([n]) => n === name)?.[1];
  const [accessKeyId, signature, expires] = [param('AWSAccessKeyId'), param('Signature'), param('Expires')];
  if (!accessKeyId || !signature || !expires) throw new S3Error(403, 'AccessDenied', 'Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters');
  if (accessKeyId !== credentials.accessKeyId) throw unknownKey(accessKeyId);
  if (!/^\d+$/.test(expires)) throw new S3Error(403, 'AccessDenied', `Invalid date (should be seconds since epoch): ${expires}`);
  if (now.getTime() > Number(expires) * 1000) throw expired(Number(expires) * 1000, now);

  const amzHeaders = new Map<string, string[]>();
  const addAmz = (name: string, value: string) => amzHeaders.set(name, [...(amzHeaders.get(name) ?? []), value.trim()]);
  for (const [name, value] of Object.entries(request.headers)) if (name.startsWith('x-amz-') && value !== undefined) addAmz(name, [value].flat().join(','));
  // Presigners move x-amz-* headers (a session token, say) into the query; S3 signs them as headers all the same.
  for (const [name, value] of pairs) if (name.toLowerCase().startsWith('x-amz-')) addAmz(name.toLowerCase(), value);
  const canonicalAmzHeaders = [...amzHeaders.keys()].sort().map((name) => `${name}:${amzHeaders.get(name)!.join(',')}\n`).join('');

  // A subresource written without '=' is signed without one; values are signed decoded, in name order.
  const subresources: Array<{ name: string; signed: string }> = [];
  for (const raw of request.rawQuery.split('&').filter(Boolean)) {
    const [name, value] = parseQuery(raw)[0]!;
    if (SIGV2_SUBRESOURCES.has(name)) subresources.push({ name, signed: raw.includes('=') ? `${name}=${value}` : name });
  }
  const resourceQuery = subresources.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(({ signed }) => signed).join('&');
  const canonicalResource = request.rawPath + (resourceQuery ? `?${resourceQuery}` : '');
  const stringToSign = `${request.method}\n${headerText(request.headers, 'content-md5') ?? ''}\n${headerText(request.headers, 'content-type') ?? ''}\n${expires}\n${canonicalAmzHeaders}${canonicalResource}`;
  const computed = createHmac('sha1', credentials.secretAccessKey).update(stringToSign, 'utf8').digest('base64');
  if (!sameText(signature, computed)) throw mismatch({ AWSAccessKeyId: accessKeyId, StringToSign: stringToSign, SignatureProvided: signature });
  return {};
}
