import type { ScaleTaskStatus, TaskRecord, TaskStatus } from './task-record.js';

export type SceneSource = Pick<TaskRecord, 'uniqueId' | 'bucket' | 'key' | 'versionId' | 'eTag' | 'size' | 'sceneFormat'>;

export interface Submission extends SceneSource {
  project: string;
  batch?: string;
  route?: string;
}

export interface SubmittedTask {
  taskId: string;
  attachmentExpiresAt: string;
  adopted: boolean;
  /** For a frame scene: how many frames it has. */
  frameCount?: number;
}

export interface CallbackUpdate {
  uniqueId: string;
  taskId: string;
  status: ScaleTaskStatus;
  /** Normalised ISO time of the task's own updated_at (or completed_at / created_at): orders callbacks. */
  scaleUpdatedAt: string;
  completedAt?: string;
  responseJson?: string;
  responseRef?: { bucket: string; key: string };
  archive: { bucket: string; key: string };
  /** Used only when no record exists yet (the create-side record was lost). */
  source: Omit<SceneSource, 'uniqueId'> & { project?: string; frameCount?: number };
}

/** The port the core writes through. Implementations never decide business rules, they enforce these ones. */
export interface TaskStore {
  /**
   * Records 'submitting' unless the upload already got further. Returns 'started', or the status that stops it
   * (a task exists, or the scene was rejected).
   */
  startSubmission(submission: Submission, now: string): Promise<'started' | { alreadyAt: TaskStatus }>;
  /** Records 'rejected' with its reason, unless the upload already has a task. */
  recordRejection(source: SceneSource, reason: string, now: string): Promise<void>;
  /** Records 'create_failed' with Scale's error, unless the upload already has a task. */
  recordCreateFailure(uniqueId: string, error: { status?: number; message: string }, now: string): Promise<void>;
  /** Records 'pending' with the task id, unless a callback already moved it on. */
  recordSubmitted(uniqueId: string, details: SubmittedTask, now: string): Promise<void>;
  /** Applies a callback if it is newer than what is stored; 'stale' when it is not (it is still counted). */
  applyCallback(update: CallbackUpdate, now: string): Promise<'applied' | 'stale'>;
}
