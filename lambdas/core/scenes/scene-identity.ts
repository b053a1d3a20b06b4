import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface SceneRef {
  bucket: string;
  /** The decoded object key. */
  key: string;
  versionId?: string;
  /** Without quotes. Identifies the content when the bucket is unversioned. */
  eTag?: string;
}

/** What S3's event says about one upload: enough to tell it from every other upload of the same key. */
export interface UploadIdentity extends SceneRef {
  /** S3's per-key event order (hex); identifies a write where there is no real versionId. */
  sequencer?: string;
}

/** A versionId that names one version. "null" is what S3 gives every write while versioning is off or suspended. */
export function isRealVersionId(versionId: string | undefined): versionId is string {
  return versionId !== undefined && versionId !== '' && versionId !== 'null';
}

/**
 * The id of one upload: a digest of bucket, key and version, or — where the bucket gives no real version (never
 * versioned, suspended: "null") — of the event's sequencer and ETag, so a re-upload of the same bytes is a new
 * upload and a redelivered event is not. Sent to Scale as unique_id: a second delivery cannot create a second task.
 */
export function sceneUniqueId(ref: UploadIdentity): string {
  const eTag = ref.eTag?.replace(/"/g, '');
  const version = isRealVersionId(ref.versionId) ? `v:${ref.versionId}` : ref.sequencer && eTag ? `s:${ref.sequencer}:e:${eTag}` : undefined;
  if (!version) throw new Error(`cannot identify an upload of s3://${ref.bucket}/${ref.key}: the event has neither a versionId nor a sequencer and ETag`);
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
