import type { SimulatorConfig } from './config.js';
import type { TaskCreationRequest } from './rules.js';
import { attemptSignal, describeFetchError, downloadAttachment, isLoopbackUrl, type DownloadOutcome, type SceneFacts } from './downloads.js';

export type { DownloadOutcome } from './downloads.js';

export interface CallbackAttempt {
  at: string;
  statusCode?: number;
  error?: string;
}

export interface CallbackDelivery {
  /** What this callback reports: the task's status at the time, or 'audit'. */
  kind: 'completed' | 'error' | 'audit' | 'recall' | 'duplicate';
  status: string;
  attempts: CallbackAttempt[];
  succeeded: boolean;
  /** Never sent (dropCallbacks): Scale gave up on it, and the receiver hears nothing of this state. */
  dropped?: true;
}

export interface SimTask {
  task_id: string;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  callback_url: string | null;
  callback_succeeded: boolean | null;
  type: 'multistage';
  status: 'pending' | 'completed' | 'error' | 'canceled';
  instruction: string | null;
  is_test: boolean;
  project: string;
  batch?: string;
  params: Record<string, unknown>;
  response?: unknown;
  metadata: Record<string, unknown>;
  unique_id?: string;
  tags: string[];
  audits: unknown[];
  priority?: number;
}

/** What the simulator keeps about a task beyond the task object itself. */
export interface TaskRecord {
  task: SimTask;
  downloads: DownloadOutcome[];
  callbacks: CallbackDelivery[];
  /** True once the simulator has nothing more to do for this task (downloads, waits and callbacks are over). */
  settled: boolean;
  /** Result files of a completed task, by name: served at GET /results/<task_id>/<name>, as Scale's results bucket does. */
  resultFiles?: Record<string, Buffer>;
}

export interface LifecycleContext {
  config: () => SimulatorConfig;
  callbackAuthKey: string;
  now: () => string;
  /** Ends this task's work early: the simulator is closing, or the task was canceled. */
  signal: AbortSignal;
  /** Waits, or returns early once `signal` fires. */
  sleep: (ms: number) => Promise<void>;
  /** Whether the next callback is dropped (dropCallbacks, decided by the simulator's seeded random). */
  dropCallback: () => boolean;
  /** Where a result file of a task is served. */
  resultFileUrl: (taskId: string, name: string) => string;
}

export function newTask(request: TaskCreationRequest, taskId: string, now: string, isTest: boolean): SimTask {
  return {
    task_id: taskId,
    created_at: now,
    updated_at: now,
    completed_at: null,
    callback_url: request.callback_url ?? null,
    callback_succeeded: null,
    type: 'multistage',
    status: 'pending',
    instruction: request.instruction ?? null,
    is_test: isTest,
    project: request.project,
    ...(request.batch ? { batch: request.batch } : {}),
    params: { attachments: request.attachments, scene_format: request.scene_format, ...(request.task_blueprint_id ? { task_blueprint_id: request.task_blueprint_id } : {}) },
    metadata: request.metadata ?? {},
    ...(request.unique_id ? { unique_id: request.unique_id } : {}),
    tags: request.tags ?? [],
    audits: [],
    ...(request.priority ? { priority: request.priority } : {}),
  };
}

/**
 * What Scale does after creation: wait in the queue, download every attachment, then either fail the task (error +
 * callback) or complete it after a delay and call back, with the duplicates, audits and recalls the config asks for.
 */
