import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { TaskRecord, TaskStatus } from './task-record.js';
import type { CallbackUpdate, SceneSource, Submission, TaskStore } from './task-store.js';

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

  async recordSubmitted(uniqueId: string, details: { taskId: string; attachmentExpiresAt: string; adopted: boolean }, now: string): Promise<void> {
    await this.ignoreConditionFailure(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { uniqueId },
        UpdateExpression:
          'SET #status = :pending, taskId = :taskId, submittedAt = :now, attachmentExpiresAt = :expires, adopted = :adopted, updatedAt = :now REMOVE scaleError',
        ConditionExpression: '#status IN (:s0, :s1)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':pending': 'pending',
          ':taskId': details.taskId,
          ':expires': details.attachmentExpiresAt,
          ':adopted': details.adopted,
          ':now': now,
          ':s0': RESUBMITTABLE[0],
          ':s1': RESUBMITTABLE[1],
        },
      }),
    );
  }

  async applyCallback(update: CallbackUpdate, now: string): Promise<'applied' | 'stale'> {
    const names: Record<string, string> = { '#status': 'status', '#key': 'key' };
    const values: Record<string, unknown> = {
      ':status': update.status,
      ':taskId': update.taskId,
      ':t': update.scaleUpdatedAt,
      ':now': now,
      ':one': 1,
      ':archive': update.archive,
      ':v': 1,
      ':bucket': update.source.bucket,
      ':key': update.source.key,
      ':format': update.source.sceneFormat,
    };
    const set = [
      '#status = :status',
      'taskId = :taskId',
      'scaleStatus = :status',
      'scaleUpdatedAt = :t',
      'updatedAt = :now',
      'lastCallbackAt = :now',
      'lastCallbackArchive = :archive',
      // A callback for an upload whose create-side record was lost rebuilds the record from the task's metadata.
      'schemaVersion = if_not_exists(schemaVersion, :v)',
      'createdAt = if_not_exists(createdAt, :now)',
      'bucket = if_not_exists(bucket, :bucket)',
      '#key = if_not_exists(#key, :key)',
      'sceneFormat = if_not_exists(sceneFormat, :format)',
    ];
    const optionalSource = { versionId: update.source.versionId, eTag: update.source.eTag, size: update.source.size, project: update.source.project };
    for (const [field, value] of Object.entries(optionalSource)) {
      if (value === undefined) continue;
      const name = field === 'size' ? '#size' : field; // SIZE is a reserved word
      if (field === 'size') names['#size'] = 'size';
      set.push(`${name} = if_not_exists(${name}, :${field})`);
      values[`:${field}`] = value;
    }
    const remove: string[] = [];
    const replace = (field: 'completedAt' | 'responseJson' | 'responseRef', value: unknown) => {
      if (value === undefined) remove.push(field);
      else (set.push(`${field} = :${field}`), (values[`:${field}`] = value));
    };
    replace('completedAt', update.completedAt);
    replace('responseJson', update.responseJson);
    replace('responseRef', update.responseRef);

    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { uniqueId: update.uniqueId },
          UpdateExpression: `SET ${set.join(', ')} ${remove.length ? `REMOVE ${remove.join(', ')}` : ''} ADD callbackCount :one`,
          // Ordered by the task's own time: an older or repeated callback never overwrites a newer state.
          ConditionExpression: 'attribute_not_exists(scaleUpdatedAt) OR scaleUpdatedAt < :t',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
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
