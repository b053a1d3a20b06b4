import { createHash, createHmac } from 'node:crypto';

/*
 * What create-task derives from an upload, computed here from the documented rules rather than by the code under
 * test, so a test's expected value cannot drift with the product: an upload's uniqueId, the signature in its
 * callback URL, and when a presigned attachment URL stops working. Each rule is pinned by literal vectors
 * (computed once with sha256sum, openssl and Python) in test/lambdas/core/units.test.ts and
 * test/local/presigned-urls.test.ts.
 */

/** What an S3 event says of one write. */
export interface UploadFacts {
  bucket: string;
  key: string;
  versionId?: string;
  eTag?: string;
  sequencer?: string;
}

/**
 * 'sfs-' + the first 40 hex digits of SHA-256 over the UTF-8 JSON text of [bucket, key, version], where version
 * is "v:<versionId>" for a real version, else "s:<sequencer>:e:<eTag without quotes>". "null" (versioning off or
 * suspended) and "" are no version.
 */
export function expectedUniqueId(upload: UploadFacts): string {
  const realVersion = upload.versionId !== undefined && upload.versionId !== '' && upload.versionId !== 'null';
  const eTag = upload.eTag?.replace(/^"(.*)"$/, '$1');
  let version: string;
  if (realVersion) version = `v:${upload.versionId}`;
  else if (upload.sequencer && eTag) version = `s:${upload.sequencer}:e:${eTag}`;
  else throw new Error(`no identity for s3://${upload.bucket}/${upload.key}: neither a real versionId nor a sequencer and ETag`);
  const text = JSON.stringify([upload.bucket, upload.key, version]);
  return `sfs-${createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex').slice(0, 40)}`;
}

/** HMAC-SHA256 of the uniqueId under the signing key, base64url without padding: the callback URL's `sig`. */
export function expectedCallbackSignature(uniqueId: string, signingKey: string): string {
  const mac = createHmac('sha256', Buffer.from(signingKey, 'utf8')).update(Buffer.from(uniqueId, 'utf8')).digest('base64');
  return mac.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * When S3 stops honouring a presigned URL, from the URL alone: SigV4's X-Amz-Date (signing time, whole seconds)
 * plus X-Amz-Expires seconds, or SigV2's Expires (epoch seconds).
 */
export function presignedUrlExpiry(url: string): Date {
  const query = new URL(url).searchParams;
  const amzDate = query.get('X-Amz-Date');
  const amzExpires = query.get('X-Amz-Expires');
  if (amzDate !== null && amzExpires !== null) {
    const parts = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (!parts || !/^\d+$/.test(amzExpires)) throw new Error(`unreadable X-Amz-Date ${amzDate} or X-Amz-Expires ${amzExpires}`);
    const [, y, mo, d, h, mi, s] = parts.map(Number) as [number, number, number, number, number, number, number];
    return new Date(Date.UTC(y, mo - 1, d, h, mi, s) + Number(amzExpires) * 1000);
  }
  const expires = query.get('Expires');
  if (expires !== null && /^\d+$/.test(expires)) return new Date(Number(expires) * 1000);
  throw new Error(`not a presigned URL (no X-Amz-Date and X-Amz-Expires, no Expires): ${url}`);
}
