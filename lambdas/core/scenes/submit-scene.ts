import { randomUUID } from 'node:crypto';
import type { Routing } from '../shared/config.js';
import { routeFor } from './routing.js';
import { cancelOpenTask, type CancelOutcome } from './cancel-on-delete.js';
import type { CreatedTask } from '../scale/client.js';
import { ScaleApiError, ScaleRequestInvalidError } from '../scale/errors.js';
import type { CreateMultistageTaskRequest, ScaleTask } from '../scale/schemas.js';
import { checkSceneContent, sceneFormatOf } from './scene-content.js';
import { callbackUrlFor, isRealVersionId, sceneUniqueId } from './scene-identity.js';
import type { ObjectHead, SceneObjects } from './scene-objects.js';
import type { UploadEvent } from './s3-event.js';
import { isScaleAuthFailure } from '../shared/failures.js';
import type { TaskStatus } from '../tasks/task-record.js';
import type { SceneSource, TaskStore } from '../tasks/task-store.js';
import { boundText, clip } from '../shared/validation.js';

export interface SubmitDeps {
  objects: SceneObjects;
  store: TaskStore;
  scale: {
    createMultistageTask(request: CreateMultistageTaskRequest): Promise<CreatedTask>;
    findTaskByUniqueId(uniqueId: string): Promise<ScaleTask | undefined>;
    cancelTask(taskId: string): Promise<ScaleTask>;
  };
  routing: Routing;
  callbackBaseUrl: string;
  signingKey: string;
  /** This delivery's claim on the upload (a fresh one by default). */
  claimId?: string;
  now?: () => Date;
}

export type SubmitOutcome =
  | { kind: 'submitted'; uniqueId: string; taskId: string; adopted: boolean }
  | { kind: 'rejected'; uniqueId: string; reason: string }
  | { kind: 'create_failed'; uniqueId: string; scaleStatus?: number; scaleMessage: string }
  | { kind: 'skipped'; uniqueId: string; status: TaskStatus }
  | CancelOutcome;

/** What the record keeps of an upload, from its S3 event alone (never from a later HEAD, which may see a newer one). */
export function sceneSourceOf(upload: UploadEvent, routing: Routing): SceneSource {
  return {
    uniqueId: sceneUniqueId(upload),
    bucket: upload.bucket,
    key: upload.key,
    versionId: upload.versionId,
    eTag: upload.eTag,
    sequencer: upload.sequencer,
    size: upload.size,
    sceneFormat: sceneFormatOf(upload.key, routing),
  };
}

/**
 * Turns one upload (an .sfs scene or a frame manifest) into at most one Scale task. Permanent problems (deleted
 * or replaced before processing, empty or invalid scene, bad manifest; Scale refusing the task) are recorded and
 * returned; everything that may heal (AWS errors, Scale 401/403/408/429/5xx, timeouts) is thrown so the queue
 * delivers the message again.
 */
