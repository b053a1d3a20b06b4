import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface SceneRef {
  bucket: string;
  /** The decoded object key. */
  key: string;
  versionId?: string;
  /** Without quotes. Identifies the content when the bucket is unversioned. */
  eTag?: string;
}

/**
 * The id of one upload: a stable digest of bucket, key and version (ETag when unversioned). Sent to Scale as
 * unique_id, so a second delivery of the same upload cannot create a second task.
 */
export function sceneUniqueId(ref: SceneRef): string {
  const version = ref.versionId ? `v:${ref.versionId}` : ref.eTag ? `e:${ref.eTag.replace(/"/g, '')}` : undefined;
  if (!version) throw new Error(`cannot identify s3://${ref.bucket}/${ref.key}: neither versionId nor ETag is known`);
  const digest = createHash('sha256').update(JSON.stringify([ref.bucket, ref.key, version])).digest('hex');
  return `sfs-${digest.slice(0, 40)}`;
}

/** HMAC of the uniqueId under the stack's signing key: proves a callback URL was issued by this stack. */
export function signCallbackRef(uniqueId: string, signingKey: string): string {
  return createHmac('sha256', signingKey).update(uniqueId).digest('base64url');
}

export function verifyCallbackRef(uniqueId: string, signature: string, signingKey: string): boolean {
  const expected = Buffer.from(signCallbackRef(uniqueId, signingKey));
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Constant-time comparison for shared secrets such as Scale's callback auth key. */
export function secretsEqual(given: string | undefined, expected: string): boolean {
  if (given === undefined || expected === '') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function callbackUrlFor(baseUrl: string, uniqueId: string, signingKey: string): string {
  const url = new URL(baseUrl);
  url.searchParams.set('ref', uniqueId);
  url.searchParams.set('sig', signCallbackRef(uniqueId, signingKey));
  return url.toString();
}
