import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mulberry32 } from '../random.js';
import { echoCredentials, SimulatorConfigPatchSchema, SimulatorConfigSchema, type SimulatorConfig, type SimulatorConfigPatch } from './config.js';
import { cancelTask, newTask, runTask, type TaskRecord } from './lifecycle.js';
import { checkTaskCreation } from './rules.js';
import { listTasks } from './task-list.js';

export interface ScaleSimulatorOptions {
  apiKey: string;
  callbackAuthKey: string;
  /** Projects that exist for this key; creating a task in any other is a 400. */
  projects: string[];
  /** Batches that exist (each belongs to a project). */
  batches?: Array<{ name: string; project: string }>;
  config?: SimulatorConfigPatch;
}

export interface ScaleSimulator {
  /** Base URL of the API, with `/v1`: what a Scale client is given. */
  apiUrl: string;
  /** Origin of the server; the control surface is at `${origin}/_simulator/...` (also under `/v1`). */
  origin: string;
  configure(patch: SimulatorConfigPatch): SimulatorConfig;
  /** Replaces the projects that exist for this key, as when one is created (or deleted) at Scale while running. */
  setProjects(names: string[]): void;
  state(): SimulatorState;
  /** Resolves when no task is downloading, waiting or calling back. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface SimulatorState {
  config: SimulatorConfig;
  requests: { total: number; refused: number; rateLimited: number; injectedErrors: number; dropped: number };
  tasks: Array<TaskRecord & { unique_id?: string; status: string }>;
}

const MAX_BODY_BYTES = 1024 * 1024;

const WRONG_KEY = 'Please provide a valid API key (HTTP basic auth with the key as the user name).';
/**
 * What a key that was right until now gets once it is revoked or rotated (refuseApiKey). Scale documents 401
 * for "no valid API key" and nothing about 403 or the exact texts: these are the simulator's own words.
 */
const REFUSED_KEY: Record<401 | 403, string> = {
  401: WRONG_KEY,
  403: 'This API key is not allowed to make requests (revoked or disabled).',
};

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export async function startScaleSimulator(options: ScaleSimulatorOptions): Promise<ScaleSimulator> {
  let config = SimulatorConfigSchema.parse(options.config ?? {});
  let random = mulberry32(config.seed);
  let projects = [...options.projects];
  const records = new Map<string, TaskRecord>();
  const byUniqueId = new Map<string, string>();
  const counters = { total: 0, refused: 0, rateLimited: 0, injectedErrors: 0, dropped: 0 };
  const recentRequests: number[] = [];
  const background = new Set<Promise<void>>();
  /** Stops the work of a task still being worked on; gone once its work is over. */
  const workStoppers = new Map<string, AbortController>();
  const timers = new Set<NodeJS.Timeout>();
  const shutdown = new AbortController();
  let lastTime = 0;

  const now = () => {
    lastTime = Math.max(Date.now(), lastTime + 1); // strictly increasing, so updated_at orders events
    return new Date(lastTime).toISOString();
  };
  // Timers end early on close (or on a task's cancel); each removes its abort listener when it fires, so none pile up.
  const sleep = (ms: number, signal: AbortSignal = shutdown.signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const onAbort = () => (clearTimeout(timer), timers.delete(timer), resolve());
      const timer = setTimeout(() => {
        timers.delete(timer);
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      timers.add(timer);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  const expectedAuth = Buffer.from(`Basic ${Buffer.from(`${options.apiKey}:`).toString('base64')}`);

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof HttpError ? err.message : 'Internal simulator error';
      if (!(err instanceof HttpError)) console.error('scale simulator:', err);
      const body = { status_code: status, error: message };
      if (res.headersSent) res.destroy();
      else sendJson(res, status, config.echoAuthorization ? echoCredentials(body, req.headers.authorization) : body);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const path = url.pathname.replace(/^\/v1(?=\/_simulator\/)/, '');
    if (path.startsWith('/_simulator/')) return control(req, res, path);
    const resultFile = /^\/results\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && resultFile) {
      // Public result files, as in Scale's results bucket: no key needed.
      const body = records.get(decodeURIComponent(resultFile[1]!))?.resultFiles?.[decodeURIComponent(resultFile[2]!)];
      if (!body) throw new HttpError(404, `No such result file: ${url.pathname}`);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) }).end(body);
      return;
    }
    if (!url.pathname.startsWith('/v1/')) throw new HttpError(404, `No such route: ${req.method} ${url.pathname}`);
    const route = `${req.method} ${url.pathname.slice(3)}`;
    counters.total++;

