import { uploadNotification } from '../scenes/s3-event.js';
import { sceneUniqueId } from '../scenes/scene-identity.js';
import type { TaskRecord, TaskStatus } from './task-record.js';
import type { RetryableStatus, TaskStore } from './task-store.js';

/**
 * Statuses an operator may retry once the cause is fixed, and how:
 * - create_failed (Scale refused the task, e.g. an unknown project) and failed (every delivery failed, e.g. a
 *   revoked key): create-task's claim already takes them;
 * - rejected (never sent: a bad scene, missing frames): moved back to submitting, so create-task takes it;
 * - error (the task Scale ended in error): a new task for the same upload, the errored one kept in
 *   previousTaskIds — only when tasks are created with clear_unique_id_on_error, or Scale keeps the unique_id.
 */
export const RETRYABLE_STATUSES: readonly RetryableStatus[] = ['rejected', 'create_failed', 'error', 'failed'];

export const isRetryableStatus = (status: string): status is RetryableStatus => (RETRYABLE_STATUSES as readonly string[]).includes(status);

export interface RetryPolicy {
  /** The statuses this retry takes (a subset of RETRYABLE_STATUSES); records in any other are skipped. */
  statuses: readonly RetryableStatus[];
  /** routing.clearUniqueIdOnError: whether Scale frees an upload's unique_id when its task ends in error. */
  clearUniqueIdOnError: boolean;
}

export type RetryCheck = { retryable: true; from: RetryableStatus } | { retryable: false; reason: string };

/** Why an upload in each status that is never retried is not: what the operator can do instead. */
const NOT_RETRYABLE: Record<Exclude<TaskStatus, RetryableStatus>, string> = {
  submitting: 'it is being submitted now (or waits for the reconciler, which resubmits uploads stuck in submitting): there is nothing to retry',
  pending: 'Scale has its task and is working on it: nothing to retry (cancel it first if it must not go on)',
  completed: 'its task is completed: a retry is only for uploads that got no result',
  canceled: 'its task was canceled, and Scale keeps a canceled task\'s unique_id: upload the object again (a new version gets its own task)',
};

/**
 * Whether the upload may be retried under `policy`, and if not, why (in words for the operator). Pure: the
 * record as read; prepareRetry checks again, atomically, that it has not moved on.
 */
export function checkRetry(record: TaskRecord, policy: RetryPolicy): RetryCheck {
  const { status } = record;
  if (!isRetryableStatus(status)) return { retryable: false, reason: `it is ${status}: ${NOT_RETRYABLE[status]}` };
  if (!policy.statuses.includes(status)) return { retryable: false, reason: `it is ${status}, and this retry takes only ${policy.statuses.join(', ')} (--status)` };
  if (status === 'error') {
    if (!record.taskId) return { retryable: false, reason: 'it is error but names no task: nothing to retry from' };
    if (!policy.clearUniqueIdOnError) {
      return {
        retryable: false,
        reason:
          `its task ${record.taskId} ended in error, and Scale frees an upload's unique_id after an error only for tasks created with ` +
          'clear_unique_id_on_error (routing.clearUniqueIdOnError), which is off: Scale would answer a new attempt with the errored task. ' +
          'Upload the object again (a new version gets its own task), or turn clearUniqueIdOnError on for uploads to come',
      };
    }
  } else if (record.taskId) {
    return { retryable: false, reason: `it is ${status} but already names task ${record.taskId}: a retry never replaces a task` };
  }
  if (!identifiesItsUpload(record)) {
    return { retryable: false, reason: 'the record does not identify its S3 upload (no versionId, nor sequencer and ETag), so the upload cannot be sent again: upload the object again' };
  }
  return { retryable: true, from: status };
}

/** The notification rebuilt from the record must name this very upload: the same uniqueId, never another one. */
function identifiesItsUpload(record: TaskRecord): boolean {
  try {
    return sceneUniqueId(record) === record.uniqueId;
  } catch {
    return false;
  }
}

export type RetryOutcome =
  | { kind: 'retried' | 'would_retry'; uniqueId: string; from: RetryableStatus }
  | { kind: 'skipped' | 'failed'; uniqueId: string; status: TaskStatus; reason: string };

export interface RetryDeps {
  store: Pick<TaskStore, 'prepareRetry'>;
  /** Sends an S3 event notification to the ingest queue (SQS SendMessage): create-task submits the upload. */
  send(notification: string): Promise<void>;
  now?: () => Date;
}

/**
 * Retries one upload through the path every upload takes: readies the record (if it is still where it was read),
 * then sends the upload's S3 event notification to the ingest queue, where create-task claims it and creates the
 * task with the upload's own unique_id — so a retry can never make a second task for one upload. Never calls Scale.
 * A dry run checks and changes nothing.
 */
export async function retryUpload(record: TaskRecord, policy: RetryPolicy & { dryRun?: boolean }, deps: RetryDeps): Promise<RetryOutcome> {
  const { uniqueId } = record;
  const check = checkRetry(record, policy);
  if (!check.retryable) return { kind: 'skipped', uniqueId, status: record.status, reason: check.reason };
  if (policy.dryRun) return { kind: 'would_retry', uniqueId, from: check.from };
  const now = deps.now?.() ?? new Date();
  if (!(await deps.store.prepareRetry(uniqueId, { status: check.from, taskId: record.taskId }, now.toISOString()))) {
    return { kind: 'skipped', uniqueId, status: record.status, reason: `it changed since it was read (it was ${record.status}): look at it again before retrying` };
  }
  try {
    await deps.send(uploadNotification(record, now));
  } catch (err) {
    // Readied but not sent: create_failed and failed are unchanged (retry again); the others now wait in
    // submitting, which the reconciler resubmits once they count as stuck.
    const left = check.from === 'create_failed' || check.from === 'failed' ? `it is still ${check.from}: retry again` : 'it now waits in submitting: the reconciler resubmits it once it counts as stuck';
    return { kind: 'failed', uniqueId, status: record.status, reason: `the notification could not be sent to the ingest queue (${(err as Error).message}); ${left}` };
  }
  return { kind: 'retried', uniqueId, from: check.from };
}
