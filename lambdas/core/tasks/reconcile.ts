import type { ListTasksQuery } from '../scale/client.js';
import type { ScaleTask, TaskList } from '../scale/schemas.js';
import { encodeS3Key } from '../scenes/s3-event.js';
import type { TaskRecord, TaskStatus } from './task-record.js';

/** One run's figures: what it looked at and what it found missing. */
export interface ReconcileReport {
  /** Tasks Scale reported as updated within the look-back. */
  checked: number;
  /** Of those, states the records did not have: callbacks that never arrived (or not yet). */
  missingStates: number;
  /** Uploads stuck in `submitting` that Scale had a task for (its answer was lost). */
  adopted: number;
  /** Uploads stuck in `submitting` that never reached Scale, sent through create-task again. */
  resubmitted: number;
}

export interface ReconcileDeps {
  scale: { listTasks(query: ListTasksQuery): Promise<TaskList>; findTaskByUniqueId(uniqueId: string): Promise<ScaleTask | undefined> };
  records: {
    get(uniqueId: string): Promise<TaskRecord | undefined>;
    listByStatusBefore(status: TaskStatus, before: string, options: { limit?: number; cursor?: string }): Promise<{ items: TaskRecord[]; cursor?: string }>;
  };
  /**
   * Stores a task's state as a callback body where the callback path picks it up, so a reconciled state is
   * applied exactly like a callback — in the same order — and a late callback and a reconciliation never fight.
   */
  storeState(uniqueId: string, name: string, body: string): Promise<void>;
  /** Sends an S3 event notification for the upload to the ingest queue: create-task submits it again. */
  resubmit(notification: string): Promise<void>;
  /** The Scale projects tasks go to (the routing's default and every route's). */
  projects: string[];
  now?: () => Date;
  /** Records still `submitting` after this long are looked up at Scale. */
  afterMinutes: number;
  /** How far back to ask Scale for updated tasks: more than Scale's 24 hours of callback retries. */
  lookBackHours: number;
  /** A bound on one run's work. */
  maxTasks?: number;
}

const UNIQUE_ID = /^sfs-[0-9a-f]{40}$/;

/**
 * Reconcile, don't trust: asks Scale what changed within the look-back and hands every state the records lack to
 * the callback path; finds uploads stuck in `submitting` and adopts Scale's task for them or submits them again.
 */
export async function reconcile(deps: ReconcileDeps): Promise<ReconcileReport> {
  const now = deps.now?.() ?? new Date();
  const report: ReconcileReport = { checked: 0, missingStates: 0, adopted: 0, resubmitted: 0 };
  const maxTasks = deps.maxTasks ?? 10_000;
  const updatedAfter = new Date(now.getTime() - deps.lookBackHours * 3_600_000).toISOString();

  for (const project of deps.projects) {
    let nextToken: string | undefined;
    do {
      const page = await deps.scale.listTasks({ project, updated_after: updatedAfter, limit: 100, next_token: nextToken });
      for (const task of page.docs) {
        if (report.checked >= maxTasks) return report;
        report.checked++;
        if (await storeIfMissing(task, deps)) report.missingStates++;
      }
      nextToken = page.has_more && page.next_token ? page.next_token : undefined;
    } while (nextToken);
  }

  const stuckBefore = new Date(now.getTime() - deps.afterMinutes * 60_000).toISOString();
  let cursor: string | undefined;
  do {
    const page = await deps.records.listByStatusBefore('submitting', stuckBefore, { limit: 100, cursor });
    for (const record of page.items) {
      const task = await deps.scale.findTaskByUniqueId(record.uniqueId);
      if (task) {
        await storeIfMissing(task, deps);
        report.adopted++;
      } else {
        await deps.resubmit(notificationFor(record, now));
        report.resubmitted++;
      }
    }
    cursor = page.cursor;
  } while (cursor);
  return report;
}

/** Stores the task's state for the callback path when the record does not have it yet; true when it did so. */
async function storeIfMissing(task: ScaleTask, deps: ReconcileDeps): Promise<boolean> {
  const uniqueId = task.unique_id ?? '';
  const updatedAt = task.updated_at ? Date.parse(task.updated_at) : NaN;
  if (!UNIQUE_ID.test(uniqueId) || Number.isNaN(updatedAt)) return false;
  const record = await deps.records.get(uniqueId);
  const at = new Date(updatedAt).toISOString();
  if (record?.scaleUpdatedAt && record.scaleUpdatedAt >= at) return false;
  const body = JSON.stringify({ task, response: task.response ?? {}, task_id: task.task_id, status: task.status, reconciled: true });
  // Named by the state's own time: running again before it is applied writes the same object, not another.
  await deps.storeState(uniqueId, `reconciled-${at.replace(/[:.]/g, '')}.json`, body);
  return true;
}

/** The S3 event notification S3 sent for the upload, as create-task reads it. */
function notificationFor(record: TaskRecord, now: Date): string {
  const object = {
    key: encodeS3Key(record.key),
    ...(record.size !== undefined ? { size: record.size } : {}),
    ...(record.eTag ? { eTag: record.eTag } : {}),
    ...(record.versionId ? { versionId: record.versionId } : {}),
    ...(record.sequencer ? { sequencer: record.sequencer } : {}),
  };
  return JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', eventTime: now.toISOString(), s3: { bucket: { name: record.bucket }, object } }] });
}
