import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { S3SceneObjects } from '../../../../lambdas/core/scenes/scene-objects.js';
import { presignedUrlExpiry } from '../../../helpers/identity.js';

// Presigning is local arithmetic and signing: no request is sent, so no endpoint is needed.
const objects = (credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }) =>
  new S3SceneObjects(new S3Client({ region: 'eu-west-1', credentials }));
const ref = { bucket: 'scenes', key: 'dir/scene one.sfs', versionId: 'v1' };

describe('presigned attachment URLs say when they stop working only when that is known', () => {
  it('static credentials: the time the URL itself says it dies (its X-Amz-Date plus X-Amz-Expires)', async () => {
    const before = Date.now();
    const { url, expiresAt } = await objects({ accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' }).presign(ref, 3_600);
    const query = new URL(url).searchParams;
    expect(query.get('X-Amz-Expires')).toBe('3600');
    expect(query.get('versionId')).toBe('v1');
    // Exactly what S3 will honour: never a moment later (the URL's date has whole seconds).
    expect(expiresAt!.toISOString()).toBe(presignedUrlExpiry(url).toISOString());
    expect(expiresAt!.getTime() - before).toBeGreaterThan(3_600_000 - 1_000);
    expect(expiresAt!.getTime() - Date.now()).toBeLessThanOrEqual(3_600_000);
  });

  it('temporary credentials with a known expiry: the earlier of the two', async () => {
    const expiration = new Date(Date.now() + 15 * 60_000);
    const { url, expiresAt } = await objects({ accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token', expiration }).presign(ref, 3_600);
    expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('3600');
    expect(expiresAt).toEqual(expiration);
    // Credentials that outlive the URL: the URL's own end.
    const later = new Date(Date.now() + 5 * 3_600_000);
    const longer = await objects({ accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token', expiration: later }).presign(ref, 3_600);
    expect(longer.expiresAt!.toISOString()).toBe(presignedUrlExpiry(longer.url).toISOString());
  });

  it('a Lambda role (a session with no expiry the SDK can see): no claim at all', async () => {
    const { url, expiresAt } = await objects({ accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' }).presign(ref, 3_600);
    expect(new URL(url).searchParams.get('X-Amz-Security-Token')).toBe('token');
    expect(expiresAt).toBeUndefined();
  });
});
