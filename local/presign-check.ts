import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

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

export type PresignCheck = { ok: true } | { ok: false; code: 'SignatureDoesNotMatch' | 'AccessDenied' | 'InvalidAccessKeyId'; message: string };

const SIGNING_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'];

/** S3 presigned URLs say UNSIGNED-PAYLOAD in the query; the signer reads the payload hash from this header. */
function payloadHash(q: URLSearchParams): Record<string, string> {
  const value = q.get('X-Amz-Content-Sha256');
  return value ? { 'x-amz-content-sha256': value } : {};
}

/** Is this request a presigned (query-signed) one? */
export function isPresigned(url: URL): boolean {
  return url.searchParams.has('X-Amz-Signature');
}

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  return m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : undefined;
}

/**
 * Verifies a presigned S3 GET/HEAD the way S3 does: known access key, not expired, and a SigV4 query signature
 * that matches one computed afresh from the request (method, path, query, host) with the secret key.
 */
export async function checkPresignedRequest(method: string, url: URL, host: string, credentials: Credentials, now = new Date()): Promise<PresignCheck> {
  const q = url.searchParams;
  const missing = SIGNING_PARAMS.filter((p) => !q.get(p));
  if (missing.length > 0) return { ok: false, code: 'AccessDenied', message: `Query-string authentication requires ${missing.join(', ')}` };
  const [accessKeyId, day, region, service] = q.get('X-Amz-Credential')!.split('/');
  if (accessKeyId !== credentials.accessKeyId) {
    return { ok: false, code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' };
  }
  const signedAt = parseAmzDate(q.get('X-Amz-Date')!);
  const expiresIn = Number(q.get('X-Amz-Expires'));
  if (!signedAt || !Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > 604_800 || !day || !region || !service) {
    return { ok: false, code: 'AccessDenied', message: 'The presigned URL is malformed.' };
  }
  if (now.getTime() > signedAt.getTime() + expiresIn * 1000) return { ok: false, code: 'AccessDenied', message: 'Request has expired' };

  const query: Record<string, string | string[]> = {};
  for (const [key, value] of q) {
    if (key === 'X-Amz-Signature') continue;
    const existing = query[key];
    query[key] = existing === undefined ? value : [existing, value].flat();
  }
  const signer = new SignatureV4({ credentials, region, service, sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
  const signedHeaders = q.get('X-Amz-SignedHeaders')!.split(';');
  // The payload hash travels in the query; it is signed only when the URL says so.
  const expected = await signer.presign(
    { method, protocol: url.protocol, hostname: url.hostname, port: url.port ? Number(url.port) : undefined, path: url.pathname, query, headers: { host, ...payloadHash(q) }, body: undefined },
    { signingDate: signedAt, expiresIn, signableHeaders: new Set(signedHeaders), unhoistableHeaders: new Set(['x-amz-content-sha256']), unsignableHeaders: new Set(signedHeaders.includes('x-amz-content-sha256') ? [] : ['x-amz-content-sha256']) },
  );
  const given = Buffer.from(q.get('X-Amz-Signature')!);
  const computed = Buffer.from(String(expected.query?.['X-Amz-Signature']));
  if (given.length !== computed.length || !timingSafeEqual(given, computed)) {
    return { ok: false, code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.' };
  }
  return { ok: true };
}
