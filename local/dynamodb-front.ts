import type { DynamoDBRecord } from 'aws-lambda';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { keyOf, sameImage } from './dynamodb-images.js';
import { dynamodbStreamRecord, type DynamoItem } from './events.js';

const TARGET_PREFIX = 'DynamoDB_20120810.';
const JSON_TYPE = 'application/x-amz-json-1.0';
/** Writes the stream has no stand-in for: refused, so that no committed change can miss the stream. */
const REFUSED = ['TransactWriteItems', 'ExecuteStatement', 'BatchExecuteStatement', 'ExecuteTransaction'];
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type WriteRequest = { PutRequest?: { Item?: DynamoItem }; DeleteRequest?: { Key?: DynamoItem } };
/** One item a write may change: its table, key, and the lock that orders writes to it. */
interface Target {
  table: string;
  keyNames: string[];
  key: DynamoItem;
  lock: string;
}

export interface DynamoFrontOptions {
  /** The DynamoDB that stores the data (dynalite's endpoint). */
  target: string;
  /** Tables with a stream (view NEW_AND_OLD_IMAGES); writes to the others only pass through. */
  streamedTables: string[];
  region?: string;
}

export type StreamListener = (records: DynamoDBRecord[]) => void;

/**
 * DynamoDB's endpoint with streams: every request passes through to `target` unchanged, and every write that
 * changed an item of a streamed table becomes a stream record (INSERT, MODIFY or REMOVE, with old and new images),
 * as DynamoDB Streams writes them: none for a write that failed or changed nothing, in the order the writes were
 * applied per key, sequence numbers growing. Writes to one key are serialized here, each item read (consistently)
 * before and after it; so every write to a streamed table must come through this front.
 * PutItem, UpdateItem, DeleteItem and BatchWriteItem are streamed; transactions and PartiQL are refused.
 */
