import * as z from 'zod/mini';
import { boundText } from '../shared/validation.js';
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
 * Responses nested deeper than this are not written: JSON.stringify recurses per level and overflows the stack
 * at a few thousand (the callback function archives such bodies by reference instead of failing on them), and no
 * real labelling response comes anywhere near.
 */
export const MAX_RESPONSE_DEPTH = 1000;

/**
 * The export line of a record. `readArchived` fetches the callback body a large response was archived in (the
 * record's `responseRef`) and answers its `response` field; it throws on failures worth retrying. A response that
 * cannot be written (not JSON, nested too deeply) becomes the line's `responseError`: the line is written anyway.
 */
export async function exportLineOf(record: TaskRecord, readArchived: (ref: { bucket: string; key: string }) => Promise<ArchivedResponse>): Promise<ExportLine> {
  let response: Pick<ExportLine, 'response' | 'responseSource' | 'responseError'> = {};
  if (record.responseJson !== undefined) {
    response = { ...inlineResponse(record.responseJson), responseSource: 'inline' };
  } else if (record.responseRef) {
    const { bucket, key } = record.responseRef;
    const archived = await readArchived(record.responseRef);
    const where = `the archived callback s3://${bucket}/${key}`;
    response = 'error' in archived ? { responseError: archived.error, responseSource: 'archive' } : { ...bounded(archived.response, where), responseSource: 'archive' };
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

/**
 * The line as one line of JSON text. Should it still not serialize (a response too deep for this stack, whatever
 * the bound), it is written without the response and with a `responseError` saying why, never not at all.
 */
export function exportLineText(line: ExportLine): { text: string; line: ExportLine } {
  try {
    return { text: JSON.stringify(line), line };
  } catch (err) {
    const { response: _dropped, ...rest } = line;
    const written: ExportLine = { ...rest, responseError: boundText(`Scale's response cannot be written as JSON (${(err as Error).message})`) };
    return { text: JSON.stringify(written), line: written };
  }
}

function inlineResponse(responseJson: string): Pick<ExportLine, 'response' | 'responseError'> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(responseJson);
  } catch {
    return { responseError: "the record's inline response (responseJson) is not JSON" };
  }
  return bounded(parsed, 'the record (responseJson)');
}

/** The response, or a responseError when it nests deeper than MAX_RESPONSE_DEPTH. */
function bounded(response: unknown, where: string): Pick<ExportLine, 'response' | 'responseError'> {
  if (!nestsDeeperThan(response, MAX_RESPONSE_DEPTH)) return { response };
  return { responseError: boundText(`Scale's response in ${where} nests objects and arrays more than ${MAX_RESPONSE_DEPTH} levels deep: too deep to write as a JSON line (read it from there)`) };
}

/** Whether objects and arrays nest more than `limit` levels deep, found without recursion (the value may be hostile). */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const pending: Array<[unknown, number]> = [[value, 0]];
  while (pending.length > 0) {
    const [next, depth] = pending.pop()!;
    if (next === null || typeof next !== 'object') continue;
    if (depth + 1 > limit) return true;
    for (const child of Array.isArray(next) ? next : Object.values(next)) if (child !== null && typeof child === 'object') pending.push([child, depth + 1]);
  }
  return false;
}
