import type { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { S3SceneObjects } from '../../../../lambdas/core/scenes/scene-objects.js';

/*
 * HEAD and ranged GET as S3 answers them: the client is a stand-in that records each command's input and answers
 * with the fields (or the error names and statuses) the AWS SDK gives for them.
 */

function clientAnswering(answer: (command: unknown) => unknown) {
  const sent: Array<{ name: string; input: unknown }> = [];
  const client = {
    async send(command: HeadObjectCommand | GetObjectCommand) {
      sent.push({ name: command.constructor.name, input: command.input });
      return answer(command);
    },
  };
  return { objects: new S3SceneObjects(client as unknown as S3Client), sent };
}

const failing = (err: unknown) => () => {
  throw err;
};
const awsError = (name: string, httpStatusCode: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode } });
const ref = { bucket: 'scenes', key: 'a/s.sfs', versionId: 'v1' };

describe('S3SceneObjects.head', () => {
  it('gives the size, version and ETag without its quotes, for the exact version asked', async () => {
    const { objects, sent } = clientAnswering(() => ({ ContentLength: 12, VersionId: 'v1', ETag: '"e1"' }));
    expect(await objects.head(ref)).toStrictEqual({ exists: true, size: 12, versionId: 'v1', eTag: 'e1' });
    expect(sent).toEqual([{ name: 'HeadObjectCommand', input: { Bucket: 'scenes', Key: 'a/s.sfs', VersionId: 'v1' } }]);
  });

  it('takes a missing length as 0 bytes', async () => {
    const { objects } = clientAnswering(() => ({}));
    expect(await objects.head({ bucket: 'scenes', key: 'k' })).toStrictEqual({ exists: true, size: 0, versionId: undefined, eTag: undefined });
  });

  it.each([
    ['NotFound (by its name alone)', Object.assign(new Error('NotFound'), { name: 'NotFound' })],
    ['NoSuchKey', awsError('NoSuchKey', 0)],
    ['NoSuchVersion', awsError('NoSuchVersion', 400)],
    ['any 404', awsError('UnknownError', 404)],
  ])('reads %s as no such object', async (_name, err) => {
    const { objects } = clientAnswering(failing(err));
    expect(await objects.head(ref)).toStrictEqual({ exists: false });
  });

  it('passes on every other failure, whatever was thrown', async () => {
    await expect(clientAnswering(failing(awsError('AccessDenied', 403))).objects.head(ref)).rejects.toThrow('AccessDenied');
    await expect(clientAnswering(failing(Object.assign(new Error('x'), { name: 'TimeoutError' }))).objects.head(ref)).rejects.toThrow('x');
    await expect(clientAnswering(failing(undefined)).objects.head(ref)).rejects.toBeUndefined();
  });
});

describe('S3SceneObjects.readPrefix', () => {
  it('asks for exactly the first n bytes of the exact version', async () => {
    const body = (async function* () {
      yield new Uint8Array([1]);
    })();
    const { objects, sent } = clientAnswering(() => ({ Body: body }));
    expect(await objects.readPrefix(ref, 1028)).toBe(body);
    expect(sent).toEqual([{ name: 'GetObjectCommand', input: { Bucket: 'scenes', Key: 'a/s.sfs', VersionId: 'v1', Range: 'bytes=0-1027' } }]);
  });

  it('says so when S3 sends no body', async () => {
    const { objects } = clientAnswering(() => ({}));
    await expect(objects.readPrefix(ref, 8)).rejects.toThrow('GET s3://scenes/a/s.sfs returned no body');
  });
});