    if (config.latencyMs > 0) await sleep(config.latencyMs);
    const presented = Buffer.from(req.headers.authorization ?? '');
    if (presented.length !== expectedAuth.length || !timingSafeEqual(presented, expectedAuth)) {
      throw new HttpError(401, WRONG_KEY);
    }
    if (config.refuseApiKey !== null) {
      // The right key, revoked or rotated at Scale: refused before anything else happens, like a wrong one.
      counters.refused++;
      throw new HttpError(config.refuseApiKey, REFUSED_KEY[config.refuseApiKey]);
    }
    if (rateLimited()) {
      counters.rateLimited++;
      if (config.rateLimit?.retryAfterSeconds !== null && config.rateLimit?.retryAfterSeconds !== undefined) {
        res.setHeader('retry-after', String(config.rateLimit.retryAfterSeconds));
      }
      throw new HttpError(429, 'Too many requests, please slow down.');
    }
    const inScope = config.faultScope === 'all' || route === 'POST /task/multistage';
    if (config.failNextRequests > 0 || (inScope && config.serverErrorRate > 0 && random() < config.serverErrorRate)) {
      if (config.failNextRequests > 0) config.failNextRequests--;
      counters.injectedErrors++;
      throw new HttpError(config.serverErrorStatus, 'Internal server error (simulated).');
    }
    const drop = config.dropNextRequests > 0 || (inScope && config.dropConnectionRate > 0 && random() < config.dropConnectionRate);
    if (config.dropNextRequests > 0) config.dropNextRequests--;

