import type { z } from 'zod/mini';
import { checkAgainst } from '../shared/validation.js';
import { ScaleApiError, ScaleRequestInvalidError } from './errors.js';
import type { RequestPacer, Turn } from './flow-control.js';
import { backoffDelay, DEFAULT_RETRY_POLICY, isRetryableStatus, parseRetryAfter, type RetryPolicy } from './retry.js';
import {
  checkCreateTaskRequest,
  ScaleErrorBodySchema,
  ScaleTaskSchema,
  TaskListSchema,
  type CreateMultistageTaskRequest,
  type ScaleTask,
  type TaskList,
} from './schemas.js';

export const SCALE_API_URL = 'https://api.scale.com/v1';

export interface RetryNotice {
  operation: string;
  attempt: number;
  delayMs: number;
  reason: string;
  /** With flow control: the requests per second it allows now (null: unlimited). */
  rate?: number | null;
}

export interface ScaleClientOptions {
  apiKey: string;
  /** Base URL including `/v1`; the Scale simulator's in tests and the local pipeline. */
  baseUrl?: string;
  retry?: Partial<RetryPolicy>;
  /** Called before each wait, for logs and metrics. Never receives the key. */
  onRetry?: (notice: RetryNotice) => void;
  random?: () => number;
  /**
   * Epoch ms by which every call of this client must be over, retries and the 409 lookup included: the invocation's
   * own deadline, so no call outlives the function that makes it.
   */
  deadline?: number;
  /**
   * The instance's flow control (flow-control.ts, or the rate shared by every instance: shared-flow-control.ts),
   * shared by every client of the instance: each request waits for its turn and reports its answer, so the
   * instance keeps to the rate Scale allows.
   */
  flowControl?: RequestPacer;
}

/** Least time worth starting a request with: less than this before the deadline, it is not sent. */
const MIN_ATTEMPT_MS = 1_000;

export interface CreatedTask {
  task: ScaleTask;
  /** True when Scale answered 409 for the unique_id and the existing task was looked up and returned. */
  adopted: boolean;
}

export interface ListTasksQuery {
  unique_id?: string;
  project?: string;
  batch?: string;
  status?: string;
  /** ISO time: tasks whose updated_at is after it. */
  updated_after?: string;
  limit?: number;
  next_token?: string;
}

interface CallSpec<T> {
  operation: string;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  schema: z.ZodMiniType<T>;
  /** A POST that may have taken effect is retried only when a retry cannot duplicate it. */
  safeToRepeat: boolean;
}

type AttemptOutcome<T> =
  | { ok: true; value: T }
  | { ok: false; retryable: boolean; status?: number; scaleMessage?: string; summary: string; retryAfterMs?: number };

/** A typed client for the parts of Scale's REST API this product uses. */
export class ScaleClient {
  private readonly authorization: string;
  private readonly baseUrl: string;
  private readonly policy: RetryPolicy;
  /** Time this client's calls spent waiting for turns. */
  private turnWaitsMs = 0;

  constructor(private readonly options: ScaleClientOptions) {
    if (!options.apiKey) throw new Error('Scale API key is empty: set it in the Scale API key secret');
    // Basic auth: the key is the user name, the password is empty.
    this.authorization = `Basic ${Buffer.from(`${options.apiKey}:`).toString('base64')}`;
    this.baseUrl = (options.baseUrl ?? SCALE_API_URL).replace(/\/+$/, '');
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  }

  /**
   * POST /task/multistage. The request is checked against Scale's body rules first. A 409 (unique_id in use,
   * e.g. an earlier attempt created the task but its answer was lost) is resolved by looking the task up.
   */
  async createMultistageTask(request: CreateMultistageTaskRequest): Promise<CreatedTask> {
    const problems = checkCreateTaskRequest(request);
    if (problems.length > 0) throw new ScaleRequestInvalidError(problems);
    try {
      const task = await this.call({
        operation: 'create task',
        method: 'POST',
        path: '/task/multistage',
        body: request,
        schema: ScaleTaskSchema,
        safeToRepeat: request.unique_id !== undefined,
      });
      return { task, adopted: false };
    } catch (err) {
      if (!(err instanceof ScaleApiError) || err.status !== 409 || !request.unique_id) throw err;
      const existing = await this.findTaskByUniqueId(request.unique_id);
      if (!existing) {
        throw new ScaleApiError(`unique_id ${request.unique_id} is in use but no task was found by it`, {
          operation: 'create task',
          status: 409,
          scaleMessage: err.scaleMessage,
          retryable: true,
          attempts: err.attempts,
        });
      }
      return { task: existing, adopted: true };
    }
  }

