import { GetCommand, QueryCommand, type DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { checkAgainst, summarizeProblems } from '../shared/validation.js';
import { encodeCursor, normalise, positionIn, statusesOf, type ListOrder, type ListQuery, type Position } from './listing-cursor.js';
import { queryByKey } from './dynamo-task-store.js';
import { TaskRecordSchema, type TaskRecord, type TaskStatus } from './task-record.js';

export { decodeCursor, InvalidCursorError, type ListOrder, type ListQuery } from './listing-cursor.js';

export interface Page {
  items: TaskRecord[];
  /** Pass back to get the next page; absent on the last one. */
  cursor?: string;
  /** Items of this stretch of the listing that are not valid task records: left out of `items`, named here. */
  invalid?: InvalidTaskItem[];
}

/**
 * An item of the table that does not match TaskRecordSchema (edited by hand, written by something else): named by
 * its keys and what does not match, so one bad item never hides the rest of a listing.
 */
export interface InvalidTaskItem {
  uniqueId: string;
  updatedAt: string;
  /** What does not match, bounded: "attempts: expected number; …". */
  problems: string;
}

/** Reading an item that is not a valid task record, where the caller did not ask to be told of such items instead. */
export class InvalidTaskRecordError extends Error {
  override name = 'InvalidTaskRecordError';
  constructor(readonly item: InvalidTaskItem) {
    super(`task record ${item.uniqueId} does not match schema version 1: ${item.problems}`);
  }
}

/** Typed, read-only access to the tasks table for downstream jobs (export, QA) and the CLI. */
export class TaskReader {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(uniqueId: string): Promise<TaskRecord | undefined> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { uniqueId } }));
    return Item ? toRecord(Item) : undefined;
  }

  async getByTaskId(taskId: string): Promise<TaskRecord | undefined> {
    const { Items } = await this.doc.send(
      new QueryCommand({ TableName: this.tableName, IndexName: 'byTaskId', KeyConditionExpression: 'taskId = :id', ExpressionAttributeValues: { ':id': taskId } }),
    );
    // The index is eventually consistent and carries every attribute: no second read needed.
    return Items?.[0] ? toRecord(Items[0]) : undefined;
  }

  /** Every upload (version) of s3://bucket/key, newest first, from the byKey index: "what happened to my upload". */
  async findByKey(bucket: string, key: string): Promise<TaskRecord[]> {
    const records = (await queryByKey(this.doc, this.tableName, bucket, key)).map(toRecord);
    return records.sort((a, b) => compare(b.createdAt, a.createdAt) || compare(b.uniqueId, a.uniqueId));
  }

  /** Records in `status` updated at or after `since` (ISO time), oldest first. */
  listByStatus(status: TaskStatus, since: string, options: { limit?: number; cursor?: string } = {}): Promise<Page> {
    return this.queryStatus(status, 'updatedAt >= :time', since, options);
  }

  /** Records in `status` last updated before `before` (ISO time), oldest first: what has been stuck there. */
  listByStatusBefore(status: TaskStatus, before: string, options: { limit?: number; cursor?: string } = {}): Promise<Page> {
    return this.queryStatus(status, 'updatedAt < :time', before, options);
  }

  /** One page of the query across its statuses, newest first; `cursor` (from the previous page) continues it. */
  listNewest(query: ListQuery, options: { limit?: number; cursor?: string } = {}): Promise<Page> {
    return this.page('newest', query, options);
  }

  /** The same, oldest first. */
  listOldest(query: ListQuery, options: { limit?: number; cursor?: string } = {}): Promise<Page> {
    return this.page('oldest', query, options);
  }

  /**
   * Every record of the query in `order`, one at a time (never all in memory), each with the cursor that resumes
   * the listing right after it: what a long export saves to continue where it stopped. An item that is not a
   * valid task record is given to `onInvalid` (with the cursor after it) and skipped; without `onInvalid` it ends
   * the iteration with an InvalidTaskRecordError.
   */
  async *iterate(
    order: ListOrder,
    query: ListQuery,
    options: { cursor?: string; batchSize?: number; onInvalid?: (item: InvalidTaskItem, cursor: string) => void } = {},
  ): AsyncGenerator<{ record: TaskRecord; cursor: string }> {
    const normal = normalise(query);
    const after = options.cursor === undefined ? undefined : positionIn(options.cursor, order, normal);
    const streams = statusesOf(normal).map((status) => {
      const input = { ...statusQuery(this.tableName, status, order, normal, after), Limit: options.batchSize ?? 100 };
      return new StatusStream((start) => this.doc.send(new QueryCommand({ ...input, ExclusiveStartKey: start })), order, after);
    });
    for (;;) {
      let best: StatusStream | undefined;
      let bestHead: Entry | undefined;
      for (const stream of streams) {
        const head = await stream.head();
        if (head && (!bestHead || before(order, head, bestHead))) [best, bestHead] = [stream, head];
      }
      if (!best || !bestHead) return;
      best.shift();
      const cursor = encodeCursor(order, normal, bestHead);
      if (bestHead.record) yield { record: bestHead.record, cursor };
      else if (options.onInvalid) options.onInvalid(bestHead.invalid!, cursor);
      else throw new InvalidTaskRecordError(bestHead.invalid!);
    }
  }

  /**
   * How many records the query covers (a COUNT per status, for progress: the index is read, nothing returned);
   * after an oldest-first `cursor`, what is left, counting records of the cursor's very millisecond as left.
   */
  async count(query: ListQuery, options: { cursor?: string } = {}): Promise<number> {
    const normal = normalise(query);
    const after = options.cursor === undefined ? undefined : positionIn(options.cursor, 'oldest', normal);
    let total = 0;
    for (const status of statusesOf(normal)) {
      let start: Record<string, unknown> | undefined;
      do {
        const input = statusQuery(this.tableName, status, 'oldest', normal, after);
        const page = await this.doc.send(new QueryCommand({ ...input, Select: 'COUNT', ExclusiveStartKey: start }));
        total += page.Count ?? 0;
        start = page.LastEvaluatedKey;
      } while (start);
    }
    return total;
  }

  private async page(order: ListOrder, query: ListQuery, options: { limit?: number; cursor?: string }): Promise<Page> {
    const limit = Math.max(1, options.limit ?? 50);
    const items: TaskRecord[] = [];
    const invalid: InvalidTaskItem[] = [];
    let cursor: string | undefined;
    // An invalid item is named once: the page's cursor moves past it.
    const onInvalid = (item: InvalidTaskItem, after: string) => void (invalid.push(item), (cursor = after));
    const named = () => (invalid.length > 0 ? { invalid } : {});
    // One record past the page tells whether there is a next one: the last page never needs a cursor.
    for await (const next of this.iterate(order, query, { cursor: options.cursor, batchSize: Math.min(limit + 1, 500), onInvalid })) {
      if (items.length === limit) return { items, cursor, ...named() };
      items.push(next.record);
      cursor = next.cursor;
    }
    return { items, ...named() };
  }

  private async queryStatus(status: TaskStatus, timeCondition: string, time: string, options: { limit?: number; cursor?: string }): Promise<Page> {
    const { Items = [], LastEvaluatedKey } = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: 'byStatus',
        KeyConditionExpression: `#status = :status AND ${timeCondition}`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':status': status, ':time': time },
        Limit: options.limit ?? 100,
        ExclusiveStartKey: options.cursor ? JSON.parse(Buffer.from(options.cursor, 'base64url').toString('utf8')) : undefined,
      }),
    );
    return {
      items: Items.map(toRecord),
      ...(LastEvaluatedKey ? { cursor: Buffer.from(JSON.stringify(LastEvaluatedKey)).toString('base64url') } : {}),
    };
  }
}

