import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { SceneRef } from './scene-identity.js';

export type ObjectHead = { exists: false } | { exists: true; size: number; versionId?: string; eTag?: string };

/** The port through which the core reads uploads. */
export interface SceneObjects {
  head(ref: SceneRef): Promise<ObjectHead>;
  /** The first `bytes` bytes of the object (a ranged GET), as a stream the caller may stop reading early. */
  readPrefix(ref: SceneRef, bytes: number): Promise<AsyncIterable<Uint8Array>>;
  /** A GET URL for this exact version, and when it stops working — when that can be known. */
  presign(ref: SceneRef, expiresInSeconds: number): Promise<{ url: string; expiresAt?: Date }>;
}

const isNotFound = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.name === 'NoSuchVersion' || e?.$metadata?.httpStatusCode === 404;
};

export class S3SceneObjects implements SceneObjects {
  constructor(private readonly s3: S3Client) {}

  async head(ref: SceneRef): Promise<ObjectHead> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key, VersionId: ref.versionId }));
      return { exists: true, size: head.ContentLength ?? 0, versionId: head.VersionId, eTag: head.ETag?.replace(/"/g, '') };
    } catch (err) {
      if (isNotFound(err)) return { exists: false };
      throw err;
    }
  }

  async readPrefix(ref: SceneRef, bytes: number): Promise<AsyncIterable<Uint8Array>> {
    const object = await this.s3.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key, VersionId: ref.versionId, Range: `bytes=0-${bytes - 1}` }));
    if (!object.Body) throw new Error(`GET s3://${ref.bucket}/${ref.key} returned no body`);
    return object.Body as AsyncIterable<Uint8Array>;
  }

  async presign(ref: SceneRef, expiresInSeconds: number): Promise<{ url: string; expiresAt?: Date }> {
    // The URL carries its signing time in whole seconds (X-Amz-Date) and S3 counts its lifetime from there: signed
    // at a whole second, the time claimed below is the one S3 honours, not up to a second later.
    const signedAt = Math.floor(Date.now() / 1000) * 1000;
    const url = await getSignedUrl(this.s3, new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key, VersionId: ref.versionId }), {
      expiresIn: expiresInSeconds,
      signingDate: new Date(signedAt),
    });
    // A URL signed with temporary credentials dies with them, whatever it asked for. A Lambda role's session
    // carries no expiry the SDK can see, so then the true time is unknown and none is claimed.
    const credentials = await this.s3.config.credentials();
    const asked = signedAt + expiresInSeconds * 1000;
    if (credentials.expiration) return { url, expiresAt: new Date(Math.min(asked, credentials.expiration.getTime())) };
    return credentials.sessionToken ? { url } : { url, expiresAt: new Date(asked) };
  }
}
