import { callbackOrderKey } from '../callbacks/apply-callback.js';
import { isScaleAuthFailure } from '../shared/failures.js';
import { ScaleApiError } from '../scale/errors.js';
import type { ScaleTask } from '../scale/schemas.js';
import { compareSequencers, type RemovalEvent } from './s3-event.js';
import { isRealVersionId } from './scene-identity.js';
import type { TaskRecord, TaskStatus } from '../tasks/task-record.js';
import type { TaskStore } from '../tasks/task-store.js';
import { boundText } from '../shared/validation.js';
import { NotYetError } from './wait-in-queue.js';

export interface CancelDeps {
  store: TaskStore;
  scale: { cancelTask(taskId: string): Promise<ScaleTask>; findTaskByUniqueId(uniqueId: string): Promise<ScaleTask | undefined> };
  /** Off: deletes are only logged, open tasks go on. */
  cancelOnDelete: boolean;
  now?: () => Date;
}

export type RemovalOutcome =
  | { kind: 'ignored'; reason: string }
  | { kind: 'nothing_to_cancel'; uniqueId?: string; status?: TaskStatus; reason: string }
  | CancelOutcome;

export const CANCELED_ON_DELETE = 'the object was deleted from S3 while its task was pending; the task was canceled at Scale';
/** The reason recorded when an operator cancels a pending task (`sfs-pipeline cancel`). */
export const CANCELED_BY_OPERATOR = 'canceled by an operator (sfs-pipeline cancel)';
/** A submission in flight ends within one create-task invocation (a minute); one waiting for Scale's rate limit, later. */
const SUBMISSION_SETTLES_MS = 60_000;

/**
 * A delete of an object whose upload has a task Scale has not started: cancel it, so deleted data is not labelled
 * (and not paid for). Scale cancels only pending tasks; a refusal (e.g. already completed) is recorded, not retried.
 * A delete of an upload still being submitted waits in the queue, without counting as a failed delivery, and is
 * handled again once the task exists (or the upload was rejected or found deleted).
 */
export async function cancelOnDelete(removal: RemovalEvent, deps: CancelDeps): Promise<RemovalOutcome> {
  if (!deps.cancelOnDelete) return { kind: 'ignored', reason: 'cancelOnDelete is off' };
  const target = deletedUpload(removal, await deps.store.findByKey(removal.bucket, removal.key));
  if (!target) return { kind: 'nothing_to_cancel', reason: 'no upload of this object was recorded before the delete' };
  const { uniqueId, status } = target;
  if (status === 'submitting') {
    throw new NotYetError(`upload ${uniqueId} is still being submitted; the delete is handled again once it has a task (or was rejected)`, SUBMISSION_SETTLES_MS);
  }
  if (status === 'failed') {
    // Its deliveries gave up, but one of them may have created the task before its answer was lost.
    const task = await deps.scale.findTaskByUniqueId(uniqueId);
    if (!task) return { kind: 'nothing_to_cancel', uniqueId, status, reason: 'the upload failed before Scale had a task for it' };
    await deps.store.recordSubmitted(uniqueId, { taskId: task.task_id, attachmentPinned: isRealVersionId(target.versionId), adopted: true }, (deps.now?.() ?? new Date()).toISOString());
    return cancelOpenTask(uniqueId, task.task_id, CANCELED_ON_DELETE, deps);
  }
  if (status !== 'pending' || !target.taskId) return { kind: 'nothing_to_cancel', uniqueId, status, reason: `the upload is ${status}, not a pending task` };
  return cancelOpenTask(uniqueId, target.taskId, CANCELED_ON_DELETE, deps);
}

export type CancelOutcome =
  | { kind: 'canceled' | 'already_newer'; uniqueId: string; taskId: string }
  | { kind: 'cancel_refused'; uniqueId: string; taskId: string; scaleStatus?: number; scaleMessage: string };

/** Cancels a task at Scale and records it as Scale answers: canceled, or the refusal (not retried). */
export async function cancelOpenTask(uniqueId: string, taskId: string, reason: string, deps: Pick<CancelDeps, 'store' | 'scale' | 'now'>): Promise<CancelOutcome> {
  const now = () => (deps.now?.() ?? new Date()).toISOString();
  let task: ScaleTask;
  try {
    task = await deps.scale.cancelTask(taskId);
  } catch (err) {
    // 4xx other than a refused key: Scale will not cancel this task (completed, errored, unknown); keep its word.
    if (!(err instanceof ScaleApiError) || err.retryable || isScaleAuthFailure(err) || err.status === undefined) throw err;
    const scaleMessage = boundText(err.scaleMessage ?? err.message);
    await deps.store.recordCancelRefused(uniqueId, { status: err.status, message: scaleMessage }, now());
    return { kind: 'cancel_refused', uniqueId, taskId, scaleStatus: err.status, scaleMessage };
  }
  const scaleUpdatedAt = isoOrNow(task.updated_at, now());
  const order = callbackOrderKey(scaleUpdatedAt, 'canceled', now(), `cancel/${taskId}`);
  const applied = await deps.store.recordCanceled(uniqueId, { taskId, scaleUpdatedAt, order, reason }, now());
  return { kind: applied === 'applied' ? 'canceled' : 'already_newer', uniqueId, taskId };
}

/**
 * The upload a removal took away: the exact version for a permanent delete of one version; otherwise (a delete
 * marker, or a delete in an unversioned bucket) the newest upload of the key from before the delete.
 */
export function deletedUpload(removal: RemovalEvent, records: TaskRecord[]): TaskRecord | undefined {
  if (removal.eventName === 'ObjectRemoved:Delete' && isRealVersionId(removal.versionId)) return records.find((r) => r.versionId === removal.versionId);
  const earlier = records.filter((r) => r.sequencer !== undefined && (removal.sequencer === undefined || compareSequencers(r.sequencer, removal.sequencer) < 0));
  return earlier.sort((a, b) => compareSequencers(b.sequencer!, a.sequencer!))[0];
}

function isoOrNow(value: string | null | undefined, fallback: string): string {
  const time = value ? Date.parse(value) : NaN;
  return Number.isNaN(time) ? fallback : new Date(time).toISOString();
}
