import { GetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { checkAgainst } from '../shared/validation.js';
import { TaskRecordSchema, type TaskRecord, type TaskStatus } from './task-record.js';

export interface Page {
  items: TaskRecord[];
  /** Pass back to get the next page; absent on the last one. */
  cursor?: string;
}

/** Typed, read-only access to the tasks table for downstream jobs (export, QA). */
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

  /** Records in `status` updated at or after `since` (ISO time), oldest first. */
  listByStatus(status: TaskStatus, since: string, options: { limit?: number; cursor?: string } = {}): Promise<Page> {
    return this.queryStatus(status, 'updatedAt >= :time', since, options);
  }

  /** Records in `status` last updated before `before` (ISO time), oldest first: what has been stuck there. */
  listByStatusBefore(status: TaskStatus, before: string, options: { limit?: number; cursor?: string } = {}): Promise<Page> {
    return this.queryStatus(status, 'updatedAt < :time', before, options);
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

function toRecord(item: Record<string, unknown>): TaskRecord {
  const parsed = checkAgainst(TaskRecordSchema, item);
  if (!parsed.ok) throw new Error(`task record ${String(item.uniqueId)} does not match schema version 1: ${parsed.problems.join('; ')}`);
  return parsed.value;
}
