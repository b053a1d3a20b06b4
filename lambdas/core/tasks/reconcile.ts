import { callbackStateKey } from '../callbacks/apply-callback.js';
import type { ListTasksQuery } from '../scale/client.js';
import type { ScaleTask, TaskList } from '../scale/schemas.js';
import { uploadNotification } from '../scenes/s3-event.js';
import { SCALE_TASK_STATUSES, type ScaleTaskStatus, type TaskRecord, type TaskStatus } from './task-record.js';

/** One run's figures: what it looked at and what it found missing. */
export interface ReconcileReport {
  /** Tasks of this stack's uploads that Scale reported as updated within the look-back. */
  checked: number;
  /** Of those, states the records did not have: callbacks that never arrived (or not yet). */
  missingStates: number;
  /** Uploads stuck in `submitting` that Scale had a task for (its answer was lost). */
  adopted: number;
  /** Uploads stuck in `submitting` that never reached Scale, sent through create-task again. */
  resubmitted: number;
  /** Tasks that ended in `error` because Scale could not download the attachment, submitted again as a new task. */
  retriedErrors: number;
  /** Projects whose listing failed this run (named in `errors`); the others were still reconciled. */
  failedProjects: number;
  /** Why, bounded. */
  errors: string[];
}

export interface ReconcileDeps {
  scale: { listTasks(query: ListTasksQuery): Promise<TaskList>; findTaskByUniqueId(uniqueId: string): Promise<ScaleTask | undefined> };
  records: {
    get(uniqueId: string): Promise<TaskRecord | undefined>;
    listByStatus(status: TaskStatus, since: string, options: { limit?: number; cursor?: string }): Promise<{ items: TaskRecord[]; cursor?: string }>;
    listByStatusBefore(status: TaskStatus, before: string, options: { limit?: number; cursor?: string }): Promise<{ items: TaskRecord[]; cursor?: string }>;
  };
  /** Moves an errored upload back to `submitting`, keeping its old task (see TaskStore.prepareResubmission). */
  prepareResubmission(uniqueId: string, taskId: string, now: string): Promise<boolean>;
  /**
   * How often an upload whose task failed to download its attachment (a transient cause: an expired URL, S3 briefly
   * unavailable) is submitted again; 0 turns it off. Needs `clear_unique_id_on_error`, which frees the unique_id.
   */
  errorResubmissions: number;
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
  /** Bounds on one run's work: this stack's tasks checked, pages per project, stuck uploads handled. */
  limits?: { tasks?: number; pagesPerProject?: number; stuck?: number };
}

const UNIQUE_ID = /^sfs-[0-9a-f]{40}$/;

/**
 * Reconcile, don't trust: asks Scale what changed within the look-back and hands every state this stack's records
 * lack to the callback path; finds uploads stuck in `submitting` and adopts Scale's task for them or submits them
 * again. Only tasks with a record here count: another stack's tasks in a shared project are not ours to apply.
 * A project whose listing fails is reported and skipped; every loop is bounded.
 */
export async function reconcile(deps: ReconcileDeps): Promise<ReconcileReport> {
  const now = deps.now?.() ?? new Date();
  const limits = { tasks: 10_000, pagesPerProject: 200, stuck: 500, ...deps.limits };
  const report: ReconcileReport = { checked: 0, missingStates: 0, adopted: 0, resubmitted: 0, retriedErrors: 0, failedProjects: 0, errors: [] };
  const updatedAfter = new Date(now.getTime() - deps.lookBackHours * 3_600_000).toISOString();

  for (const project of deps.projects) {
    try {
      const seenTokens = new Set<string>();
      let nextToken: string | undefined;
      for (let page = 0; page < limits.pagesPerProject && report.checked < limits.tasks; page++) {
        const list = await deps.scale.listTasks({ project, updated_after: updatedAfter, limit: 100, next_token: nextToken });
        for (const task of list.docs) {
          if (report.checked >= limits.tasks) break;
          const outcome = await storeIfMissing(task, deps);
          if (outcome === 'not ours') continue;
          report.checked++;
          if (outcome === 'stored') report.missingStates++;
        }
        // A token seen before would page forever.
        if (!list.has_more || !list.next_token || seenTokens.has(list.next_token)) break;
        seenTokens.add(list.next_token);
        nextToken = list.next_token;
      }
    } catch (err) {
      report.failedProjects++;
      if (report.errors.length < 5) report.errors.push(`project ${project}: ${(err as Error).message}`.slice(0, 300));
    }
  }

  await retryTransientErrors(deps, updatedAfter, now, limits.stuck, report);

  const stuckBefore = new Date(now.getTime() - deps.afterMinutes * 60_000).toISOString();
  let cursor: string | undefined;
  let handled = 0;
  do {
    const page = await deps.records.listByStatusBefore('submitting', stuckBefore, { limit: 100, cursor });
    for (const record of page.items) {
      if (handled++ >= limits.stuck) return report;
      const task = await deps.scale.findTaskByUniqueId(record.uniqueId);
      if (task) {
        await storeIfMissing(task, deps);
        report.adopted++;
      } else {
        // Dated when the upload was recorded or last reopened, not now: its day of waiting in the queue does not start over.
        await deps.resubmit(uploadNotification(record, lastOpened(record, now)));
        report.resubmitted++;
      }
    }
    cursor = page.cursor;
  } while (cursor);
  return report;
}