  getTask(taskId: string): Promise<ScaleTask> {
    return this.call({ operation: 'get task', method: 'GET', path: `/task/${encodeURIComponent(taskId)}`, schema: ScaleTaskSchema, safeToRepeat: true });
  }

  listTasks(query: ListTasksQuery): Promise<TaskList> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    return this.call({ operation: 'list tasks', method: 'GET', path: `/tasks?${params}`, schema: TaskListSchema, safeToRepeat: true });
  }

  async findTaskByUniqueId(uniqueId: string): Promise<ScaleTask | undefined> {
    const page = await this.listTasks({ unique_id: uniqueId, limit: 1 });
    // Only an exact match: adopting some other task would attach this upload to the wrong result.
    return page.docs.find((task) => task.unique_id === uniqueId);
  }

  cancelTask(taskId: string, options: { clearUniqueId?: boolean } = {}): Promise<ScaleTask> {
    const query = options.clearUniqueId ? '?clear_unique_id=true' : '';
    // Cancelling twice is harmless, so a cancel whose answer was lost may be repeated.
    return this.call({ operation: 'cancel task', method: 'POST', path: `/task/${encodeURIComponent(taskId)}/cancel${query}`, schema: ScaleTaskSchema, safeToRepeat: true });
  }

  private async call<T>(spec: CallSpec<T>): Promise<T> {
    const started = Date.now();
    const deadline = Math.min(started + this.policy.maxElapsedMs, this.options.deadline ?? Infinity);
    if (deadline - started < MIN_ATTEMPT_MS) {
      // Too little time left to be worth a request: fail now (a retryable failure) rather than be cut off mid-call.
      throw new ScaleApiError('not attempted: less than a second left before the deadline', { operation: spec.operation, retryable: true, attempts: 0, retryInMs: this.turnsTookTime() ? 0 : undefined });
    }
    const flow = this.options.flowControl;
    // With flow control, 429s are counted apart from other failures (see RetryPolicy.maxRateLimitedAttempts).
    let failures = 0;
    let rateLimited = 0;
    for (let attempt = 1; ; attempt++) {
      const turn = flow ? await this.turnFrom(flow, deadline - MIN_ATTEMPT_MS) : undefined;
      if (turn && !turn.ok) throw new ScaleApiError(turn.reason, { operation: spec.operation, retryable: true, attempts: attempt - 1, retryInMs: turn.waitMs });
      const outcome = await this.attempt(spec, Math.min(this.policy.attemptTimeoutMs, deadline - Date.now()));
      const retryAfterMs = !outcome.ok && outcome.retryAfterMs !== undefined ? Math.min(outcome.retryAfterMs, this.policy.maxRetryAfterMs) : undefined;
      const paced = flow !== undefined && !outcome.ok && outcome.status === 429;
      if (turn?.ok) flow!.settle(turn.permit, { rateLimited: paced, retryAfterMs });
      if (outcome.ok) return outcome.value;
      const fail = (summary: string, retryInMs?: number) =>
        new ScaleApiError(summary, { operation: spec.operation, status: outcome.status, scaleMessage: outcome.scaleMessage, retryable: outcome.retryable, attempts: attempt, retryInMs });
      if (!outcome.retryable) throw fail(outcome.summary);
      const [counted, limit] = paced ? [++rateLimited, this.policy.maxRateLimitedAttempts] : [++failures, this.policy.maxAttempts];
      const delayMs = retryAfterMs ?? backoffDelay(counted, this.policy, this.options.random);
      if (counted >= limit) throw fail(`${outcome.summary}; gave up after the maximum of ${limit} ${paced ? 'rate-limited ' : ''}attempts`, paced ? delayMs : undefined);
      // Leave room for one more attempt of at least a second; otherwise stop inside the budget.
      if (Date.now() + delayMs + MIN_ATTEMPT_MS > deadline) {
        throw fail(`${outcome.summary}; gave up: the next try would pass the deadline (${deadline - started} ms budget)`, outcome.status === 429 ? delayMs : undefined);
      }
      this.options.onRetry?.({ operation: spec.operation, attempt, delayMs, reason: outcome.summary, ...(flow ? { rate: flow.state().rate } : {}) });
      // The refused request itself waits out its Retry-After (or backoff); the flow control may hold others back too.
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }

  private async attempt<T>(spec: CallSpec<T>, timeoutMs: number): Promise<AttemptOutcome<T>> {
    let response: Response;
    let text: string;
    try {
      // AbortSignal.timeout takes whole milliseconds only.
      const signal = AbortSignal.timeout(Math.max(1, Math.floor(timeoutMs)));
      response = await fetch(`${this.baseUrl}${spec.path}`, {
        method: spec.method,
        headers: {
          authorization: this.authorization,
          accept: 'application/json',
          ...(spec.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: spec.body !== undefined ? JSON.stringify(spec.body) : undefined,
        signal,
      });
      text = await response.text();
    } catch (err) {
      // The request may have reached Scale; repeat it only when that cannot create a duplicate.
      return { ok: false, retryable: spec.safeToRepeat, summary: describeTransportError(err, timeoutMs) };
    }

    if (response.ok) {
      const parsed = parseJson(text);
      const result = checkAgainst(spec.schema, parsed);
      if (result.ok) return { ok: true, value: result.value };
      return {
        ok: false,
        retryable: spec.safeToRepeat,
        status: response.status,
        summary: `unexpected answer to ${spec.method} ${stripQuery(spec.path)}: ${result.problems.slice(0, 3).join('; ')}`,
      };
    }

    // Redacted before it is cut short, so no part of a key survives the cut; and again once decoded, as a JSON
    // string may carry the key escaped (test\u005f…).
    const scaleMessage = readScaleError(this.redact(text), (message) => this.redact(message));
    const status = response.status;
    // 429 and 408 mean the request was not processed; 5xx may have been, so they need safeToRepeat.
    const retryable = isRetryableStatus(status) && (status === 429 || status === 408 || spec.safeToRepeat);
    return {
      ok: false,
      retryable,
      status,
      scaleMessage,
      summary: `${status}${scaleMessage ? ` ${scaleMessage}` : ''}`,
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    };
  }

  /**
   * Scale does not echo keys, but an error text (from Scale or a proxy in front of it) is copied into logs and
   * records: make sure, in every form the key travels in — as is, and base64-encoded in the Basic credentials.
   */
  /** Waits for a turn, counting the time it took. */
  private async turnFrom(flow: RequestPacer, latestStart: number): Promise<Turn> {
    const asked = Date.now();
    try {
      return await flow.acquire(latestStart);
    } finally {
      this.turnWaitsMs += Date.now() - asked;
    }
  }

  /**
   * Whether this client's earlier turns took at least an attempt's worth of time: then a call with no time left only
   * has to wait for its turn in a later invocation (nothing else about it failed).
   */
  private turnsTookTime(): boolean {
    return this.turnWaitsMs >= MIN_ATTEMPT_MS;
  }

  private redact(text: string): string {
    const forms = [this.authorization.slice('Basic '.length), this.options.apiKey];
    return forms.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function readScaleError(text: string, redact: (message: string) => string): string | undefined {
  const body = ScaleErrorBodySchema.safeParse(parseJson(text));
  const message = body.success ? (body.data.error ?? body.data.message) : undefined;
  // Bounded either way: the text goes into log lines and records.
  return redact(message ?? text.trim()).slice(0, 300) || undefined;
}

function stripQuery(path: string): string {
  return path.split('?')[0] ?? path;
}

function describeTransportError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${timeoutMs} ms (timed out)`;
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  const detail = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
  return `network error (${detail})`;
}
