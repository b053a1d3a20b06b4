import * as z from 'zod/mini';
import { ResultFileSchema, S3Pointer, TASK_STATUSES, type TaskRecord } from '../tasks/task-record.js';

/**
 * The task event contract (version 1), for downstream jobs: one event on the pipeline's bus per status change of a
 * task record, derived from the table's stream — so an event exists exactly when the change was committed, in
 * order per upload. Consumers import TaskEventDetailSchema to validate what they receive.
 */
export const TASK_EVENT_SOURCE = 'scale-sfs-pipeline';
export const TASK_EVENT_DETAIL_TYPE = 'Task status changed';

/**
 * A response up to this size (as JSON) travels in the event; larger ones by reference. The pipe puts up to 10
 * events in one PutEvents request, which EventBridge limits to 256 KB in all: 10 × (20 KB + the rest) fits.
 */
export const INLINE_EVENT_RESPONSE_BYTES = 20 * 1024;

const Status = z.enum(TASK_STATUSES);

export const TaskEventDetailSchema = z.object({
  schemaVersion: z.literal(1),
  uniqueId: z.string(),
  status: Status,
  /** Absent for the record's first state. */
  previousStatus: z.optional(Status),
  taskId: z.optional(z.string()),
  bucket: z.string(),
  key: z.string(),
  versionId: z.optional(z.string()),
  project: z.optional(z.string()),
  batch: z.optional(z.string()),
  sceneFormat: z.enum(['sensor_fusion', 'split_base64']),
  /** Scale's response: inline when small, else where it is stored (the callback body's `response` field). */
  response: z.optional(z.union([z.object({ inline: z.unknown() }), z.object({ ref: S3Pointer })])),
  /** The completed response's result files, copied into the results bucket (or why not). */
  resultFiles: z.optional(z.array(ResultFileSchema)),
  /** Why: rejected/canceled (reason), create_failed (scaleError), failed (lastError). */
  reason: z.optional(z.string()),
  scaleError: z.optional(z.object({ status: z.optional(z.number()), message: z.string() })),
  lastError: z.optional(z.string()),
  /** When the change was recorded (the record's updatedAt). */
  time: z.string(),
});
export type TaskEventDetail = z.infer<typeof TaskEventDetailSchema>;

/** The event for a change of a record, or undefined when its status did not change (or the record went away). */
export function taskEventFrom(before: TaskRecord | undefined, after: TaskRecord | undefined): TaskEventDetail | undefined {
  if (!after || before?.status === after.status) return undefined;
  const pick = <K extends keyof TaskRecord>(...fields: K[]) => Object.fromEntries(fields.filter((f) => after[f] !== undefined).map((f) => [f, after[f]]));
  return {
    schemaVersion: 1,
    uniqueId: after.uniqueId,
    status: after.status,
    ...(before ? { previousStatus: before.status } : {}),
    ...pick('taskId', 'versionId', 'project', 'batch'),
    ...whyOf(after),
    bucket: after.bucket,
    key: after.key,
    sceneFormat: after.sceneFormat,
    ...responseOf(after),
    ...(after.status === 'completed' && after.resultFiles ? { resultFiles: after.resultFiles } : {}),
    time: after.updatedAt,
  } as TaskEventDetail;
}

/** Why the upload ended where it did, for the statuses that have a why. */
function whyOf(record: TaskRecord): Pick<TaskEventDetail, 'reason' | 'scaleError' | 'lastError'> {
  if ((record.status === 'rejected' || record.status === 'canceled') && record.reason) return { reason: record.reason };
  if (record.status === 'create_failed' && record.scaleError) return { scaleError: record.scaleError };
  if (record.status === 'failed' && record.lastError) return { lastError: record.lastError };
  return {};
}

function responseOf(record: TaskRecord): Pick<TaskEventDetail, 'response'> {
  if (record.responseJson !== undefined && Buffer.byteLength(record.responseJson, 'utf8') <= INLINE_EVENT_RESPONSE_BYTES) {
    return { response: { inline: JSON.parse(record.responseJson) as unknown } };
  }
  const ref = record.responseRef ?? (record.responseJson !== undefined ? record.lastCallbackArchive : undefined);
  return ref ? { response: { ref } } : {};
}
