import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { UpdateExpression } from './dynamo-update-expression.js';
import type { TaskRecord, TaskStatus } from './task-record.js';
import type { CallbackUpdate, FailedAttempt, RetryableStatus, SceneSource, Submission, SubmittedTask, TaskStore } from './task-store.js';

/** Key schema and indexes of the tasks table: the stack and the local pipeline both build the table from this. */
export const TASKS_TABLE_SCHEMA = {
  partitionKey: 'uniqueId',
  indexes: {
    byTaskId: { partitionKey: 'taskId' },
    byStatus: { partitionKey: 'status', sortKey: 'updatedAt' },
    /** Every upload of one object key: what a delete cancels, and "what happened to my upload". */
    byKey: { partitionKey: 'key', sortKey: 'createdAt' },
  },
} as const;

/** States from which an upload may be (re)submitted: nothing reached Scale, Scale refused it, or it gave up. */
const RESUBMITTABLE: TaskStatus[] = ['submitting', 'create_failed', 'failed'];
/**
 * A state ordered after the stored one: by order key, or — for a record written before order keys existed — by
 * the task's time alone.
 */
function newerState(expr: UpdateExpression, scaleUpdatedAt: string, order: string): string {
  const [at, key] = [expr.name('scaleUpdatedAt'), expr.name('callbackOrder')];
  return `((attribute_not_exists(${key}) AND (attribute_not_exists(${at}) OR ${at} < ${expr.value(scaleUpdatedAt)})) OR ${key} < ${expr.value(order)})`;
}

/** What a record says of a delivery that claimed it and never reached an outcome. */
export const UNFINISHED_DELIVERY =
  'an earlier delivery ended without an outcome: the function timed out or crashed (or it is still running, if S3 or SQS delivered the event twice)';

/** States a failed delivery may be counted in: the upload has no outcome yet. */
const UNFINISHED: TaskStatus[] = ['submitting', 'failed'];

export function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

const isConditionFailure = (err: unknown) => err instanceof ConditionalCheckFailedException || (err as Error)?.name === 'ConditionalCheckFailedException';

