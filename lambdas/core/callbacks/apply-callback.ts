import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { checkAgainst, quote, summarizeProblems } from '../shared/validation.js';
import { findResultFileUrls, type ResultFile } from './result-files.js';
import { ScaleTaskSchema } from '../scale/schemas.js';
import { SCALE_TASK_STATUSES, TaskRecordSchema, type ScaleTaskStatus } from '../tasks/task-record.js';
import type { CallbackUpdate, TaskStore } from '../tasks/task-store.js';

/** Responses up to this size (serialized) are kept in the record; larger ones stay in the archive only. */
export const INLINE_RESPONSE_LIMIT_BYTES = 300 * 1024;

export const CallbackBodySchema = z.looseObject({
  task_id: z.string().check(z.minLength(1, 'is required')),
  status: z.string(),
  response: z.optional(z.unknown()),
  task: ScaleTaskSchema,
});

/**
 * The source create-task puts in the task's metadata, as the record's own fields. Only these keys survive the
 * parse: metadata comes back from Scale, and the store writes what it is given.
 */
const SourceMetadataSchema = z.pick(TaskRecordSchema, { bucket: true, key: true, versionId: true, eTag: true, sequencer: true, size: true, frameCount: true });

export type CallbackOutcome =
  | { kind: 'applied' | 'stale'; uniqueId: string; taskId: string; status: ScaleTaskStatus; archiveKey: string }
  | { kind: 'invalid'; message: string };

/** A callback as stored by API Gateway before anything else happened: its bytes, where, and when it arrived. */
export interface StoredCallback {
  uniqueId: string;
  rawBody: string;
  archive: { bucket: string; key: string };
  /** When API Gateway stored it (ISO): breaks ties between callbacks of equal time and status. */
  arrivedAt: string;
}

export interface ApplyCallbackDeps {
  store: TaskStore;
  /** Copies the result files a completed response references (see result-files.ts); throws what should be retried. */
  copyResultFiles?: (uniqueId: string, urls: string[], version: string) => Promise<ResultFile[]>;
  now?: () => Date;
  inlineLimitBytes?: number;
}

/**
 * Among callbacks with the same `updated_at`, which state wins: a recall ('pending' again) only ever follows a
 * completion, and a cancel ends the task. Documented in the README.
 */
const STATUS_RANK: Record<ScaleTaskStatus, number> = { completed: 1, error: 2, pending: 3, canceled: 4 };

/**
 * The order of a callback's state: the task's own time, then the status rank, then arrival, then the stored key.
 * Strings compare in that order (ISO times have a fixed width).
 */
export function callbackOrderKey(scaleUpdatedAt: string, status: ScaleTaskStatus, arrivedAt: string, key: string, audits = 0): string {
  return `${callbackStateKey(scaleUpdatedAt, status, audits)}#${arrivedAt}#${key}`;
}

/** The part of the order Scale decides — time, status rank, audits — and so a prefix of the order key. */
export function callbackStateKey(scaleUpdatedAt: string, status: ScaleTaskStatus, audits: number): string {
  // More audits is later in a task's life (an audit does not always move updated_at); fixed width to compare.
  return `${scaleUpdatedAt}#${STATUS_RANK[status]}#${String(Math.min(audits, 999_999)).padStart(6, '0')}`;
}

const isoTime = (value: string | null | undefined): string | undefined => {
  if (!value) return undefined;
  const time = Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
};

/**
 * Validates a stored (authenticated) callback and applies it to the upload's record if its state is newer than
 * what the record holds; an exact duplicate changes nothing. Storage failures are thrown (the message is retried).
 */
export async function applyCallback(stored: StoredCallback, deps: ApplyCallbackDeps): Promise<CallbackOutcome> {
  const { uniqueId, rawBody, archive } = stored;
  let json: unknown;
  try {
    json = JSON.parse(rawBody);
  } catch {
    return { kind: 'invalid', message: 'body is not valid JSON' };
  }
  const parsed = checkAgainst(CallbackBodySchema, json);
  if (!parsed.ok) return { kind: 'invalid', message: `body is not a Scale callback: ${summarizeProblems(parsed.problems)}` };
  const body = parsed.value;
  const { task } = body;
  if (task.task_id !== body.task_id) return { kind: 'invalid', message: `task_id ${body.task_id} differs from task.task_id ${task.task_id}` };
  const status = (task.status || body.status) as ScaleTaskStatus;
  if (!SCALE_TASK_STATUSES.includes(status)) {
    return { kind: 'invalid', message: `unknown task status ${quote(status)} (expected ${SCALE_TASK_STATUSES.join(', ')})` };
  }
  const scaleUpdatedAt = isoTime(task.updated_at) ?? isoTime(task.completed_at) ?? isoTime(task.created_at);
  if (!scaleUpdatedAt) return { kind: 'invalid', message: 'task has no readable updated_at, completed_at or created_at to order it by' };

  const receivedAt = (deps.now?.() ?? new Date()).toISOString();

  const response = body.response ?? task.response;
  const responseJson = response === undefined ? undefined : serialize(response);
  // A response too deep to serialize again stays where it was stored, like a large one.
  const inline = typeof responseJson === 'string' && Buffer.byteLength(responseJson, 'utf8') <= (deps.inlineLimitBytes ?? INLINE_RESPONSE_LIMIT_BYTES);
  const source = checkAgainst(SourceMetadataSchema, (task.metadata as { source?: unknown } | null | undefined)?.source);
  const sceneFormat = task.params?.scene_format === 'split_base64' ? 'split_base64' : 'sensor_fusion';

  const digest = createHash('sha256').update(rawBody).digest('hex');
  const urls = status === 'completed' && deps.copyResultFiles ? findResultFileUrls(response) : [];
  // Named by this callback's body: copies for another callback (older, newer, stale) never overwrite these.
  const resultFiles = urls.length > 0 ? await deps.copyResultFiles!(uniqueId, urls, digest.slice(0, 16)) : undefined;
  const update: CallbackUpdate = {
    uniqueId,
    taskId: task.task_id,
    status,
    scaleUpdatedAt,
    order: callbackOrderKey(scaleUpdatedAt, status, stored.arrivedAt, archive.key, Array.isArray(task.audits) ? task.audits.length : 0),
    digest,
    ...(status === 'completed' ? { completedAt: isoTime(task.completed_at) ?? scaleUpdatedAt } : {}),
    ...(responseJson === undefined ? {} : inline ? { responseJson } : { responseRef: archive }),
    archive,
    ...(resultFiles ? { resultFiles } : {}),
    source: source.ok
      ? { ...source.value, sceneFormat, ...(typeof task.project === 'string' ? { project: task.project } : {}) }
      : { bucket: '(unknown: task metadata has no source)', key: '(unknown)', sceneFormat },
  };
  const applied = await deps.store.applyCallback(update, receivedAt);
  return { kind: applied, uniqueId, taskId: task.task_id, status, archiveKey: archive.key };
}

/** JSON text of a parsed response, or null when it is nested too deeply to write out again. */
function serialize(response: unknown): string | null {
  try {
    return JSON.stringify(response);
  } catch (err) {
    if (err instanceof RangeError) return null;
    throw err;
  }
}
