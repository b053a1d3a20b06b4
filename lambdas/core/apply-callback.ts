import * as z from 'zod/mini';
import { checkAgainst } from './validation.js';
import { ScaleTaskSchema } from './scale/schemas.js';
import { secretsEqual, verifyCallbackRef } from './scene-identity.js';
import { SCALE_TASK_STATUSES, TaskRecordSchema, type ScaleTaskStatus } from './task-record.js';
import type { CallbackUpdate, TaskStore } from './task-store.js';

/** Raw callback bodies are archived under this prefix of the results bucket. */
export const CALLBACK_ARCHIVE_PREFIX = 'callbacks/';

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

/** Where raw callback bodies are kept: the history that makes every overwrite recoverable. */
export interface CallbackArchive {
  put(key: string, body: string): Promise<{ bucket: string; key: string }>;
}

export interface CallbackKeys {
  /** Scale's account-wide callback auth key, sent in the scale-callback-auth header. */
  authKey: string;
  /** This stack's key for the per-task signature in the callback URL. */
  signingKey: string;
}

export type Authentication = { ok: true; uniqueId: string } | { ok: false; reason: string };

/** Both checks, before anything is parsed or stored: Scale's header, and the signature this stack put in the URL. */
export function authenticateCallback(authHeader: string | undefined, ref: string | undefined, sig: string | undefined, keys: CallbackKeys): Authentication {
  if (!secretsEqual(authHeader, keys.authKey)) return { ok: false, reason: 'missing or wrong scale-callback-auth header' };
  if (!ref || !sig) return { ok: false, reason: 'callback URL lacks its ref and sig parameters' };
  if (!verifyCallbackRef(ref, sig, keys.signingKey)) return { ok: false, reason: 'callback URL signature does not match its ref' };
  return { ok: true, uniqueId: ref };
}

export type CallbackOutcome =
  | { kind: 'applied' | 'stale'; uniqueId: string; taskId: string; status: ScaleTaskStatus; archiveKey: string }
  | { kind: 'invalid'; message: string };

export interface ApplyCallbackDeps {
  store: TaskStore;
  archive: CallbackArchive;
  now?: () => Date;
  inlineLimitBytes?: number;
}

const isoTime = (value: string | null | undefined): string | undefined => {
  if (!value) return undefined;
  const time = Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
};

/**
 * Validates an authenticated callback, archives it, and applies it to the upload's record if it is newer than
 * what the record holds. Storage failures are thrown (the caller answers 5xx and Scale retries).
 */
export async function applyCallback(uniqueId: string, rawBody: string, deps: ApplyCallbackDeps): Promise<CallbackOutcome> {
  let json: unknown;
  try {
    json = JSON.parse(rawBody);
  } catch {
    return { kind: 'invalid', message: 'body is not valid JSON' };
  }
  const parsed = checkAgainst(CallbackBodySchema, json);
  if (!parsed.ok) return { kind: 'invalid', message: `body is not a Scale callback: ${parsed.problems.join('; ')}` };
  const body = parsed.value;
  const { task } = body;
  if (task.task_id !== body.task_id) return { kind: 'invalid', message: `task_id ${body.task_id} differs from task.task_id ${task.task_id}` };
  const status = (task.status || body.status) as ScaleTaskStatus;
  if (!SCALE_TASK_STATUSES.includes(status)) {
    return { kind: 'invalid', message: `unknown task status ${JSON.stringify(status)} (expected ${SCALE_TASK_STATUSES.join(', ')})` };
  }
  const scaleUpdatedAt = isoTime(task.updated_at) ?? isoTime(task.completed_at) ?? isoTime(task.created_at);
  if (!scaleUpdatedAt) return { kind: 'invalid', message: 'task has no readable updated_at, completed_at or created_at to order it by' };

  const receivedAt = (deps.now?.() ?? new Date()).toISOString();
  const archive = await deps.archive.put(`${CALLBACK_ARCHIVE_PREFIX}${uniqueId}/${receivedAt}-${status}.json`, rawBody);

  const response = body.response ?? task.response;
  const responseJson = response === undefined ? undefined : JSON.stringify(response);
  const inline = responseJson !== undefined && Buffer.byteLength(responseJson, 'utf8') <= (deps.inlineLimitBytes ?? INLINE_RESPONSE_LIMIT_BYTES);
  const source = checkAgainst(SourceMetadataSchema, (task.metadata as { source?: unknown } | null | undefined)?.source);
  const sceneFormat = task.params?.scene_format === 'split_base64' ? 'split_base64' : 'sensor_fusion';

  const update: CallbackUpdate = {
    uniqueId,
    taskId: task.task_id,
    status,
    scaleUpdatedAt,
    ...(status === 'completed' ? { completedAt: isoTime(task.completed_at) ?? scaleUpdatedAt } : {}),
    ...(responseJson === undefined ? {} : inline ? { responseJson } : { responseRef: archive }),
    archive,
    source: source.ok
      ? { ...source.value, sceneFormat, ...(typeof task.project === 'string' ? { project: task.project } : {}) }
      : { bucket: '(unknown: task metadata has no source)', key: '(unknown)', sceneFormat },
  };
  const applied = await deps.store.applyCallback(update, receivedAt);
  return { kind: applied, uniqueId, taskId: task.task_id, status, archiveKey: archive.key };
}
