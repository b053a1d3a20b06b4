import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/** API Gateway's payload limit: no stored callback can be larger, so a larger object is not one of ours. */
export const MAX_CALLBACK_BYTES = 10 * 1024 * 1024;

/** Reads callbacks API Gateway stored in the results bucket. */
export class S3StoredCallbacks {
  constructor(private readonly s3: S3Client) {}

  /** The object's text; undefined when it is gone or larger than any callback can be. */
  async read(bucket: string, key: string): Promise<string | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if ((object.ContentLength ?? 0) > MAX_CALLBACK_BYTES) {
        await object.Body?.transformToByteArray().catch(() => undefined);
        return undefined;
      }
      return (await object.Body?.transformToString('utf8')) ?? '';
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
      throw err;
    }
  }
}