/** Scale's words for an attachment it could not download (SCALE-API.md): worth another task, unlike a bad scene. */
const DOWNLOAD_FAILED = 'could not be downloaded';

/**
 * Submits again, as a new task, the uploads whose task ended in `error` because Scale could not download the
 * attachment, at most `errorResubmissions` times each; every earlier task stays listed on the record.
 */
async function retryTransientErrors(deps: ReconcileDeps, since: string, now: Date, limit: number, report: ReconcileReport): Promise<void> {
  if (deps.errorResubmissions <= 0) return;
  let cursor: string | undefined;
  let seen = 0;
  do {
    const page = await deps.records.listByStatus('error', since, { limit: 100, cursor });
    for (const record of page.items) {
      if (seen++ >= limit) return;
      const transient = record.responseJson?.includes(DOWNLOAD_FAILED) ?? false;
      if (!transient || !record.taskId || (record.resubmissions ?? 0) >= deps.errorResubmissions) continue;
      if (!(await deps.prepareResubmission(record.uniqueId, record.taskId, now.toISOString()))) continue;
      await deps.resubmit(uploadNotification(record, now));
      report.retriedErrors++;
    }
    cursor = page.cursor;
  } while (cursor);
}

/** Stores the task's state for the callback path when its record here lacks it. */
async function storeIfMissing(task: ScaleTask, deps: ReconcileDeps): Promise<'not ours' | 'present' | 'stored'> {
  const uniqueId = task.unique_id ?? '';
  const updatedAt = task.updated_at ? Date.parse(task.updated_at) : NaN;
  const status = task.status as ScaleTaskStatus;
  if (!UNIQUE_ID.test(uniqueId) || Number.isNaN(updatedAt) || !SCALE_TASK_STATUSES.includes(status)) return 'not ours';
  const record = await deps.records.get(uniqueId);
  if (!record) return 'not ours';
  const at = new Date(updatedAt).toISOString();
  const audits = Array.isArray(task.audits) ? task.audits.length : 0;
  // Ordered as the callback path orders: a recall or an audit at the same instant is a newer state too. The order
  // key starts with the state key, so an order key of this very state sorts at or after it, as does any later one.
  // A record from before order keys is compared by time alone.
  const known = record.callbackOrder ?? record.scaleUpdatedAt;
  const mine = record.callbackOrder ? callbackStateKey(at, status, audits) : at;
  if (known !== undefined && known >= mine) return 'present';
  // The response once, at the top (as `response`): a task's response can be large.
  const body = JSON.stringify({ task: { ...task, response: undefined }, response: task.response ?? {}, task_id: task.task_id, status: task.status, reconciled: true });
  // Named by the state's own time: running again before it is applied writes the same object, not another.
  await deps.storeState(uniqueId, `reconciled-${at.replace(/[:.]/g, '')}-${status}-${audits}.json`, body);
  return 'stored';
}

/** When the upload was recorded, or last reopened by a retry or resubmission; now if neither is readable or both are ahead. */
function lastOpened(record: TaskRecord, now: Date): Date {
  const times = [record.createdAt, record.reopenedAt].map((t) => (t === undefined ? NaN : Date.parse(t))).filter((t) => Number.isFinite(t) && t <= now.getTime());
  return times.length > 0 ? new Date(Math.max(...times)) : now;
}