export async function submitScene(upload: UploadEvent, deps: SubmitDeps): Promise<SubmitOutcome> {
  const now = () => (deps.now?.() ?? new Date()).toISOString();
  const source = sceneSourceOf(upload, deps.routing);
  const { uniqueId } = source;
  const settings = routeFor(upload.key, deps.routing);

  // Claim first: a repeated delivery costs one conditional write, and only this claim may end the upload.
  const claimId = deps.claimId ?? randomUUID();
  const started = await deps.store.startSubmission({ ...source, project: settings.project, batch: settings.batch, route: settings.route }, claimId, now());
  if (typeof started === 'object') {
    // A task created over a rejection whose cancel failed (Scale's rate limit, a blip): this delivery cancels it.
    if (started.owedCancel) return cancelOpenTask(uniqueId, started.owedCancel.taskId, overRejectionReason(started.owedCancel.reason), deps);
    return { kind: 'skipped', uniqueId, status: started.alreadyAt };
  }
  const reject = async (reason: string): Promise<SubmitOutcome> => {
    const bounded = boundText(reason);
    await deps.store.recordRejection(uniqueId, claimId, bounded, now());
    return { kind: 'rejected', uniqueId, reason: bounded };
  };

  // Deletes win: only the object's current version is sent, so a delete marker or a newer upload stops this one.
  const current = await deps.objects.head({ bucket: upload.bucket, key: upload.key });
  const gone = async (why: string): Promise<SubmitOutcome> => {
    // An earlier delivery may have created the task and lost the answer: deletes win, so that task is canceled.
    const earlier = started === 'resumed' ? await deps.scale.findTaskByUniqueId(uniqueId) : undefined;
    if (!earlier) return reject(why);
    await deps.store.recordSubmitted(uniqueId, { taskId: earlier.task_id, attachmentPinned: isRealVersionId(upload.versionId), adopted: true }, now());
    return cancelOpenTask(uniqueId, earlier.task_id, `${why}; the task an earlier delivery had created was canceled at Scale`, deps);
  };
  if (!current.exists) return gone('the object was deleted before it was processed (its current version is a delete marker, or it is gone)');
  const superseded = supersededBy(upload, current);
  if (superseded) return gone(superseded);
  if (current.size === 0) return reject('the object is empty (0 bytes)');

  const pinned = isRealVersionId(upload.versionId);
  const ref = { bucket: upload.bucket, key: upload.key, ...(pinned ? { versionId: upload.versionId } : {}), ...(upload.eTag ? { eTag: upload.eTag } : {}) };
  const content = await checkSceneContent(ref, source.sceneFormat, current, deps.objects, deps.routing);
  if (!content.ok) return reject(content.reason);

  const presigned = await Promise.all(content.attachments.map((attachment) => deps.objects.presign(attachment, deps.routing.presignExpiresSeconds)));
  // Known only if every URL's end is known; Scale copies the attachments at creation, so this rarely matters.
  const ends = presigned.map((p) => p.expiresAt?.getTime());
  const attachmentExpiresAt = ends.every((t) => t !== undefined) ? new Date(Math.min(...ends)).toISOString() : undefined;
  const request: CreateMultistageTaskRequest = {
    project: settings.project,
    ...(settings.batch ? { batch: settings.batch } : {}),
    ...(settings.instruction ? { instruction: settings.instruction } : {}),
    ...(settings.taskBlueprintId ? { task_blueprint_id: settings.taskBlueprintId } : {}),
    ...(settings.priority ? { priority: settings.priority } : {}),
    ...(settings.tags?.length ? { tags: settings.tags } : {}),
    attachments: presigned.map((p) => p.url),
    scene_format: content.sceneFormat,
    unique_id: uniqueId,
    callback_url: callbackUrlFor(deps.callbackBaseUrl, uniqueId, deps.signingKey),
    clear_unique_id_on_error: deps.routing.clearUniqueIdOnError,
    metadata: { source: { bucket: ref.bucket, key: ref.key, versionId: upload.versionId, eTag: upload.eTag, sequencer: upload.sequencer, size: current.size, frameCount: content.frameCount } },
  };

  let created: CreatedTask;
  try {
    created = await deps.scale.createMultistageTask(request);
  } catch (err) {
    // A refused key is configuration, not this upload's fault: thrown, so the upload waits for the fix.
    const permanent = err instanceof ScaleRequestInvalidError || (err instanceof ScaleApiError && !err.retryable && !isScaleAuthFailure(err));
    if (!permanent) throw err;
    const error = err instanceof ScaleApiError ? { status: err.status, message: boundText(err.scaleMessage ?? err.message) } : { message: boundText(err.message) };
    await deps.store.recordCreateFailure(uniqueId, claimId, error, now());
    return { kind: 'create_failed', uniqueId, scaleStatus: error.status, scaleMessage: error.message };
  }
  const attachmentPinned = pinned && content.attachments.every((a) => isRealVersionId(a.versionId));
  const submitted = { taskId: created.task.task_id, attachmentExpiresAt, attachmentPinned, adopted: created.adopted, frameCount: content.frameCount };
  const recorded = await deps.store.recordSubmitted(uniqueId, submitted, now());
  if (typeof recorded === 'object') {
    // Another delivery rejected the upload (deleted or replaced) while this one was creating its task.
    return cancelOpenTask(uniqueId, created.task.task_id, overRejectionReason(recorded.overRejection), deps);
  }
  return { kind: 'submitted', uniqueId, taskId: created.task.task_id, adopted: created.adopted };
}

function overRejectionReason(rejection: string): string {
  return boundText(`${rejection}; the task created meanwhile was canceled at Scale`);
}

/** Why this upload is no longer the object's current content, or undefined while it is. */
function supersededBy(upload: UploadEvent, current: Extract<ObjectHead, { exists: true }>): string | undefined {
  if (isRealVersionId(upload.versionId)) {
    if (current.versionId === upload.versionId) return undefined;
    return `a newer version (${clip(current.versionId ?? 'unknown', 80)}) replaced this one before it was processed (the newer upload gets its own task)`;
  }
  // No real version: the content is what identifies it.
  if (upload.eTag && current.eTag && current.eTag !== upload.eTag) return 'the object was overwritten before it was processed (the newer upload gets its own task)';
  return undefined;
}
