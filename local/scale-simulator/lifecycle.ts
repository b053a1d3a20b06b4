import { readSfsHeader } from '../../lambdas/core/sfs/reader.js';
import type { CreateMultistageTaskRequest } from '../../lambdas/core/scale/schemas.js';
import type { SimulatorConfig } from './config.js';

export interface DownloadOutcome {
  url: string;
  statusCode?: number;
  bytes?: number;
  error?: string;
}

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
}

export interface LifecycleContext {
  config: () => SimulatorConfig;
  callbackAuthKey: string;
  now: () => string;
  signal: AbortSignal;
  sleep: (ms: number) => Promise<void>;
}

export function newTask(request: CreateMultistageTaskRequest, taskId: string, now: string, isTest: boolean): SimTask {
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
 * What Scale does after creation: download every attachment, then either fail the task (error + callback) or
 * complete it after a delay and call back, with the duplicates, audits and recalls the config asks for.
 */
export async function runTask(record: TaskRecord, ctx: LifecycleContext): Promise<void> {
  const { task } = record;
  const attachments = task.params.attachments as string[];
  const format = task.params.scene_format as string;
  const facts: SceneFacts = { frames: 0, sensors: 0, bytes: 0 };
  const failures: Array<{ statusCode: number; url: string }> = [];
  let unreadable: string | undefined;

  for (const url of attachments) {
    const outcome = await download(url, format, ctx, facts);
    record.downloads.push(outcome.download);
    if (outcome.download.error !== undefined && outcome.download.statusCode === undefined) failures.push({ statusCode: 0, url });
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
  task.completed_at = task.updated_at = ctx.now();
  task.response = { annotations: { cuboids: facts.frames * 3, sensors_labeled: facts.sensors }, frames: facts.frames, bytes_read: facts.bytes };
  const config = ctx.config();

  if (config.auditBeforeCompletion) {
    // The audit is newer than the completion but reaches the receiver first.
    const completed = snapshot(task);
    task.audits = [{ action: 'approved', audited_by: 'simulator@scale.local', audit_time: ctx.now() }];
    task.updated_at = (task.audits[0] as { audit_time: string }).audit_time;
    await deliver(record, 'audit', ctx);
    await deliver(record, 'completed', ctx, completed);
  } else {
    await deliver(record, 'completed', ctx);
  }
  if (config.duplicateCallbacks) await deliver(record, 'duplicate', ctx);
  if (config.recallAfterCompletion && !ctx.signal.aborted) {
    task.status = 'pending';
    task.completed_at = null;
    task.updated_at = ctx.now();
    delete task.response;
    await deliver(record, 'recall', ctx);
  }
}

interface SceneFacts {
  frames: number;
  sensors: number;
  bytes: number;
}

async function download(url: string, format: string, ctx: LifecycleContext, facts: SceneFacts): Promise<{ download: DownloadOutcome; unreadable?: string }> {
  const { signal, done } = attemptSignal(ctx.signal, ctx.config().downloadTimeoutMs);
  try {
    return await downloadWith(url, format, signal, facts);
  } finally {
    done();
  }
}

/** A signal that fires on shutdown or after `timeoutMs`; `done` detaches it from the shutdown signal. */
function attemptSignal(shutdown: AbortSignal, timeoutMs: number): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const onShutdown = () => controller.abort(shutdown.reason);
  shutdown.addEventListener('abort', onShutdown, { once: true });
  const timer = setTimeout(() => controller.abort(new DOMException('timed out', 'TimeoutError')), timeoutMs);
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      shutdown.removeEventListener('abort', onShutdown);
    },
  };
}

/** The simulator only ever reaches this machine: a test or demo can never make it call out. */
export function isLoopbackUrl(url: string): boolean {
  try {
    const { hostname } = new URL(url);
    return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
  } catch {
    return false;
  }
}

async function downloadWith(url: string, format: string, signal: AbortSignal, facts: SceneFacts): Promise<{ download: DownloadOutcome; unreadable?: string }> {
  if (!isLoopbackUrl(url)) return { download: { url, error: 'refused: the simulator only downloads from loopback addresses' } };
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (err) {
    return { download: { url, error: describeFetchError(err) } };
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    return { download: { url, statusCode: response.status } };
  }
  const counted = countingIterator(response.body);
  try {
    let unreadable: string | undefined;
    if (format === 'sensor_fusion') {
      const size = Number(response.headers.get('content-length') ?? NaN);
      try {
        const info = await readSfsHeader(counted.view, Number.isFinite(size) ? { fileSize: size } : {});
        facts.sensors += info.header.sensors.length;
        facts.frames += Math.max(0, ...info.header.sensors.map((s) => (Array.isArray(s.frames) ? s.frames.length : 0)));
      } catch (err) {
        unreadable = (err as Error).message;
      }
      await counted.drain();
    } else {
      unreadable = checkLidarFrame(await counted.text());
      facts.frames += 1;
    }
    facts.bytes += counted.bytes();
    return { download: { url, statusCode: response.status, bytes: counted.bytes() }, unreadable };
  } catch (err) {
    return { download: { url, statusCode: response.status, error: describeFetchError(err) } };
  }
}

/** The frame schema for split_base64 is not public: check only what is certain (a JSON object with points). */
function checkLidarFrame(text: string): string | undefined {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return 'a LiDAR frame is not valid JSON';
  }
  if (frame === null || typeof frame !== 'object' || !Array.isArray((frame as { points?: unknown }).points)) {
    return 'a LiDAR frame is not a JSON object with a points array';
  }
  return undefined;
}

/** Lets the header reader stop early while the download itself goes on to the end, counting bytes. */
function countingIterator(body: ReadableStream<Uint8Array>) {
  const iterator = body[Symbol.asyncIterator]();
  let bytes = 0;
  const chunks: Uint8Array[] = [];
  let keep = false;
  const next = async () => {
    const result = await iterator.next();
    if (!result.done) {
      bytes += result.value.length;
      if (keep) chunks.push(result.value);
    }
    return result;
  };
  const view: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => ({ next, return: async () => ({ done: true as const, value: undefined }) }) };
  return {
    view,
    bytes: () => bytes,
    drain: async () => {
      while (!(await next()).done);
    },
    text: async () => {
      keep = true;
      while (!(await next()).done);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

function describeFetchError(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timed out';
  const cause = err instanceof Error ? (err.cause as { code?: string } | undefined) : undefined;
  return cause?.code ?? (err instanceof Error ? err.message : String(err));
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