export async function startDynamoFront(options: DynamoFrontOptions) {
  const region = options.region ?? 'us-east-1';
  const streamed = new Set(options.streamedTables);
  const target = new URL(options.target);
  const keySchemas = new Map<string, string[]>();
  const listeners: StreamListener[] = [];
  const tails = new Map<string, Promise<void>>();
  // The stream's label is the time it was enabled, as in a stream ARN.
  const streamLabel = new Date().toISOString().slice(0, -1);
  let sequence = 10n ** 20n;

  function send(method: string, path: string, headers: OutgoingHttpHeaders, body: Buffer): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const outgoing = request({ host: target.hostname, port: target.port, method, path, headers: { ...headers, 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }

  /** A call of the front's own; the storage checks that a request is signed, not the signature. */
  async function call<T>(operation: string, input: unknown): Promise<T> {
    const headers = {
      'content-type': JSON_TYPE,
      'x-amz-target': `${TARGET_PREFIX}${operation}`,
      'x-amz-date': new Date().toISOString().replace(/[-:]|\.\d{3}/g, ''),
      authorization: `AWS4-HMAC-SHA256 Credential=local/19700101/${region}/dynamodb/aws4_request, SignedHeaders=host, Signature=0`,
    };
    const answer = await send('POST', '/', headers, Buffer.from(JSON.stringify(input)));
    if (answer.status !== 200) throw new Error(`${operation} failed (${answer.status}): ${answer.body.toString('utf8')}`);
    return JSON.parse(answer.body.toString('utf8')) as T;
  }

  /** The table's key attribute names; undefined for a table that does not exist (the write will fail anyway). */
  async function keyNamesOf(table: string): Promise<string[] | undefined> {
    const known = keySchemas.get(table);
    if (known) return known;
    const described = await call<{ Table: { KeySchema: Array<{ AttributeName: string }> } }>('DescribeTable', { TableName: table }).catch(() => undefined);
    const names = described?.Table.KeySchema.map((k) => k.AttributeName);
    if (names) keySchemas.set(table, names);
    return names;
  }

  async function read(item: Target): Promise<DynamoItem | undefined> {
    const out = await call<{ Item?: DynamoItem }>('GetItem', { TableName: item.table, Key: item.key, ConsistentRead: true });
    return out.Item;
  }

  /**
   * Runs `write` once every earlier write to any of the keys has finished. Waiting places are taken in one
   * synchronous step, so two writes can never wait for each other.
   */
  async function serialized<T>(locks: string[], write: () => Promise<T>): Promise<T> {
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const before = [...new Set(locks)].map((lock) => {
      const previous = tails.get(lock) ?? Promise.resolve();
      const mine = previous.then(() => done);
      tails.set(lock, mine);
      void mine.then(() => tails.get(lock) === mine && tails.delete(lock));
      return previous;
    });
    try {
      await Promise.all(before);
      return await write();
    } finally {
      release();
    }
  }

  function emit(changes: Array<{ item: Target; before?: DynamoItem; after?: DynamoItem }>): void {
    const at = Date.now();
    const records = changes
      .filter(({ before, after }) => !sameImage(before, after))
      .map(({ item, before, after }) =>
        dynamodbStreamRecord({
          keys: item.key,
          oldImage: before,
          newImage: after,
          sequenceNumber: String(++sequence),
          streamArn: `arn:aws:dynamodb:${region}:000000000000:table/${item.table}/stream/${streamLabel}`,
          region,
          at,
        }),
      );
    if (records.length === 0) return;
    for (const listener of listeners) {
      try {
        listener(records);
      } catch {
        // A listener's failure is its own; the write happened, and other listeners still hear of it.
      }
    }
  }

  /** The items a write may change in streamed tables; undefined when it is not a write the stream knows. */
  async function targetsOf(operation: string, input: Record<string, unknown>): Promise<Target[] | undefined> {
    const one = async (table: unknown, keySource: DynamoItem | undefined): Promise<Target[]> => {
      if (typeof table !== 'string' || !streamed.has(table)) return [];
      const keyNames = await keyNamesOf(table);
      const key = keyNames && keyOf(keySource, keyNames);
      // An invalid write is refused by the storage and changes nothing.
      return key && keyNames ? [{ table, keyNames, key, lock: JSON.stringify([table, keyNames.map((name) => key[name])]) }] : [];
    };
    if (operation === 'PutItem') return one(input.TableName, input.Item as DynamoItem);
    if (operation === 'UpdateItem' || operation === 'DeleteItem') return one(input.TableName, input.Key as DynamoItem);
    if (operation === 'BatchWriteItem') {
      const requests = Object.entries((input.RequestItems ?? {}) as Record<string, WriteRequest[]>);
      const perItem = requests.flatMap(([table, writes]) =>
        (Array.isArray(writes) ? writes : []).map((w) => one(table, w?.PutRequest?.Item ?? w?.DeleteRequest?.Key)),
      );
      return (await Promise.all(perItem)).flat();
    }
    return undefined;
  }

  async function handle(req: IncomingMessage): Promise<Answer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const headers: OutgoingHttpHeaders = Object.fromEntries(Object.entries(req.headers).filter(([name]) => !HOP_BY_HOP.has(name)));
    const pass = () => send(req.method ?? 'POST', req.url ?? '/', headers, body);

    const targetHeader = String(req.headers['x-amz-target'] ?? '');
    const operation = targetHeader.startsWith(TARGET_PREFIX) ? targetHeader.slice(TARGET_PREFIX.length) : '';
    if (REFUSED.includes(operation)) {
      return refusal(`${operation} is not supported by the local DynamoDB: its writes could not reach the table's stream`);
    }
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return pass(); // the storage answers a malformed request as DynamoDB does
    }
    const items = input && typeof input === 'object' ? await targetsOf(operation, input) : undefined;
    if (!items || items.length === 0) return pass();

    return serialized(
      items.map((item) => item.lock),
      async () => {
        const before = await Promise.all(items.map(read));
        const answer = await pass();
        if (answer.status === 200) {
          // A batch's unprocessed items are read back unchanged, so they get no record.
          const after = await Promise.all(items.map(read));
          emit(items.map((item, i) => ({ item, before: before[i], after: after[i] })));
        }
        return answer;
      },
    );
  }

  const server = createServer((req, res) => {
    handle(req)
      .catch((err: Error) => ({
        status: 500,
        headers: { 'content-type': JSON_TYPE },
        body: Buffer.from(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: err.message })),
      }))
      .then((answer) => {
        const out = Object.fromEntries(Object.entries(answer.headers).filter(([name]) => !HOP_BY_HOP.has(name)));
        res.writeHead(answer.status, { ...out, 'content-length': answer.body.length }).end(answer.body);
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Hears every stream record, in order, as soon as its write is applied (before the writer's answer). */
    onRecords(listener: StreamListener): void {
      listeners.push(listener);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type DynamoFront = Awaited<ReturnType<typeof startDynamoFront>>;

function refusal(message: string): Answer {
  return {
    status: 400,
    headers: { 'content-type': JSON_TYPE },
    body: Buffer.from(JSON.stringify({ __type: 'com.amazon.coral.validate#ValidationException', message })),
  };
}
