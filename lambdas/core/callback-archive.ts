import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { CallbackArchive } from './apply-callback.js';

export class S3CallbackArchive implements CallbackArchive {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async put(key: string, body: string): Promise<{ bucket: string; key: string }> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/json' }));
    return { bucket: this.bucket, key };
  }
}
