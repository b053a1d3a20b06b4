import * as z from 'zod/mini';
import { TASK_STATUSES, type TaskRecord } from './task-record.js';

/**
 * One line of `sfs-pipeline export` (JSON Lines): one upload and its labels, shaped like a SageMaker Ground Truth
 * manifest line (`source-ref` names the input). The contract downstream jobs validate against: fields are only
 * ever added; a change of meaning bumps `schemaVersion`. Parsing strips fields a newer exporter may add.
 */
export const ExportLineSchema = z
  .object({
    /** Version of this line's shape. */
    schemaVersion: z.literal(1),
    /** The uploaded scene (or frames manifest): s3://bucket/key. */
    'source-ref': z.string().check(z.startsWith('s3://')),
    /** The object version the task was made from; absent when the bucket gave none (unversioned). */
    versionId: z.optional(z.string()),
    /** The pipeline's id of the upload (sent to Scale as unique_id). */
    uniqueId: z.string().check(z.regex(/^sfs-[0-9a-f]{40}$/)),
    /** Scale's task id; absent when no task was created (rejected, create_failed, failed). */
    taskId: z.optional(z.string()),
    /** The record's status (see TASK_STATUSES in task-record.ts). */
    status: z.enum(TASK_STATUSES),
    /** The Scale project and batch the task was created in. */
    project: z.optional(z.string()),
    batch: z.optional(z.string()),
    /** ISO 8601 times: record created, last changed, task created at Scale, task completed at Scale. */
    createdAt: z.string(),
    updatedAt: z.string(),
    submittedAt: z.optional(z.string()),
    completedAt: z.optional(z.string()),
    /**
     * Scale's `response` for the task (parsed JSON, exactly as Scale sent it in the callback applied last);
     * absent when Scale has sent none (or when `responseError` says why it could not be read).
     */
    response: z.optional(z.unknown()),
    /** Where `response` was read from: the record itself, or the archived callback body (large responses). */
    responseSource: z.optional(z.enum(['inline', 'archive'])),
    /** Why the response could not be read (the archived body is missing or unreadable); the line is written anyway. */
    responseError: z.optional(z.string()),
    /** Result files the response referenced, copied into the results bucket; `error` instead when not copied. */
    resultFiles: z.optional(
      z.array(
        z.object({
          /** Where Scale served the file. */
          sourceUrl: z.string(),
          /** Its copy: s3://bucket/key. */
          s3Uri: z.optional(z.string().check(z.startsWith('s3://'))),
          bytes: z.optional(z.number()),
          /** Hex SHA-256 of the copy. */
          sha256: z.optional(z.string()),
          /** Why it was not copied. */
          error: z.optional(z.string()),
        }),
      ),
    ),
  })
  .check(z.refine((line) => !(line.response !== undefined && line.responseError !== undefined), 'a line has either a response or a responseError, not both'));
export type ExportLine = z.infer<typeof ExportLineSchema>;

/** What reading a response from the archive gave: the parsed response, or why there is none. */
export type ArchivedResponse = { response: unknown } | { error: string };

/**
 * The export line of a record. `readArchived` fetches the callback body a large response was archived in (the
 * record's `responseRef`) and answers its `response` field; it throws on failures worth retrying.
 */
export async function exportLineOf(record: TaskRecord, readArchived: (ref: { bucket: string; key: string }) => Promise<ArchivedResponse>): Promise<ExportLine> {
  let response: Pick<ExportLine, 'response' | 'responseSource' | 'responseError'> = {};
  if (record.responseJson !== undefined) {
    response = { response: JSON.parse(record.responseJson) as unknown, responseSource: 'inline' };
  } else if (record.responseRef) {
    const archived = await readArchived(record.responseRef);
    response = 'error' in archived ? { responseError: archived.error, responseSource: 'archive' } : { response: archived.response, responseSource: 'archive' };
  }
  return {
    schemaVersion: 1,
    'source-ref': `s3://${record.bucket}/${record.key}`,
    ...(record.versionId !== undefined ? { versionId: record.versionId } : {}),
    uniqueId: record.uniqueId,
    ...(record.taskId !== undefined ? { taskId: record.taskId } : {}),
    status: record.status,
    ...(record.project !== undefined ? { project: record.project } : {}),
    ...(record.batch !== undefined ? { batch: record.batch } : {}),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    ...(record.submittedAt !== undefined ? { submittedAt: record.submittedAt } : {}),
    ...(record.completedAt !== undefined ? { completedAt: record.completedAt } : {}),
    ...response,
    ...(record.resultFiles
      ? {
          resultFiles: record.resultFiles.map((file) => ({
            sourceUrl: file.sourceUrl,
            ...(file.bucket && file.key ? { s3Uri: `s3://${file.bucket}/${file.key}` } : {}),
            ...(file.bytes !== undefined ? { bytes: file.bytes } : {}),
            ...(file.sha256 !== undefined ? { sha256: file.sha256 } : {}),
            ...(file.error !== undefined ? { error: file.error } : {}),
          })),
        }
      : {}),
  };
}
