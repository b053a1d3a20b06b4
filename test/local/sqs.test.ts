import { GetQueueUrlCommand, QueueDoesNotExist, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalSqs, type LocalSqs } from '../../local/emulators/sqs.js';

const received: string[] = [];
let sqs: LocalSqs;
let client: SQSClient;
beforeAll(async () => {
  sqs = await startLocalSqs({ queues: { ingest: { send: (body) => void received.push(body) } } });
  client = new SQSClient({ region: 'us-east-1', endpoint: sqs.endpoint, credentials: { accessKeyId: 'LOCAL', secretAccessKey: 'LOCAL' } });
});
afterAll(async () => {
  client?.destroy();
  await sqs?.close();
});

describe('local SQS (JSON protocol, AWS SDK v3)', () => {
  it('hands a SendMessage body to the queue, byte for byte, with an MD5 the SDK checks', async () => {
    const body = JSON.stringify({ Records: [{ s3: { object: { key: 'a+b%C3%A9.sfs' } } }], note: 'Köln, 東京 ✓' });
    const queueUrl = sqs.queueUrl('ingest');
    expect(queueUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/000000000000\/ingest$/);
    const out = await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    expect(out.MessageId).toMatch(/^[0-9a-f-]{36}$/);
    // The SDK compares MD5OfMessageBody with its own MD5 of the UTF-8 body and throws on a mismatch.
    expect(received.at(-1)).toBe(body);
    expect(sqs.sent.at(-1)).toEqual({ queue: 'ingest', messageId: out.MessageId, body, delaySeconds: 0 });
  });

  it('answers GetQueueUrl with the URL SendMessage takes', async () => {
    const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: 'ingest' }));
    expect(QueueUrl).toBe(sqs.queueUrl('ingest'));
    const before = received.length;
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x' }));
    expect(received.slice(before)).toEqual(['x']);
  });

  it('refuses an unknown queue with SQS\'s QueueDoesNotExist, by name and by URL (another name or account)', async () => {
    await expect(client.send(new GetQueueUrlCommand({ QueueName: 'nope' }))).rejects.toBeInstanceOf(QueueDoesNotExist);
    const before = received.length;
    for (const url of [`${sqs.endpoint}/000000000000/nope`, `${sqs.endpoint}/111111111111/ingest`]) {
      const failure = await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' })).catch((err: unknown) => err);
      expect(failure, url).toBeInstanceOf(QueueDoesNotExist);
      expect(failure).toMatchObject({ name: 'QueueDoesNotExist', message: 'The specified queue does not exist.', $metadata: { httpStatusCode: 400 } });
    }
    expect(received.length).toBe(before);
  });

  it('refuses an empty body, one over 256 KiB and one with characters SQS does not allow', async () => {
    const QueueUrl = sqs.queueUrl('ingest');
    const before = received.length;
    await expect(client.send(new SendMessageCommand({ QueueUrl, MessageBody: '' }))).rejects.toMatchObject({ name: 'MissingParameter' });
    await expect(client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x'.repeat(262_145) }))).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    await expect(client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'a\u0000b' }))).rejects.toMatchObject({ name: 'InvalidMessageContents' });
    expect(received.length).toBe(before);
    // Exactly 256 KiB is accepted.
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x'.repeat(262_144) }));
    expect(received.length).toBe(before + 1);
  });

  it('delays delivery by DelaySeconds', async () => {
    const before = received.length;
    const started = Date.now();
    await client.send(new SendMessageCommand({ QueueUrl: sqs.queueUrl('ingest'), MessageBody: 'later', DelaySeconds: 1 }));
    expect(received.length).toBe(before);
    while (received.length === before && Date.now() - started < 3_000) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(received.slice(before)).toEqual(['later']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(sqs.sent.at(-1)).toMatchObject({ body: 'later', delaySeconds: 1 });
  });

  it('refuses an unsigned request and an operation it does not have', async () => {
    const unsigned = await fetch(sqs.endpoint, { method: 'POST', headers: { 'x-amz-target': 'AmazonSQS.SendMessage' }, body: '{}' });
    expect(unsigned.status).toBe(400);
    expect(await unsigned.json()).toMatchObject({ __type: 'com.amazon.coral.service#MissingAuthenticationTokenException' });
    const unknown = await fetch(sqs.endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': 'AmazonSQS.PurgeQueue', authorization: 'AWS4-HMAC-SHA256 Credential=LOCAL/20250101/us-east-1/sqs/aws4_request' },
      body: '{}',
    });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({ __type: 'com.amazon.coral.service#UnknownOperationException', message: 'Unsupported operation AmazonSQS.PurgeQueue' });
  });
});