type ReadPage = (start: Record<string, unknown> | undefined) => Promise<{ Items?: Record<string, unknown>[]; LastEvaluatedKey?: Record<string, unknown> }>;

/** An item of a listing in its place (the index's keys are there even when the rest does not match): a record, or why not. */
type Entry = Position & ({ record: TaskRecord; invalid?: undefined } | { record?: undefined; invalid: InvalidTaskItem });

/**
 * One status's records in the listing's total order. The index orders by updatedAt only, so records sharing one
 * updatedAt may come in any order and across pages: a record is given only once every record with its
 * updatedAt has been read, and then in uniqueId order.
 */
class StatusStream {
  private buffer: Entry[] = [];
  private start: Record<string, unknown> | undefined;
  private done = false;

  constructor(
    private readonly read: ReadPage,
    private readonly order: ListOrder,
    private readonly after: Position | undefined,
  ) {}

  async head(): Promise<Entry | undefined> {
    while (!this.done && (this.buffer.length === 0 || this.buffer[0]!.updatedAt === this.buffer.at(-1)!.updatedAt)) await this.fetch();
    return this.buffer[0];
  }

  shift(): void {
    this.buffer.shift();
  }

  private async fetch(): Promise<void> {
    const page = await this.read(this.start);
    const { after, order } = this;
    // The key condition includes the cursor's own updatedAt: drop the records of that time already given.
    const fresh = (page.Items ?? []).map(toEntry).filter((r) => !after || r.updatedAt !== after.updatedAt || (order === 'newest' ? r.uniqueId < after.uniqueId : r.uniqueId > after.uniqueId));
    this.buffer = [...this.buffer, ...fresh].sort((a, b) => (before(order, a, b) ? -1 : before(order, b, a) ? 1 : 0));
    this.start = page.LastEvaluatedKey;
    this.done = this.start === undefined;
  }
}