    const [status, body] = await api(req, url, route);
    if (drop) {
      // The request took effect, the answer never arrives in full.
      counters.dropped++;
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
      res.write(text.slice(0, Math.floor(text.length / 2)));
      res.socket?.destroy();
      return;
    }
    sendJson(res, status, body);
  }

  function rateLimited(): boolean {
    if (!config.rateLimit) return false;
    const t = Date.now();
    while (recentRequests.length > 0 && recentRequests[0]! <= t - 1000) recentRequests.shift();
    if (recentRequests.length >= config.rateLimit.requestsPerSecond) return true;
    recentRequests.push(t);
    return false;
  }

  async function api(req: IncomingMessage, url: URL, route: string): Promise<[number, unknown]> {
    if (route === 'POST /task/multistage') return createTask(await readJson(req));
    if (req.method === 'GET' && url.pathname === '/v1/tasks') {
      const listed = listTasks([...records.values()].map((r) => r.task), url.searchParams);
      if (!listed.ok) throw new HttpError(400, listed.error);
      return [200, listed.page];
    }
    const match = /^\/v1\/task\/([^/]+)(\/cancel)?$/.exec(url.pathname);
    const record = match ? records.get(decodeURIComponent(match[1]!)) : undefined;
    if (match && !record) throw new HttpError(404, `Task ${decodeURIComponent(match[1]!)} not found.`);
    if (record && req.method === 'GET' && !match![2]) return [200, record.task];
    if (record && req.method === 'POST' && match![2]) return [200, cancel(record, url.searchParams.get('clear_unique_id') === 'true')];
    throw new HttpError(404, `No such route: ${route}`);
  }

  function createTask(body: unknown): [number, unknown] {
    // Scale's body rules as the simulator writes them (rules.ts), not the product's schema.
    const checked = checkTaskCreation(body, { projects, batches: options.batches ?? [], uniqueIdInUse: (id) => byUniqueId.has(id) });
    if (!checked.ok) throw new HttpError(checked.refusal.status, checked.refusal.body.error);
    const { request } = checked;
    const task = newTask(request, randomBytes(12).toString('hex'), now(), options.apiKey.startsWith('test_'));
    const record: TaskRecord = { task, downloads: [], callbacks: [], settled: false };
    records.set(task.task_id, record);
    if (request.unique_id) byUniqueId.set(request.unique_id, task.task_id);
    // A cancel stops the work where it is (download, wait, or the retries of an earlier callback): a canceled
    // task never completes and sends nothing after the cancel.
    const stopper = new AbortController();
    workStoppers.set(task.task_id, stopper);
    const signal = AbortSignal.any([shutdown.signal, stopper.signal]);
    const dropCallback = () => config.dropCallbacks > 0 && random() < config.dropCallbacks;
    const work = runTask(record, { config: () => config, callbackAuthKey: options.callbackAuthKey, now, signal, sleep: (ms) => sleep(ms, signal), dropCallback, resultFileUrl: (taskId, name) => `${origin}/results/${encodeURIComponent(taskId)}/${encodeURIComponent(name)}` })
      .then(() => {
        if (task.status === 'error' && request.clear_unique_id_on_error && request.unique_id) byUniqueId.delete(request.unique_id);
      })
      .catch((err: unknown) => console.error('scale simulator task', task.task_id, err))
      .finally(() => {
        workStoppers.delete(task.task_id);
        record.settled = true;
        background.delete(work);
      });
    background.add(work);
    return [200, task];
  }

  function cancel(record: TaskRecord, clearUniqueId: boolean) {
    const { task } = record;
    const refusal = cancelTask(task, now);
    if (refusal !== undefined) throw new HttpError(400, refusal);
    workStoppers.get(task.task_id)?.abort(new DOMException('the task was canceled', 'AbortError'));
    if (clearUniqueId && task.unique_id !== undefined) {
      // Scale clears the task's unique_id: a new task may take it, and a lookup by it no longer finds this one.
      if (byUniqueId.get(task.unique_id) === task.task_id) byUniqueId.delete(task.unique_id);
      delete task.unique_id;
    }
    return task;
  }

  async function control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method === 'GET' && path === '/_simulator/state') return sendJson(res, 200, state());
    if (req.method === 'POST' && path === '/_simulator/config') {
      const patch = SimulatorConfigPatchSchema.safeParse(await readJson(req));
      if (!patch.success) throw new HttpError(400, `Invalid simulator config: ${patch.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      return sendJson(res, 200, configure(patch.data));
    }
    throw new HttpError(404, `No such control route: ${req.method} ${path}`);
  }

  function configure(patch: SimulatorConfigPatch): SimulatorConfig {
    // Only the keys given change: parsing a partial schema fills every other key with its default.
    const parsed = SimulatorConfigPatchSchema.parse(patch) as Record<string, unknown>;
    const given = Object.fromEntries(Object.keys(patch).map((key) => [key, parsed[key]]));
    config = SimulatorConfigSchema.parse({ ...config, ...given });
    if (patch.seed !== undefined) random = mulberry32(config.seed);
    return config;
  }

  function state(): SimulatorState {
    const tasks = [...records.values()].map((r) => structuredClone({ ...r, unique_id: r.task.unique_id, status: r.task.status }));
    return { config, requests: { ...counters }, tasks };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  return {
    apiUrl: `${origin}/v1`,
    origin,
    configure,
    setProjects(names: string[]) {
      projects = [...names];
    },
    state,
    async idle() {
      while (background.size > 0) await Promise.allSettled([...background]);
    },
    async close() {
      shutdown.abort();
      for (const timer of timers) clearTimeout(timer);
      await Promise.allSettled([...background]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `Request body is larger than ${MAX_BODY_BYTES} bytes.`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'The request body is not valid JSON.');
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}
