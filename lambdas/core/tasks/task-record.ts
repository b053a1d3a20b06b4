import * as z from 'zod/mini';

/**
 * Where an upload stands:
 * - submitting: accepted, a Scale task is being created
 * - pending: Scale has the task (also after a recall from completed)
 * - completed / error / canceled: as Scale last reported by callback
 * - canceled: also when the object was deleted while its task was still pending (see `reason`)
 * - rejected: never sent to Scale (deleted or replaced before it was processed, empty, not a valid scene, bad
 *   manifest); see `reason`
 * - create_failed: Scale refused the task permanently (a 4xx such as an unknown project); see `scaleError`
 * - failed: every delivery failed on something that may heal (Scale down, a wrong API key, AWS errors); the
 *   message is in the dead-letter queue; see `lastError`. A redrive or retry resumes it.
 */
export const TASK_STATUSES = ['submitting', 'pending', 'completed', 'error', 'canceled', 'rejected', 'create_failed', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Statuses Scale reports in callbacks, which the record takes over. */
export const SCALE_TASK_STATUSES = ['pending', 'completed', 'error', 'canceled'] as const;
export type ScaleTaskStatus = (typeof SCALE_TASK_STATUSES)[number];

export const S3Pointer = z.object({ bucket: z.string(), key: z.string() });

/** A result file a completed response referenced: where it was copied (size, digest), or why not. */
export const ResultFileSchema = z.object({
  sourceUrl: z.string(),
  bucket: z.optional(z.string()),
  key: z.optional(z.string()),
  bytes: z.optional(z.number()),
  sha256: z.optional(z.string()),
  error: z.optional(z.string()),
});

/** One item of the tasks table: the contract downstream jobs read. */
export const TaskRecordSchema = z.object({
  schemaVersion: z.literal(1),
  uniqueId: z.string(),
  status: z.enum(TASK_STATUSES),
  bucket: z.string(),
  key: z.string(),
  versionId: z.optional(z.string()),
  eTag: z.optional(z.string()),
  /** S3's event sequencer of the upload: orders uploads and deletes of one key. */
  sequencer: z.optional(z.string()),
  size: z.optional(z.number()),
  sceneFormat: z.enum(['sensor_fusion', 'split_base64']),
  project: z.optional(z.string()),
  batch: z.optional(z.string()),
  route: z.optional(z.string()),
  /** For a split_base64 scene: how many frames the manifest lists. */
  frameCount: z.optional(z.number()),
  taskId: z.optional(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
  submittedAt: z.optional(z.string()),
  /**
   * When the presigned attachment URL stops working (the earlier of its lifetime and the signer's credentials), when
   * that is known; absent when the signer's session end is not (a Lambda role).
   */
  attachmentExpiresAt: z.optional(z.string()),
  adopted: z.optional(z.boolean()),
  /**
   * True when the attachment URL names the exact version that was checked. False where the bucket gives no real
   * versionId (unversioned or suspended): an overwrite after submission would be what Scale downloads.
   */
  attachmentPinned: z.optional(z.boolean()),
  reason: z.optional(z.string()),
  scaleError: z.optional(z.object({ status: z.optional(z.number()), message: z.string() })),
  /** Deliveries of the upload's message that failed so far, and the newest failure (bounded). */
  attempts: z.optional(z.number()),
  lastError: z.optional(z.string()),
  /**
   * A task created over a rejection (deleted or replaced meanwhile) whose cancel has not reached Scale yet: why it is
   * to be cancelled. The next delivery of the upload cancels it; gone once Scale cancelled or refused.
   */
  cancelOwed: z.optional(z.string()),
  /** Scale refused to cancel the task of a deleted object (e.g. already completed). */
  cancelError: z.optional(z.object({ status: z.optional(z.number()), message: z.string() })),
  /** Result files the completed response referenced: copied into the results bucket (with size and digest), or why not. */
  resultFiles: z.optional(z.array(ResultFileSchema)),
  /** Tasks this upload had before, each ended in a transient `error` and resubmitted (oldest first), and how many. */
  previousTaskIds: z.optional(z.array(z.string())),
  resubmissions: z.optional(z.number()),
  /** When an operator's retry or the reconciler last reopened the upload for another task. */
  reopenedAt: z.optional(z.string()),
  /** Internal: which delivery holds the submission, so a stale one cannot overwrite a newer outcome. */
  claimId: z.optional(z.string()),
  scaleStatus: z.optional(z.string()),
  /** The task's own updated_at of the newest callback applied. */
  scaleUpdatedAt: z.optional(z.string()),
  /** Internal: the order key of the state applied (time, status rank, arrival) and its body's digest. */
  callbackOrder: z.optional(z.string()),
  callbackDigest: z.optional(z.string()),
  completedAt: z.optional(z.string()),
  callbackCount: z.optional(z.number()),
  lastCallbackAt: z.optional(z.string()),
  /** Scale's `response` as JSON text, when small enough to keep in the item. */
  responseJson: z.optional(z.string()),
  /** Otherwise: the archived callback body whose `response` field holds it. */
  responseRef: z.optional(S3Pointer),
  /** The archived body of the newest callback applied. */
  lastCallbackArchive: z.optional(S3Pointer),
});
export type TaskRecord = z.infer<typeof TaskRecordSchema>;