export class DynamoTaskStore implements TaskStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async startSubmission(submission: Submission, claimId: string, now: string): Promise<'started' | 'resumed' | { alreadyAt: TaskStatus }> {
    const expr = new UpdateExpression();
    expr.set('status', 'submitting');
    expr.set('claimId', claimId);
    expr.set('updatedAt', now);
    expr.set('schemaVersion', 1);
    expr.setIfAbsent('createdAt', now);
    for (const [field, value] of Object.entries(submission)) if (field !== 'uniqueId' && value !== undefined) expr.set(field, value);
    expr.remove('reason');
    expr.remove('scaleError');
    const status = expr.name('status');
    try {
      const condition = `attribute_not_exists(${expr.name('uniqueId')}) OR (${status} IN (${RESUBMITTABLE.map((s) => expr.value(s)).join(', ')}) AND attribute_not_exists(${expr.name('taskId')}))`;
      const old = await this.update(expr, submission.uniqueId, condition, 'ALL_OLD');
      // An earlier claim still open: that delivery never reached an outcome, and a killed function cannot say why.
      if (old?.status === 'submitting' && old.claimId !== undefined) await this.noteUnfinishedDelivery(submission.uniqueId, claimId, now);
      // A claim or a failed attempt before this one: that delivery may have created the task.
      return old?.claimId !== undefined || old?.attempts !== undefined || old?.status === 'create_failed' ? 'resumed' : 'started';
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const current = await this.get(submission.uniqueId);
      // Vanished between the two calls only if someone deleted it: treat as not started, let SQS retry.
      if (!current) throw new Error(`record ${submission.uniqueId} changed while starting its submission; will retry`, { cause: err });
      const owed = current.cancelOwed !== undefined && current.taskId !== undefined ? { owedCancel: { taskId: current.taskId, reason: current.cancelOwed } } : {};
      return { alreadyAt: current.status, ...owed };
    }
  }

  recordRejection(uniqueId: string, claimId: string, reason: string, now: string): Promise<void> {
    return this.endClaim(uniqueId, claimId, now, (expr) => (expr.set('status', 'rejected'), expr.set('reason', reason)));
  }

  recordCreateFailure(uniqueId: string, claimId: string, error: { status?: number; message: string }, now: string): Promise<void> {
    return this.endClaim(uniqueId, claimId, now, (expr) => (expr.set('status', 'create_failed'), expr.set('scaleError', error)));
  }

  async recordSubmitted(uniqueId: string, details: SubmittedTask, now: string): Promise<'recorded' | 'already_has_task' | { overRejection: string }> {
    const expr = new UpdateExpression();
    expr.set('status', 'pending');
    expr.set('submittedAt', now);
    expr.set('updatedAt', now);
    for (const [field, value] of Object.entries(details)) if (value !== undefined) expr.set(field, value);
    for (const field of ['scaleError', 'reason', 'claimId']) expr.remove(field);
    // Over anything but a record that names a task already: a created task must never be hidden by a rejection.
    try {
      const old = await this.update(expr, uniqueId, `attribute_exists(${expr.name('uniqueId')}) AND attribute_not_exists(${expr.name('taskId')})`, 'ALL_OLD');
      if (old?.status !== 'rejected') return 'recorded';
      const overRejection = String(old.reason ?? 'rejected');
      // Kept until the cancel reaches Scale: a cancel that fails now is owed by the upload's next delivery.
      const owed = new UpdateExpression();
      owed.set('cancelOwed', overRejection);
      await this.update(owed, uniqueId, `${owed.name('taskId')} = ${owed.value(details.taskId)}`);
      return { overRejection };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return 'already_has_task';
    }
  }

  async recordFailedAttempt(source: SceneSource, failure: FailedAttempt, now: string): Promise<void> {
    const expr = new UpdateExpression();
    expr.add('attempts', 1);
    expr.set('lastError', failure.error);
    expr.set('updatedAt', now);
    if (failure.terminal) expr.set('status', 'failed');
    else expr.setIfAbsent('status', 'submitting');
    expr.setIfAbsent('schemaVersion', 1);
    expr.setIfAbsent('createdAt', now);
    for (const [field, value] of Object.entries(source)) if (field !== 'uniqueId' && value !== undefined) expr.setIfAbsent(field, value);
    const status = expr.name('status');
    await this.ignoreConditionFailure(
      this.update(expr, source.uniqueId, `attribute_not_exists(${expr.name('uniqueId')}) OR ${status} IN (${UNFINISHED.map((s) => expr.value(s)).join(', ')})`),
    );
    if (failure.claimId) {
      const release = new UpdateExpression();
      release.remove('claimId');
      await this.ignoreConditionFailure(this.update(release, source.uniqueId, `${release.name('claimId')} = ${release.value(failure.claimId)}`));
    }
  }

  async findByKey(bucket: string, key: string, limit = 100): Promise<TaskRecord[]> {
    return (await queryByKey(this.doc, this.tableName, bucket, key, limit)) as TaskRecord[];
  }

  async recordCanceled(uniqueId: string, cancel: { taskId: string; scaleUpdatedAt: string; order: string; reason: string }, now: string): Promise<'applied' | 'stale'> {
    const expr = new UpdateExpression();
    expr.set('status', 'canceled');
    expr.set('scaleStatus', 'canceled');
    expr.set('scaleUpdatedAt', cancel.scaleUpdatedAt);
    expr.set('callbackOrder', cancel.order);
    expr.set('reason', cancel.reason);
    expr.set('updatedAt', now);
    expr.remove('cancelError');
    expr.remove('cancelOwed');
    try {
      // Ordered like callbacks: a newer state reported by Scale is kept.
      await this.update(expr, uniqueId, `${expr.name('taskId')} = ${expr.value(cancel.taskId)} AND ${newerState(expr, cancel.scaleUpdatedAt, cancel.order)}`);
      return 'applied';
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return 'stale';
    }
  }

  async recordCancelRefused(uniqueId: string, error: { status?: number; message: string }, now: string): Promise<void> {
    const expr = new UpdateExpression();
    expr.set('cancelError', error);
    expr.set('updatedAt', now);
    expr.remove('cancelOwed');
    await this.ignoreConditionFailure(this.update(expr, uniqueId, `attribute_exists(${expr.name('uniqueId')})`));
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
    if (update.resultFiles) expr.set('resultFiles', update.resultFiles);
    expr.set('callbackOrder', update.order);
    expr.set('callbackDigest', update.digest);
    expr.add('callbackCount', 1);
    const digest = expr.name('callbackDigest');
    const notDuplicate = `(attribute_not_exists(${digest}) OR ${digest} <> ${expr.value(update.digest)})`;

    try {
      // Ordered by the task's own time, then status rank and arrival: an older callback never overwrites a newer
      // state, and an exact duplicate changes nothing.
      // The upload's task, not an earlier one it was resubmitted after (whose late callbacks change nothing).
      const taskId = expr.value(update.taskId);
      const [recorded, previous] = [expr.name('taskId'), expr.name('previousTaskIds')];
      const ownTask = `(attribute_not_exists(${recorded}) OR ${recorded} = ${taskId}) AND (attribute_not_exists(${previous}) OR NOT contains(${previous}, ${taskId}))`;
      await this.update(expr, update.uniqueId, `${newerState(expr, update.scaleUpdatedAt, update.order)} AND ${notDuplicate} AND ${ownTask}`);
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

  async prepareResubmission(uniqueId: string, taskId: string, now: string): Promise<boolean> {
    const expr = new UpdateExpression();
    expr.set('status', 'submitting');
    expr.set('updatedAt', now);
    expr.set('reopenedAt', now);
    const previous = expr.name('previousTaskIds');
    expr.setRaw(`${previous} = list_append(if_not_exists(${previous}, ${expr.value([])}), ${expr.value([taskId])})`);
    expr.add('resubmissions', 1);
    for (const field of ['taskId', 'scaleStatus', 'scaleUpdatedAt', 'callbackOrder', 'callbackDigest', 'completedAt', 'responseJson', 'responseRef', 'submittedAt', 'claimId']) expr.remove(field);
    try {
      await this.update(expr, uniqueId, `${expr.name('status')} = ${expr.value('error')} AND ${expr.name('taskId')} = ${expr.value(taskId)}`);
      return true;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return false;
    }
  }

  async prepareRetry(uniqueId: string, from: { status: RetryableStatus; taskId?: string }, now: string): Promise<boolean> {
    // The errored task is kept (previousTaskIds), exactly as the reconciler's resubmissions keep it.
    if (from.status === 'error') return from.taskId !== undefined && this.prepareResubmission(uniqueId, from.taskId, now);
    const expr = new UpdateExpression();
    expr.set('updatedAt', now);
    expr.set('reopenedAt', now);
    // create-task's claim refuses 'rejected'; 'create_failed' and 'failed' it takes as they are (and as 'resumed').
    if (from.status === 'rejected') {
      expr.set('status', 'submitting');
      expr.remove('reason');
    }
    try {
      // Never over a task: a record that has one (or got one meanwhile) is not this retry's to reopen.
      await this.update(expr, uniqueId, `${expr.name('status')} = ${expr.value(from.status)} AND attribute_not_exists(${expr.name('taskId')})`);
      return true;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return false;
    }
  }

  async get(uniqueId: string): Promise<TaskRecord | undefined> {
    const { Item } = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { uniqueId }, ConsistentRead: true }));
    return Item as TaskRecord | undefined;
  }

  private async noteUnfinishedDelivery(uniqueId: string, claimId: string, now: string): Promise<void> {
    const expr = new UpdateExpression();
    expr.add('attempts', 1);
    expr.set('lastError', UNFINISHED_DELIVERY);
    expr.set('updatedAt', now);
    await this.ignoreConditionFailure(this.update(expr, uniqueId, `${expr.name('claimId')} = ${expr.value(claimId)}`));
  }

  /** Ends this delivery's claim with an outcome: only if it still holds the claim and no task is recorded. */
  private async endClaim(uniqueId: string, claimId: string, now: string, outcome: (expr: UpdateExpression) => void): Promise<void> {
    const expr = new UpdateExpression();
    outcome(expr);
    expr.set('updatedAt', now);
    expr.remove('claimId');
    const condition = `${expr.name('claimId')} = ${expr.value(claimId)} AND attribute_not_exists(${expr.name('taskId')})`;
    await this.ignoreConditionFailure(this.update(expr, uniqueId, condition));
  }

  private async update(expr: UpdateExpression, uniqueId: string, condition: string, returnValues?: 'ALL_OLD'): Promise<Record<string, unknown> | undefined> {
    const { Attributes } = await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { uniqueId },
        UpdateExpression: expr.toString(),
        ConditionExpression: condition,
        ExpressionAttributeNames: expr.names,
        // Never empty (DynamoDB refuses an empty map): every update sets a value or compares one in its condition.
        ExpressionAttributeValues: expr.values,
        ReturnValues: returnValues,
      }),
    );
    return Attributes;
  }

  private async ignoreConditionFailure(write: Promise<unknown>): Promise<void> {
    try {
      await write;
    } catch (err) {
      // The record already moved past the state this write is for: keeping the newer state is the point.
      if (!isConditionFailure(err)) throw err;
    }
  }
}

/**
 * The items of every upload of s3://bucket/key, newest first by the index (createdAt), at most `limit`: the byKey
 * index holds the key alone, so the same key in another bucket (another object) is left out here.
 */
export async function queryByKey(doc: DynamoDBDocumentClient, tableName: string, bucket: string, key: string, limit = Infinity): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(
      new QueryCommand({
        TableName: tableName,
        IndexName: 'byKey',
        KeyConditionExpression: '#key = :key',
        ExpressionAttributeNames: { '#key': 'key' },
        ExpressionAttributeValues: { ':key': key },
        ScanIndexForward: false,
        ...(Number.isFinite(limit) ? { Limit: limit } : {}),
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(page.Items ?? []).filter((item) => item.bucket === bucket));
    start = page.LastEvaluatedKey;
  } while (start && items.length < limit);
  return items.slice(0, limit);
}
