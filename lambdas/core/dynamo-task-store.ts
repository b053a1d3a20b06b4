import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { TaskRecord, TaskStatus } from './task-record.js';
import type { CallbackUpdate, SceneSource, Submission, SubmittedTask, TaskStore } from './task-store.js';

/** Key schema and indexes of the tasks table: the stack and the local pipeline both build the table from this. */
export const TASKS_TABLE_SCHEMA = {
  partitionKey: 'uniqueId',
  indexes: {
    byTaskId: { partitionKey: 'taskId' },
    byStatus: { partitionKey: 'status', sortKey: 'updatedAt' },
  },
} as const;

/** States from which an upload may be (re)submitted: nothing reached Scale, or Scale refused it. */
const RESUBMITTABLE: TaskStatus[] = ['submitting', 'create_failed'];

export function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

const isConditionFailure = (err: unknown) => err instanceof ConditionalCheckFailedException || (err as Error)?.name === 'ConditionalCheckFailedException';

export class DynamoTaskStore implements TaskStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async startSubmission(submission: Submission, now: string): Promise<'started' | { alreadyAt: TaskStatus }> {
    const item: TaskRecord = { schemaVersion: 1, status: 'submitting', createdAt: now, updatedAt: now, ...submission };
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(uniqueId) OR #status IN (:s0, :s1)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':s0': RESUBMITTABLE[0], ':s1': RESUBMITTABLE[1] },
        }),
      );
      return 'started';
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const current = await this.get(submission.uniqueId);
      // Vanished between the two calls only if someone deleted it: treat as not started, let SQS retry.
      if (!current) throw new Error(`record ${submission.uniqueId} changed while starting its submission; will retry`, { cause: err });
      return { alreadyAt: current.status };
    }
  }

  async recordRejection(source: SceneSource, reason: string, now: string): Promise<void> {
    const item: TaskRecord = { schemaVersion: 1, status: 'rejected', reason, createdAt: now, updatedAt: now, ...source };
    await this.ignoreConditionFailure(
      new PutCommand({
        TableName: this.tableName,
        Item: item,
        ConditionExpression: 'attribute_not_exists(uniqueId) OR #status IN (:s0, :s1, :rejected)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':s0': RESUBMITTABLE[0], ':s1': RESUBMITTABLE[1], ':rejected': 'rejected' },
      }),
    );
  }

  async recordCreateFailure(uniqueId: string, error: { status?: number; message: string }, now: string): Promise<void> {
    await this.ignoreConditionFailure(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { uniqueId },
        UpdateExpression: 'SET #status = :failed, scaleError = :error, updatedAt = :now',
        ConditionExpression: '#status = :submitting',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':failed': 'create_failed', ':error': error, ':now': now, ':submitting': 'submitting' },
      }),
    );
  }

  async recordSubmitted(uniqueId: string, details: SubmittedTask, now: string): Promise<void> {
    const expr = new UpdateExpression();
    expr.set('status', 'pending');
    expr.set('submittedAt', now);
    expr.set('updatedAt', now);
    for (const [field, value] of Object.entries(details)) if (value !== undefined) expr.set(field, value);
    expr.setOrRemove('scaleError', undefined);
    const status = expr.name('status');
    await this.ignoreConditionFailure(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { uniqueId },
        UpdateExpression: expr.toString(),
        // Not over a callback that got here first: its state is newer.
        ConditionExpression: `${status} IN (${expr.value(RESUBMITTABLE[0])}, ${expr.value(RESUBMITTABLE[1])})`,
        ExpressionAttributeNames: expr.names,
        ExpressionAttributeValues: expr.values,
      }),
    );
  }

  async applyCallback(update: CallbackUpdate, now: string): Promise<'applied' | 'stale'> {
    const expr = new UpdateExpression();
    expr.set('status', update.status);
    expr.set('taskId', update.taskId);
    expr.set('scaleStatus', update.status);
    expr.set('scaleUpdatedAt', update.scaleUpdatedAt);
    expr.set('updatedAt', now);
    expr.set('lastCallbackAt', now);
    expr.set('lastCallbackArchive', update.archive);
    // A callback for an upload whose create-side record was lost rebuilds the record from the task's metadata.
    const { source } = update;
    const fallback = { schemaVersion: 1, createdAt: now, ...source };
    for (const [field, value] of Object.entries(fallback)) if (value !== undefined) expr.setIfAbsent(field, value);
    expr.setOrRemove('completedAt', update.completedAt);
    expr.setOrRemove('responseJson', update.responseJson);
    expr.setOrRemove('responseRef', update.responseRef);
    expr.add('callbackCount', 1);
    const t = expr.value(update.scaleUpdatedAt);
    const scaleUpdatedAt = expr.name('scaleUpdatedAt');

    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { uniqueId: update.uniqueId },
          UpdateExpression: expr.toString(),
          // Ordered by the task's own time: an older or repeated callback never overwrites a newer state.
          ConditionExpression: `attribute_not_exists(${scaleUpdatedAt}) OR ${scaleUpdatedAt} < ${t}`,
          ExpressionAttributeNames: expr.names,
          ExpressionAttributeValues: expr.values,
        }),
      );
      return 'applied';
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { uniqueId: update.uniqueId },
        UpdateExpression: 'SET lastCallbackAt = :now ADD callbackCount :one',
        ExpressionAttributeValues: { ':now': now, ':one': 1 },
      }),
    );
    return 'stale';
  }

  async get(uniqueId: string): Promise<TaskRecord | undefined> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { uniqueId }, ConsistentRead: true }));
    return Item as TaskRecord | undefined;
  }

  private async ignoreConditionFailure(command: PutCommand | UpdateCommand): Promise<void> {
    try {
      await this.doc.send(command as UpdateCommand);
    } catch (err) {
      // The record already moved past the state this write is for: keeping the newer state is the point.
      if (!isConditionFailure(err)) throw err;
    }
  }
}

/** Builds an UpdateExpression with every attribute name aliased, so reserved words (status, key, size…) just work. */
class UpdateExpression {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private readonly sets: string[] = [];
  private readonly removes: string[] = [];
  private readonly adds: string[] = [];

  name(field: string): string {
    this.names[`#${field}`] = field;
    return `#${field}`;
  }

  value(value: unknown): string {
    const placeholder = `:v${Object.keys(this.values).length}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  set(field: string, value: unknown): void {
    this.sets.push(`${this.name(field)} = ${this.value(value)}`);
  }

  setIfAbsent(field: string, value: unknown): void {
    const name = this.name(field);
    this.sets.push(`${name} = if_not_exists(${name}, ${this.value(value)})`);
  }

  setOrRemove(field: string, value: unknown): void {
    if (value === undefined) this.removes.push(this.name(field));
    else this.set(field, value);
  }

  add(field: string, amount: number): void {
    this.adds.push(`${this.name(field)} ${this.value(amount)}`);
  }

  toString(): string {
    return [
      this.sets.length ? `SET ${this.sets.join(', ')}` : '',
      this.removes.length ? `REMOVE ${this.removes.join(', ')}` : '',
      this.adds.length ? `ADD ${this.adds.join(', ')}` : '',
    ].filter(Boolean).join(' ');
  }
}