/** The byStatus query of one status within the listing's bounds (since, the cursor), in the listing's order. */
function statusQuery(tableName: string, status: TaskStatus, order: ListOrder, query: ListQuery, after: Position | undefined): QueryCommandInput {
  const names: Record<string, string> = { '#status': 'status' };
  const values: Record<string, unknown> = { ':status': status };
  let lower = query.since;
  let upper: string | undefined;
  if (after && order === 'newest') upper = after.updatedAt;
  if (after && order === 'oldest' && (lower === undefined || after.updatedAt > lower)) lower = after.updatedAt;
  const time = lower !== undefined && upper !== undefined ? ' AND #updatedAt BETWEEN :lower AND :upper' : lower !== undefined ? ' AND #updatedAt >= :lower' : upper !== undefined ? ' AND #updatedAt <= :upper' : '';
  // DynamoDB refuses names and values an expression does not use.
  if (time) names['#updatedAt'] = 'updatedAt';
  if (lower !== undefined) values[':lower'] = lower;
  if (upper !== undefined) values[':upper'] = upper;
  const filters: string[] = [];
  if (query.project !== undefined) {
    filters.push('#project = :project');
    names['#project'] = 'project';
    values[':project'] = query.project;
  }
  if (query.keyPrefix !== undefined) {
    filters.push('begins_with(#key, :prefix)');
    names['#key'] = 'key';
    values[':prefix'] = query.keyPrefix;
  }
  return {
    TableName: tableName,
    IndexName: 'byStatus',
    KeyConditionExpression: `#status = :status${time}`,
    ...(filters.length > 0 ? { FilterExpression: filters.join(' AND ') } : {}),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
    ScanIndexForward: order === 'oldest',
  };
}

/** Byte order, as DynamoDB compares strings (ISO times sort as they read). */
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Whether `a` comes before `b` in the listing: updatedAt, then uniqueId, both in the listing's direction. */
function before(order: ListOrder, a: Position, b: Position): boolean {
  const sign = compare(a.updatedAt, b.updatedAt) || compare(a.uniqueId, b.uniqueId);
  return order === 'newest' ? sign > 0 : sign < 0;
}

function toRecord(item: Record<string, unknown>): TaskRecord {
  const entry = toEntry(item);
  if (entry.invalid) throw new InvalidTaskRecordError(entry.invalid);
  return entry.record;
}

/** An item as a record, or, when it does not match the schema, as what is wrong with it (bounded). */
function toEntry(item: Record<string, unknown>): Entry {
  const parsed = checkAgainst(TaskRecordSchema, item);
  if (parsed.ok) return { updatedAt: parsed.value.updatedAt, uniqueId: parsed.value.uniqueId, record: parsed.value };
  const invalid = { uniqueId: String(item.uniqueId), updatedAt: String(item.updatedAt), problems: summarizeProblems(parsed.problems) };
  return { updatedAt: invalid.updatedAt, uniqueId: invalid.uniqueId, invalid };
}
