import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3StoredCallbacks } from '../../../../lambdas/core/callbacks/stored-callbacks.js';
import { startLocalS3 } from '../../../../local/emulators/s3.js';

// Against the local S3: what GetObject answers (its length, NoSuchKey, NoSuchBucket) decides what is read.
const credentials = { accessKeyId: 'CALLBACKS', secretAccessKey: 'callbacks-secret-0123' };
/** API Gateway's payload limit, 10 MiB: written out here so that an edited constant shows. */
const LIMIT = 10_485_760;
let s3: Awaited<ReturnType<typeof startLocalS3>>;
let client: S3Client;
let callbacks: S3StoredCallbacks;

beforeAll(async () => {
  s3 = await startLocalS3({ buckets: ['results'], credentials });
  // One connection only: a refused body left unread would hold it, and every later read would wait for it.
  const requestHandler = { httpAgent: new Agent({ keepAlive: true, maxSockets: 1 }) };
  client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, credentials, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', requestHandler });
  callbacks = new S3StoredCallbacks(client);
});
afterAll(async () => {
  client.destroy();
  await s3.close();
});

const put = (key: string, body: string | Uint8Array) => client.send(new PutObjectCommand({ Bucket: 'results', Key: key, Body: body, ContentLength: Buffer.byteLength(body) }));
/** Fails instead of waiting forever for a connection that is never given back. */
const within = <T>(promise: Promise<T>, ms = 3_000) => Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms).unref())]);

describe('S3StoredCallbacks.read', () => {
  it('reads a stored body as UTF-8 text', async () => {
    await put('callbacks/a/1.json', '{"note":"é 東 🛰️"}');
    expect(await callbacks.read('results', 'callbacks/a/1.json')).toBe('{"note":"é 東 🛰️"}');
  });

  it('reads an empty body as empty text', async () => {
    await put('callbacks/a/empty.json', '');
    expect(await callbacks.read('results', 'callbacks/a/empty.json')).toBe('');
  });

  it('answers nothing for a body that is gone', async () => {
    expect(await callbacks.read('results', 'callbacks/a/never-stored.json')).toBeUndefined();
  });

  it('throws what is not a missing body (the message is then retried)', async () => {
    await expect(callbacks.read('no-such-bucket', 'callbacks/a/1.json')).rejects.toMatchObject({ name: 'NoSuchBucket' });
  });

  it("reads a body of exactly API Gateway's limit, and refuses one a byte larger", async () => {
    const atLimit = Buffer.alloc(LIMIT, 0x61);
    await put('callbacks/a/at-limit.json', atLimit);
    const read = await callbacks.read('results', 'callbacks/a/at-limit.json');
    expect(read?.length).toBe(LIMIT);
    await put('callbacks/a/over-limit.json', Buffer.alloc(LIMIT + 1, 0x61));
    expect(await callbacks.read('results', 'callbacks/a/over-limit.json')).toBeUndefined();
    // The refused body was read to its end, so the client's only connection is free for the next read.
    expect(await within(callbacks.read('results', 'callbacks/a/1.json'))).toBe('{"note":"é 東 🛰️"}');
  });
});
