import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { S3SceneObjects } from '../../../../lambdas/core/scenes/scene-objects.js';

// Presigning is local arithmetic and signing: no request is sent, so no endpoint is needed.
const objects = (credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }) =>
  new S3SceneObjects(new S3Client({ region: 'eu-west-1', credentials }));
const ref = { bucket: 'scenes', key: 'dir/scene one.sfs', versionId: 'v1' };

describe('presigned attachment URLs say when they stop working only when that is known', () => {
  it('static credentials: the lifetime the URL asks for', async () => {
    const before = Date.now();
    const { url, expiresAt } = await objects({ accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' }).presign(ref, 3_600);
    expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('3600');
    expect(new URL(url).searchParams.get('versionId')).toBe('v1');
    expect(expiresAt!.getTime() - before).toBeGreaterThanOrEqual(3_600_000);
    expect(expiresAt!.getTime() - before).toBeLessThan(3_600_000 + 5_000);
  });

  it('temporary credentials with a known expiry: the earlier of the two', async () => {
    const expiration = new Date(Date.now() + 15 * 60_000);
    const { url, expiresAt } = await objects({ accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token', expiration }).presign(ref, 3_600);
    expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('3600');
    expect(expiresAt).toEqual(expiration);
  });

  it('a Lambda role (a session with no expiry the SDK can see): no claim at all', async () => {
    const { url, expiresAt } = await objects({ accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' }).presign(ref, 3_600);
    expect(new URL(url).searchParams.get('X-Amz-Security-Token')).toBe('token');
    expect(expiresAt).toBeUndefined();
  });
});
