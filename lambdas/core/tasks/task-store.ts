import type { ScaleTaskStatus, TaskRecord, TaskStatus } from './task-record.js';

export type SceneSource = Pick<TaskRecord, 'uniqueId' | 'bucket' | 'key' | 'versionId' | 'eTag' | 'sequencer' | 'size' | 'sceneFormat'>;

export interface Submission extends SceneSource {
  project: string;
  batch?: string;
  route?: string;
}

export interface SubmittedTask {
  taskId: string;
  /** Absent for a task an earlier delivery created, whose URL is not known. */
  attachmentExpiresAt?: string;
  attachmentPinned: boolean;
  adopted: boolean;
  /** For a frame scene: how many frames it has. */
  frameCount?: number;
}

export interface FailedAttempt {
  /** This delivery's receive count. */
  attempt: number;
  /** Bounded description of what went wrong. */
  error: string;
  /** The last delivery before the dead-letter queue: the record becomes 'failed'. */
  terminal: boolean;
  /** The failing delivery's claim, if it took one: released, so the next delivery does not count it twice. */
  claimId?: string;
}

/** Statuses an operator may retry once the cause is fixed (see core/tasks/retry.ts for how each is retried). */
export type RetryableStatus = Extract<TaskStatus, 'rejected' | 'create_failed' | 'error' | 'failed'>;

export interface CallbackUpdate {
  uniqueId: string;
  taskId: string;
  status: ScaleTaskStatus;
  /** Normalised ISO time of the task's own updated_at (or completed_at / created_at). */
  scaleUpdatedAt: string;
  /** Orders callbacks: the time, then status rank, arrival and stored key (see callbackOrderKey). */
  order: string;
  /** SHA-256 of the raw body: an exact duplicate is a no-op. */
  digest: string;
  completedAt?: string;
  responseJson?: string;
  responseRef?: { bucket: string; key: string };
  archive: { bucket: string; key: string };
  /** The completed response's result files, copied before the state is applied (so its event lists them). */
  resultFiles?: TaskRecord['resultFiles'];
  /** Used only when no record exists yet (the create-side record was lost). */
  source: Omit<SceneSource, 'uniqueId'> & { project?: string; frameCount?: number };
}

/** A task created over a rejection, not cancelled yet (see TaskRecord.cancelOwed). */
export interface OwedCancel {
  taskId: string;
  reason: string;
}

/**
 * The port the core writes through. Implementations never decide business rules, they enforce these ones:
 * - a submission is claimed by one delivery (`claimId`); only the current claim may end it as rejected or
 *   create_failed, so a stale delivery never overwrites a newer outcome;
 * - a task in hand is always recorded: nothing but a record that already names a task stops `recordSubmitted`,
 *   so no rejection can hide a task that was created.
 */
export interface TaskStore {
  /**
   * Claims the upload for this delivery ('submitting') unless it already got further. Returns 'started' (first
   * claim), 'resumed' (an earlier delivery had claimed it and may have reached Scale), or the status that stops it
   * (a task exists, or the scene was rejected), with a cancel still owed for its task if there is one.
   */
  startSubmission(submission: Submission, claimId: string, now: string): Promise<'started' | 'resumed' | { alreadyAt: TaskStatus; owedCancel?: OwedCancel }>;
  /** Records 'rejected' with its reason, if this delivery still holds the claim and no task is recorded. */
  recordRejection(uniqueId: string, claimId: string, reason: string, now: string): Promise<void>;
  /** Records 'create_failed' with Scale's error, if this delivery still holds the claim and no task is recorded. */
  recordCreateFailure(uniqueId: string, claimId: string, error: { status?: number; message: string }, now: string): Promise<void>;
  /**
   * Records 'pending' with the task id, unless the record already names a task (a callback got there first).
   * Over a rejection it still records, and says so with the rejection's reason: the task must then be canceled,
   * and the record says so (cancelOwed) until it is.
   */
  recordSubmitted(uniqueId: string, details: SubmittedTask, now: string): Promise<'recorded' | 'already_has_task' | { overRejection: string }>;
  /**
   * Counts a failed delivery and keeps its error; on the terminal one the record becomes 'failed'. Only while the
   * upload is unfinished (absent, submitting or failed): never over an outcome.
   */
  recordFailedAttempt(source: SceneSource, failure: FailedAttempt, now: string): Promise<void>;
  /** Every record of one object key in a bucket (all its versions), newest first; at most `limit`. */
  findByKey(bucket: string, key: string, limit?: number): Promise<TaskRecord[]>;
  /** Records 'canceled' after Scale cancelled the task, unless a newer state from Scale is already recorded. */
  recordCanceled(uniqueId: string, cancel: { taskId: string; scaleUpdatedAt: string; order: string; reason: string }, now: string): Promise<'applied' | 'stale'>;
  /** Keeps Scale's refusal to cancel (e.g. the task is already completed); the status stays as Scale reports. */
  recordCancelRefused(uniqueId: string, error: { status?: number; message: string }, now: string): Promise<void>;
  /**
   * Moves an upload whose task `taskId` ended in `error` back to 'submitting' for a new task, keeping the old one in
   * `previousTaskIds` (its late callbacks then change nothing); false when the record is no longer at that task.
   */
  prepareResubmission(uniqueId: string, taskId: string, now: string): Promise<boolean>;
  /**
   * Readies an upload for another attempt through the ingest queue, only if it is still where the caller saw it
   * (`from`): 'rejected' (and no task) → 'submitting', which create-task takes; 'create_failed' or 'failed' (and
   * no task) stay as they are, create-task's claim takes them; 'error' at `from.taskId` → as prepareResubmission.
   * False when the record moved on (another retry, a delivery, a callback): nothing is changed then.
   */
  prepareRetry(uniqueId: string, from: { status: RetryableStatus; taskId?: string }, now: string): Promise<boolean>;
  /** Applies a callback if it is newer than what is stored; 'stale' when it is not (it is still counted). */
  applyCallback(update: CallbackUpdate, now: string): Promise<'applied' | 'stale'>;
}
