import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, CREDENTIALS, startKit, type Kit } from './local-s3-kit.js';

const ROLE = { accessKeyId: CREDENTIALS.accessKeyId, secretAccessKey: 'role-secret-whose-session-ends' };

let kit: Kit;
beforeAll(async () => {
  kit = await startKit('enabled', { urlRefusedCredentials: [ROLE] });
});
afterAll(() => kit.close());

const codeOf = async (answer: Response) => /<Code>([^<]+)<\/Code>/.exec(await answer.text())?.[1];
const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.fail('expected S3 to refuse'),
    (err: { name: string; $metadata: { httpStatusCode?: number } }) => [err.name, err.$metadata.httpStatusCode],
  );

/** The parts of the SDK's outgoing request a man in the middle changes. */
interface SignedRequest {
  path: string;
  headers: Record<string, string>;
  body?: unknown;
}

/** A client whose requests are changed after the SDK signed them, as a man in the middle would. */
function tamperingClient(change: (request: SignedRequest) => void): S3Client {
  const client = clientFor(kit.s3.endpoint);
  client.middlewareStack.add(
    (next) => async (args) => {
      change(args.request as SignedRequest);
      return next(args);
    },
    { step: 'deserialize', name: 'tamperAfterSigning' },
  );
  return client;
}

describe('presigned URLs', () => {
  it('serve the exact version they name, and a tampered or dropped versionId is refused', async () => {
    const old = await kit.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'pre/scene.sfs', Body: 'old version' }));
    const current = await kit.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'pre/scene.sfs', Body: 'current version' }));
    const url = await getSignedUrl(kit.client, new GetObjectCommand({ Bucket: 'data', Key: 'pre/scene.sfs', VersionId: old.VersionId }), { expiresIn: 300 });
    const answer = await fetch(url);
    expect([answer.status, await answer.text(), answer.headers.get('x-amz-version-id')]).toEqual([200, 'old version', old.VersionId]);

    const tampered = url.replace(encodeURIComponent(old.VersionId!), encodeURIComponent(current.VersionId!));
    expect(tampered).not.toBe(url);
    const refused = await fetch(tampered);
    expect([refused.status, await codeOf(refused)]).toEqual([403, 'SignatureDoesNotMatch']);
    const dropped = await fetch(url.replace(/versionId=[^&]+&?/, ''));
    expect([dropped.status, await codeOf(dropped)]).toEqual([403, 'SignatureDoesNotMatch']);
  });

  it('still serve an older version after the key was deleted', async () => {
    const kept = await kit.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'pre/deleted.sfs', Body: 'still here' }));
    await kit.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'pre/deleted.sfs' }));
    const url = await getSignedUrl(kit.client, new GetObjectCommand({ Bucket: 'data', Key: 'pre/deleted.sfs', VersionId: kept.VersionId }), { expiresIn: 60 });
    expect(await (await fetch(url)).text()).toBe('still here');
    const current = await fetch(await getSignedUrl(kit.client, new GetObjectCommand({ Bucket: 'data', Key: 'pre/deleted.sfs' }), { expiresIn: 60 }));
    expect([current.status, current.headers.get('x-amz-delete-marker')]).toEqual([404, 'true']);
  });

  it('are refused when signed with credentials that S3 accepts only on the signer\'s own calls', async () => {
    const role = clientFor(kit.s3.endpoint, ROLE);
    await role.send(new PutObjectCommand({ Bucket: 'data', Key: 'pre/role.sfs', Body: 'by the role' }));
    expect((await role.send(new HeadObjectCommand({ Bucket: 'data', Key: 'pre/role.sfs' }))).ContentLength).toBe(11);
    const url = await getSignedUrl(role, new GetObjectCommand({ Bucket: 'data', Key: 'pre/role.sfs' }), { expiresIn: 60 });
    const answer = await fetch(url);
    expect([answer.status, await codeOf(answer)]).toEqual([403, 'SignatureDoesNotMatch']);
  });
});

describe('header-signed requests', () => {
  it('are refused when signed with the wrong secret or an unknown key, and change nothing', async () => {
    const before = kit.records.length;
    const wrongSecret = clientFor(kit.s3.endpoint, { ...CREDENTIALS, secretAccessKey: 'guessed' });
    expect(await refusal(wrongSecret.send(new PutObjectCommand({ Bucket: 'data', Key: 'auth/x.sfs', Body: 'x' })))).toEqual(['SignatureDoesNotMatch', 403]);
    expect(await refusal(wrongSecret.send(new GetObjectCommand({ Bucket: 'data', Key: 'pre/scene.sfs' })))).toEqual(['SignatureDoesNotMatch', 403]);
    const unknownKey = clientFor(kit.s3.endpoint, { accessKeyId: 'NOBODY', secretAccessKey: CREDENTIALS.secretAccessKey });
    expect(await refusal(unknownKey.send(new PutObjectCommand({ Bucket: 'data', Key: 'auth/x.sfs', Body: 'x' })))).toEqual(['InvalidAccessKeyId', 403]);
    expect(kit.records.length).toBe(before);
    expect(await refusal(kit.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'auth/x.sfs' })))).toEqual(['NotFound', 404]);
  });

  it('are refused when the key, a signed header or the body is changed after signing', async () => {
    const before = kit.records.length;
    const otherKey = tamperingClient((r) => (r.path = r.path.replace('auth/meant.sfs', 'auth/other.sfs')));
    expect(await refusal(otherKey.send(new PutObjectCommand({ Bucket: 'data', Key: 'auth/meant.sfs', Body: 'x' })))).toEqual(['SignatureDoesNotMatch', 403]);
    const otherMeta = tamperingClient((r) => (r.headers['x-amz-meta-owner'] = 'mallory'));
    expect(await refusal(otherMeta.send(new PutObjectCommand({ Bucket: 'data', Key: 'auth/meta.sfs', Body: 'x', Metadata: { owner: 'alice' } })))).toEqual(['SignatureDoesNotMatch', 403]);
    const otherBody = tamperingClient((r) => {
      expect(r.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
      r.body = 'evil';
    });
    expect(await refusal(otherBody.send(new PutObjectCommand({ Bucket: 'data', Key: 'auth/body.sfs', Body: 'good' })))).toEqual(['XAmzContentSHA256Mismatch', 400]);
    expect(kit.records.length).toBe(before);
  });

  it('are refused when signed too long ago', async () => {
    const late = clientFor(kit.s3.endpoint, CREDENTIALS, { systemClockOffset: -20 * 60 * 1000, maxAttempts: 1 });
    expect(await refusal(late.send(new GetObjectCommand({ Bucket: 'data', Key: 'pre/scene.sfs' })))).toEqual(['RequestTimeTooSkewed', 403]);
  });

  it('are required: an anonymous request is refused', async () => {
    const get = await fetch(`${kit.s3.endpoint}/data/pre/scene.sfs`);
    expect([get.status, await codeOf(get)]).toEqual([403, 'AccessDenied']);
    const put = await fetch(`${kit.s3.endpoint}/data/anon.sfs`, { method: 'PUT', body: 'anonymous' });
    expect([put.status, await codeOf(put)]).toEqual([403, 'AccessDenied']);
    expect(kit.eventsFor('anon.sfs')).toEqual([]);
  });
});
