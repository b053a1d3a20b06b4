import type { Routing } from './config.js';
import { routeFor } from './routing.js';
import type { CreatedTask } from './scale/client.js';
import { ScaleApiError, ScaleRequestInvalidError } from './scale/errors.js';
import type { CreateMultistageTaskRequest } from './scale/schemas.js';
import { checkSceneContent, sceneFormatOf } from './scene-content.js';
import { callbackUrlFor, sceneUniqueId } from './scene-identity.js';
import type { SceneObjects } from './scene-objects.js';
import type { UploadEvent } from './s3-event.js';
import type { TaskStatus } from './task-record.js';
import type { SceneSource, TaskStore } from './task-store.js';

export interface SubmitDeps {
  objects: SceneObjects;
  store: TaskStore;
  scale: { createMultistageTask(request: CreateMultistageTaskRequest): Promise<CreatedTask> };
  routing: Routing;
  callbackBaseUrl: string;
  signingKey: string;
  now?: () => Date;
}

export type SubmitOutcome =
  | { kind: 'submitted'; uniqueId: string; taskId: string; adopted: boolean }
  | { kind: 'rejected'; uniqueId: string; reason: string }
  | { kind: 'create_failed'; uniqueId: string; message: string }
  | { kind: 'skipped'; uniqueId: string; status: TaskStatus };

/**
 * Turns one upload (an .sfs scene or a frame manifest) into at most one Scale task. Permanent problems
 * (vanished, empty or invalid scene, missing frames; Scale refusing the task) are recorded and returned;
 * transient ones (AWS errors, Scale 429/5xx/timeouts) are thrown so the queue delivers the message again.
 */
export async function submitScene(upload: UploadEvent, deps: SubmitDeps): Promise<SubmitOutcome> {
  const now = () => (deps.now?.() ?? new Date()).toISOString();
  const head = await deps.objects.head(upload);
  const ref = {
    bucket: upload.bucket,
    key: upload.key,
    versionId: upload.versionId ?? (head.exists ? head.versionId : undefined),
    eTag: upload.eTag ?? (head.exists ? head.eTag : undefined),
  };
  const uniqueId = sceneUniqueId(ref);
  const sceneFormat = sceneFormatOf(upload.key, deps.routing);
  const source: SceneSource = { uniqueId, ...ref, size: head.exists ? head.size : upload.size, sceneFormat };
  const reject = async (reason: string): Promise<SubmitOutcome> => {
    await deps.store.recordRejection(source, reason, now());
    return { kind: 'rejected', uniqueId, reason };
  };

  if (!head.exists) return reject('the object no longer exists (deleted before it was processed)');
  if (!upload.versionId && upload.eTag && head.eTag && head.eTag !== upload.eTag) {
    return reject('the object was overwritten before it was processed; the newer upload is processed on its own');
  }
  if (head.size === 0) return reject('the object is empty (0 bytes)');

  // Claim the upload before reading its content, so a repeated delivery costs one conditional write, not a
  // header read (or a HEAD per frame).
  const settings = routeFor(upload.key, deps.routing);
  const started = await deps.store.startSubmission({ ...source, project: settings.project, batch: settings.batch, route: settings.route }, now());
  if (started !== 'started') return { kind: 'skipped', uniqueId, status: started.alreadyAt };
  const content = await checkSceneContent(ref, sceneFormat, head, deps.objects, deps.routing);
  if (!content.ok) return reject(content.reason);

  const presigned = await Promise.all(content.attachments.map((attachment) => deps.objects.presign(attachment, deps.routing.presignExpiresSeconds)));
  const attachmentExpiresAt = new Date(Math.min(...presigned.map((p) => p.expiresAt.getTime())));
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
    metadata: { source: { bucket: ref.bucket, key: ref.key, versionId: ref.versionId, eTag: ref.eTag, size: head.size, frameCount: content.frameCount } },
  };

  let created: CreatedTask;
  try {
    created = await deps.scale.createMultistageTask(request);
  } catch (err) {
    const permanent = err instanceof ScaleRequestInvalidError || (err instanceof ScaleApiError && !err.retryable);
    if (!permanent) throw err;
    const error = err instanceof ScaleApiError ? { status: err.status, message: err.scaleMessage ?? err.message } : { message: err.message };
    await deps.store.recordCreateFailure(uniqueId, error, now());
    return { kind: 'create_failed', uniqueId, message: error.message };
  }
  const submitted = { taskId: created.task.task_id, attachmentExpiresAt: attachmentExpiresAt.toISOString(), adopted: created.adopted, frameCount: content.frameCount };
  await deps.store.recordSubmitted(uniqueId, submitted, now());
  return { kind: 'submitted', uniqueId, taskId: created.task.task_id, adopted: created.adopted };
}