export async function runTask(record: TaskRecord, ctx: LifecycleContext): Promise<void> {
  const { task } = record;
  const attachments = task.params.attachments as string[];
  const format = task.params.scene_format as string;
  const facts: SceneFacts = { frames: 0, sensors: 0, bytes: 0 };
  const failures: Array<{ statusCode: number; url: string }> = [];
  let unreadable: string | undefined;

  const startDelayMs = ctx.config().startDelayMs;
  if (startDelayMs > 0) await ctx.sleep(startDelayMs);
  for (const url of attachments) {
    if (ctx.signal.aborted) break;
    const config = ctx.config();
    if (config.failNextDownloads > 0) {
      config.failNextDownloads--;
      record.downloads.push({ url, statusCode: 403 });
      failures.push({ statusCode: 403, url });
      continue;
    }
    const outcome = await downloadAttachment(url, format, facts, { signal: ctx.signal, timeoutMs: config.downloadTimeoutMs });
    record.downloads.push(outcome.download);
    // A download that broke off after its status line (timeout, reset) failed too, whatever the status said.
    if (outcome.download.error !== undefined) failures.push({ statusCode: outcome.download.statusCode ?? 0, url });
    else if (outcome.download.statusCode !== undefined && (outcome.download.statusCode < 200 || outcome.download.statusCode > 299)) failures.push({ statusCode: outcome.download.statusCode, url });
    else if (outcome.unreadable && !unreadable) unreadable = outcome.unreadable;
  }
  if (ctx.signal.aborted || task.status === 'canceled') return;

  if (failures.length > 0 || unreadable) {
    task.status = 'error';
    task.updated_at = ctx.now();
    task.response =
      failures.length > 0 ? { error: 'One or more attachments could not be downloaded.', attachments: failures } : { error: `The scene could not be read: ${unreadable}` };
    await deliver(record, 'error', ctx);
    return;
  }

  await ctx.sleep(ctx.config().completionDelayMs);
  if (ctx.signal.aborted || task.status !== 'pending') return;
  task.status = 'completed';
  const completedAt = ctx.now();
  task.completed_at = task.updated_at = completedAt;
  // Like Scale's lidar work: the annotations are a file the response points at.
  const cuboids = Array.from({ length: facts.frames * 3 }, (_, i) => ({ id: i, frame: Math.floor(i / 3), label: 'car' }));
  record.resultFiles = { 'annotations.json': Buffer.from(JSON.stringify({ task_id: task.task_id, cuboids })) };
  const config = ctx.config();
  task.response = {
    annotations: { url: ctx.resultFileUrl(task.task_id, 'annotations.json'), cuboids: facts.frames * 3, sensors_labeled: facts.sensors },
    frames: facts.frames,
    bytes_read: facts.bytes,
    // A response as large as a dense scene's inline labels: the receiver keeps it by reference, not in its table.
    ...(config.responsePaddingBytes > 0 ? { padding: 'x'.repeat(config.responsePaddingBytes) } : {}),
  };

  // With equalTimestamps the audit or recall carries the completion's very updated_at: a receiver ordering
  // callbacks by updated_at meets a tie between two different bodies and must break it deterministically.
  const laterEvent = () => (config.equalTimestamps ? completedAt : ctx.now());
  if (config.auditBeforeCompletion) {
    // The audit is newer than the completion (or as new) but reaches the receiver first.
    const completed = snapshot(task);
    const auditTime = laterEvent();
    task.audits = [{ action: 'approved', audited_by: 'simulator@scale.local', audit_time: auditTime }];
    task.updated_at = auditTime;
    await deliver(record, 'audit', ctx);
    await deliver(record, 'completed', ctx, completed);
  } else {
    await deliver(record, 'completed', ctx);
  }
  if (config.duplicateCallbacks) await deliver(record, 'duplicate', ctx);
  if (config.recallAfterCompletion && !ctx.signal.aborted) {
    task.status = 'pending';
    task.completed_at = null;
    task.updated_at = laterEvent();
    delete task.response;
    await deliver(record, 'recall', ctx);
  }
}

/**
 * Scale's cancel rule: only a task whose work has not started (pending) can be canceled; a completed or errored
 * one is refused. Canceling a canceled task changes nothing and is not refused: Scale's own clients disagree
 * on whether a second cancel is an error, and answering it like the first makes a lost answer safe to repeat.
 * Returns why the cancel is refused, or undefined when the task is (now) canceled. Sends no callback: Scale
 * lists no cancel event; the caller stops the task's work.
 */
export function cancelTask(task: SimTask, now: () => string): string | undefined {
  if (task.status === 'completed' || task.status === 'error') {
    return `Task ${task.task_id} is ${task.status} and can no longer be canceled; only pending tasks can be.`;
  }
  if (task.status === 'pending') {
    task.status = 'canceled';
    task.updated_at = now();
  }
  return undefined;
}

function snapshot(task: SimTask): SimTask {
  return structuredClone(task);
}

/** POSTs one callback, retried on non-2xx with a short doubling backoff, up to callbackMaxAttempts. */
async function deliver(record: TaskRecord, kind: CallbackDelivery['kind'], ctx: LifecycleContext, asOf: SimTask = snapshot(record.task)): Promise<void> {
  if (!asOf.callback_url || !/^https?:/.test(asOf.callback_url)) return;
  if (!isLoopbackUrl(asOf.callback_url)) {
    record.callbacks.push({ kind, status: asOf.status, attempts: [{ at: ctx.now(), error: 'refused: the simulator only calls back loopback addresses' }], succeeded: false });
    return;
  }
  if (ctx.dropCallback()) {
    record.callbacks.push({ kind, status: asOf.status, attempts: [], succeeded: false, dropped: true });
    record.task.callback_succeeded = false;
    return;
  }
  const delivery: CallbackDelivery = { kind, status: asOf.status, attempts: [], succeeded: false };
  record.callbacks.push(delivery);
  const body = JSON.stringify({ task: asOf, response: asOf.response ?? {}, task_id: asOf.task_id, status: asOf.status });
  const config = ctx.config();
  for (let attempt = 1; attempt <= config.callbackMaxAttempts && !ctx.signal.aborted; attempt++) {
    const entry: CallbackAttempt = { at: ctx.now() };
    delivery.attempts.push(entry);
    const { signal, done } = attemptSignal(ctx.signal, config.callbackTimeoutMs);
    try {
      const response = await fetch(asOf.callback_url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'scale-callback-auth': ctx.callbackAuthKey },
        body,
        signal,
      });
      await response.body?.cancel();
      entry.statusCode = response.status;
      if (response.ok) {
        delivery.succeeded = true;
        break;
      }
    } catch (err) {
      entry.error = describeFetchError(err);
    } finally {
      done();
    }
    if (attempt < config.callbackMaxAttempts) await ctx.sleep(Math.min(2_000, config.callbackRetryDelayMs * 2 ** (attempt - 1)));
  }
  record.task.callback_succeeded = delivery.succeeded;
}
