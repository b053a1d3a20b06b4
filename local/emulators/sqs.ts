import { createHash, randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Where a queue's messages go: the local pipeline's LocalQueue has this shape. */
export interface QueueTarget {
  send(body: string): string | void;
}

export interface LocalSqsOptions {
  /** Queue name → where its messages go. */
  queues: Record<string, QueueTarget>;
  /** The account in queue URLs (SQS's URLs are `<endpoint>/<account>/<name>`). */
  account?: string;
}

/** A message SQS accepted, for tests and diagnostics. */
export interface SentMessage {
  queue: string;
  messageId: string;
  body: string;
  /** The delay it was sent with, before the queue gets it. */
  delaySeconds: number;
}

/**
 * SendMessageBatch's limit and SendMessage's historical one: SQS's ceiling rose to 1 MiB in 2025, but a queue's
 * MaximumMessageSize can be lower; a message that fits 256 KiB fits every queue.
 */
const MAX_MESSAGE_BYTES = 262_144;
/** Whether every character is one SQS allows in a message body (XML's): tab, newline, return, and from space on. */
function allowedCharacters(body: string): boolean {
  for (const char of body) {
    const code = char.codePointAt(0)!;
    const allowed = code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || code >= 0x10000;
    if (!allowed) return false;
  }
  return true;
}

class SqsError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    /** The AWS Query code, sent in x-amzn-query-error for the SDK's query-compatible error names. */
    readonly queryCode: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

const noSuchQueue = () => new SqsError(400, 'com.amazonaws.sqs#QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue', 'The specified queue does not exist.');

/**
 * The SQS calls the functions make (SendMessage, and GetQueueUrl to find a queue by name) in SQS's JSON protocol
 * (`X-Amz-Target: AmazonSQS.<Operation>`, as the AWS SDK v3 speaks it), on 127.0.0.1 and a free port. A message
 * sent to a queue's URL is handed to that queue's target; any other queue is SQS's QueueDoesNotExist.
 */
export async function startLocalSqs(options: LocalSqsOptions) {
  const account = options.account ?? '000000000000';
  const sent: SentMessage[] = [];
  const delayed = new Set<NodeJS.Timeout>();
  let endpoint = '';
  const queueUrl = (name: string) => `${endpoint}/${account}/${name}`;

  /** The queue a URL names: SQS reads the account and name from its path. */
  const queueNamed = (url: unknown): [string, QueueTarget] => {
    if (typeof url !== 'string' || url === '') throw new SqsError(400, 'com.amazonaws.sqs#InvalidAddress', 'InvalidAddress', 'The address QueueUrl is not valid for this endpoint.');
    let path: string;
    try {
      path = new URL(url).pathname;
    } catch {
      throw new SqsError(400, 'com.amazonaws.sqs#InvalidAddress', 'InvalidAddress', `The address ${url} is not valid for this endpoint.`);
    }
    const [, urlAccount, name, ...rest] = path.split('/');
    const target = name !== undefined && Object.hasOwn(options.queues, name) ? options.queues[name] : undefined;
    if (urlAccount !== account || rest.length > 0 || !target) throw noSuchQueue();
    return [name!, target];
  };

  const operations: Record<string, (input: Record<string, unknown>) => unknown> = {
    GetQueueUrl(input) {
      const name = input.QueueName;
      if (typeof name !== 'string' || !Object.hasOwn(options.queues, name)) throw noSuchQueue();
      if (input.QueueOwnerAWSAccountId !== undefined && input.QueueOwnerAWSAccountId !== account) throw noSuchQueue();
      return { QueueUrl: queueUrl(name) };
    },
    SendMessage(input) {
      const [name, target] = queueNamed(input.QueueUrl);
      const body = input.MessageBody;
      if (typeof body !== 'string' || body === '') {
        throw new SqsError(400, 'com.amazonaws.sqs#MissingParameter', 'MissingParameter', 'The request must contain the parameter MessageBody.');
      }
      if (Buffer.byteLength(body) > MAX_MESSAGE_BYTES) {
        throw new SqsError(400, 'com.amazonaws.sqs#InvalidParameterValue', 'InvalidParameterValue', `One or more parameters are invalid. Reason: Message must be shorter than ${MAX_MESSAGE_BYTES} bytes.`);
      }
      if (!allowedCharacters(body)) {
        throw new SqsError(400, 'com.amazonaws.sqs#InvalidMessageContents', undefined, 'Invalid binary character in the message body.');
      }
      // The local queues carry bodies only: an attribute would be lost without a word, so it is refused.
      if (input.MessageAttributes !== undefined || input.MessageSystemAttributes !== undefined) {
        throw new SqsError(400, 'com.amazonaws.sqs#UnsupportedOperation', 'AWS.SimpleQueueService.UnsupportedOperation', 'The local SQS does not carry message attributes.');
      }
      const delaySeconds = input.DelaySeconds ?? 0;
      if (typeof delaySeconds !== 'number' || !Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > 900) {
        throw new SqsError(400, 'com.amazonaws.sqs#InvalidParameterValue', 'InvalidParameterValue', `Value ${String(delaySeconds)} for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.`);
      }
      const messageId = randomUUID();
      const deliver = () => void target.send(body);
      if (delaySeconds === 0) deliver();
      else {
        const timer = setTimeout(() => (delayed.delete(timer), deliver()), delaySeconds * 1000);
        delayed.add(timer);
      }
      sent.push({ queue: name, messageId, body, delaySeconds });
      return { MessageId: messageId, MD5OfMessageBody: createHash('md5').update(body, 'utf8').digest('hex') };
    },
  };

  const server = createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      if (req.method !== 'POST') throw new SqsError(400, 'com.amazonaws.sqs#InvalidAction', 'InvalidAction', `The local SQS speaks the JSON protocol only (POST), not ${req.method}.`);
      if (!/^AWS4-HMAC-SHA256 /.test(req.headers.authorization ?? '')) {
        throw new SqsError(400, 'com.amazon.coral.service#MissingAuthenticationTokenException', 'MissingAuthenticationToken', 'Request is missing Authentication Token');
      }
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.startsWith('AmazonSQS.') ? operations[target.slice('AmazonSQS.'.length)] : undefined;
      if (!operation) throw new SqsError(400, 'com.amazon.coral.service#UnknownOperationException', undefined, `Unsupported operation ${target || '(no X-Amz-Target)'}`);
      let input: unknown;
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch {
        throw new SqsError(400, 'com.amazon.coral.service#SerializationException', undefined, 'The request body is not JSON.');
      }
      if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new SqsError(400, 'com.amazon.coral.service#SerializationException', undefined, 'The request body is not a JSON object.');
      send(res, 200, operation(input as Record<string, unknown>));
    } catch (err) {
      if (!(err instanceof SqsError)) console.error('local sqs:', err);
      const failure = err instanceof SqsError ? err : new SqsError(500, 'com.amazonaws.sqs#InternalError', 'InternalError', 'We encountered an internal error. Please try again.');
      send(res, failure.status, { __type: failure.type, message: failure.message }, failure.queryCode);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoint,
    /** A queue's URL, as SQS gives it (and as GetQueueUrl answers). */
    queueUrl,
    /** Every message accepted so far. */
    sent,
    async close() {
      for (const timer of delayed) clearTimeout(timer);
      delayed.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type LocalSqs = Awaited<ReturnType<typeof startLocalSqs>>;

function send(res: ServerResponse, status: number, body: unknown, queryCode?: string): void {
  const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': randomUUID() };
  // SQS's JSON protocol is query-compatible: this header carries the AWS Query error code and fault.
  if (queryCode) headers['x-amzn-query-error'] = `${queryCode};Sender`;
  res.writeHead(status, headers).end(JSON.stringify(body));
}
