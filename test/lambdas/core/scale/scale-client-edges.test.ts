import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ScaleClient, type RetryNotice, type ScaleClientOptions } from '../../../../lambdas/core/scale/client.js';
import { FlowControl } from '../../../../lambdas/core/scale/flow-control.js';
import type { CreateMultistageTaskRequest } from '../../../../lambdas/core/scale/schemas.js';
import { startScaleSimulator, type ScaleSimulator } from '../../../../local/scale-simulator/server.js';
import { type Answer, failure, scripted, type Seen } from './scripted-scale.js';

// Answers Scale rarely sends, or that the simulator cannot send (408, an HTTP-date Retry-After, a task list that
// ignores its filter): the simulator plays what it can, a scripted server on 127.0.0.1 the rest.
const API_KEY = 'live_5b2e8d1f6a9c4e7b0d3f8a2c5e1b9d4f';
// Nothing listens there, and no task gets far enough to fetch it.
const SCENE = 'http://127.0.0.1:9/scene.sfs';
const fastRetry = { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 200, attemptTimeoutMs: 2_000, maxElapsedMs: 10_000 };
const CONFLICT = { status_code: 409, error: 'The provided idempotency key or unique_id is already in use.' };

let sim: ScaleSimulator;
beforeAll(async () => {
  sim = await startScaleSimulator({ apiKey: API_KEY, callbackAuthKey: 'unused', projects: ['p'], config: { startDelayMs: 60_000 } });
});
afterAll(() => sim?.close());
afterEach(() => sim.configure({ rateLimit: null }));

let seq = 0;
const createRequest = (overrides: Partial<CreateMultistageTaskRequest> = {}): CreateMultistageTaskRequest => ({
  project: 'p',
  attachments: [SCENE],
  scene_format: 'sensor_fusion',
  unique_id: `edge-${Date.now()}-${seq++}`,
  ...overrides,
});

function client(baseUrl: string, overrides: Partial<ScaleClientOptions> = {}, notices: RetryNotice[] = []) {
  return new ScaleClient({ apiKey: API_KEY, baseUrl, retry: fastRetry, random: () => 0.5, onRetry: (n) => notices.push(n), ...overrides });
}

const task = (fields: Record<string, unknown>): Answer => ({ status: 200, body: { status: 'pending', type: 'multistage', ...fields } });
// A request timeout as servers send it: the request was not processed, and the connection is closed.
const TIMEOUT_408: Answer = { status: 408, headers: { connection: 'close' }, body: { status_code: 408, error: 'Request timed out.' } };

describe('408 Request Timeout: the request was not processed', () => {
  it.each([
    ['with a unique_id', 'edge-408-a'],
    // Without a unique_id a 5xx is not retried (the create may have happened); a 408 says it did not.
    ['without a unique_id (not safe to repeat after a 5xx)', undefined],
  ])('retries a create %s and returns the task the retry made', async (_name, uniqueId) => {
    await scripted(
      (_seen, n) => (n === 1 ? TIMEOUT_408 : task({ task_id: 'task-after-408', unique_id: uniqueId })),
      async (baseUrl, seen) => {
        const notices: RetryNotice[] = [];
        const result = await client(baseUrl, {}, notices).createMultistageTask(createRequest({ unique_id: uniqueId }));
        expect(result).toMatchObject({ adopted: false, task: { task_id: 'task-after-408' } });
        expect(notices.map((n) => [n.attempt, n.reason])).toEqual([[1, '408 Request timed out.']]);
        expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /v1/task/multistage', 'POST /v1/task/multistage']);
        expect(seen[1]!.body).toBe(seen[0]!.body);
      },
    );
  });

  it('ends with the 408 in the error when the last attempt is answered 408', async () => {
    await scripted(
      () => TIMEOUT_408,
      async (baseUrl, seen) => {
        const err = await failure(client(baseUrl).createMultistageTask(createRequest({ unique_id: undefined })));
        expect(err).toMatchObject({ operation: 'create task', status: 408, scaleMessage: 'Request timed out.', retryable: true, attempts: 3 });
        expect(err.message).toBe('Scale create task failed after 3 attempts: 408 Request timed out.; gave up after the maximum of 3 attempts');
        expect(seen).toHaveLength(3);
      },
    );
  });
});

describe('a Retry-After beyond the policy cap', () => {
  // Far beyond any function's time limit: honoured as is, the call would sleep for an hour (or decades).
  const FAR_DATE = 'Fri, 01 Jan 2100 00:00:00 GMT';
  const refusedOnce =
    (retryAfter: string) =>
    (_seen: Seen, n: number): Answer =>
      n === 1
        ? { status: 429, headers: { 'retry-after': retryAfter }, body: { status_code: 429, error: 'Too many requests, please slow down.' } }
        : task({ task_id: 'task-after-429' });

  /** The simulator's window holds one request per second; this one takes it, so the next call meets a 429. */
  async function fillRateWindow(retryAfterSeconds: number) {
    await new Promise((resolve) => setTimeout(resolve, 1_050)); // earlier requests leave the window
    sim.configure({ rateLimit: { requestsPerSecond: 1, retryAfterSeconds } });
    await client(sim.apiUrl, { retry: { ...fastRetry, maxAttempts: 1 } }).getTask('0123456789abcdef01234567').catch(() => undefined);
  }

  it('waits only the cap for Retry-After: 3600, then succeeds', async () => {
    await fillRateWindow(3600);
    const notices: RetryNotice[] = [];
    const started = Date.now();
    const { task: created } = await client(sim.apiUrl, { retry: { ...fastRetry, maxRetryAfterMs: 1_100 } }, notices).createMultistageTask(createRequest());
    expect(created.status).toBe('pending');
    expect(notices.map((n) => [n.reason, n.delayMs])).toEqual([['429 Too many requests, please slow down.', 1_100]]);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('caps an HTTP-date Retry-After decades away the same way', async () => {
    await scripted(refusedOnce(FAR_DATE), async (baseUrl, seen) => {
      const notices: RetryNotice[] = [];
      const { task: created } = await client(baseUrl, { retry: { ...fastRetry, maxRetryAfterMs: 300 } }, notices).createMultistageTask(createRequest());
      expect(created.task_id).toBe('task-after-429');
      expect(notices.map((n) => n.delayMs)).toEqual([300]);
      expect(seen).toHaveLength(2);
    });
  });

  it.each([
    ['3600 (seconds, from the simulator)', 'simulator'],
    [FAR_DATE, 'scripted'],
  ])('gives up at once, retryable, when even the capped Retry-After %s would pass the deadline', async (header, where) => {
    const attempt = async (baseUrl: string) => {
      const notices: RetryNotice[] = [];
      const started = Date.now();
      // The default cap (10 s) against a 3 s deadline: the wait cannot fit, so there is no point in starting it.
      const c = client(baseUrl, { retry: { ...fastRetry, maxRetryAfterMs: 10_000 }, deadline: started + 3_000 }, notices);
      const err = await failure(c.createMultistageTask(createRequest()));
      expect(err).toMatchObject({ status: 429, retryable: true, attempts: 1 });
      expect(err.message).toMatch(/^Scale create task failed after 1 attempt: 429 Too many requests, please slow down\.; gave up: the next try would pass the deadline \(\d+ ms budget\)$/);
      expect(notices).toEqual([]);
      expect(Date.now() - started).toBeLessThan(1_000);
    };
    if (where === 'simulator') {
      await fillRateWindow(3600);
      await attempt(sim.apiUrl);
    } else {
      await scripted(refusedOnce(header), (baseUrl) => attempt(baseUrl));
    }
    // Well short of the capped wait (10 s): a client that starts it fails here instead of sleeping it out.
  }, 5_000);

  it('holds the instance back only for the cap when flow control keeps Retry-After', async () => {
    // Flow control holds every request of the instance until Retry-After has passed: an uncapped hour would refuse
    // each later call of the warm instance for that hour.
    await scripted(refusedOnce('3600'), async (baseUrl, seen) => {
      const flow = new FlowControl();
      const started = Date.now();
      const c = client(baseUrl, { flowControl: flow, retry: { ...fastRetry, maxRetryAfterMs: 400 }, deadline: started + 5_000 });
      const { task: created } = await c.createMultistageTask(createRequest());
      expect(created.task_id).toBe('task-after-429');
      expect(flow.state().pausedUntil - started).toBeGreaterThanOrEqual(400);
      expect(flow.state().pausedUntil - started).toBeLessThan(1_000);
      expect(seen).toHaveLength(2);
      // The cap, then the one-request-per-second pace the flow control keeps after a 429.
      expect(Date.now() - started).toBeLessThan(2_000);
    });
  });
});

describe('409 on create: the lookup by unique_id decides', () => {
  const conflictThenList =
    (docs: unknown[]) =>
    (seen: Seen): Answer =>
      seen.method === 'POST' ? { status: 409, body: CONFLICT } : { status: 200, body: { docs, has_more: docs.length > 0 } };

  it.each([
    ['another unique_id (a server ignoring the filter)', [{ task_id: 'foreign-task', status: 'completed', unique_id: 'someone-elses-scene' }]],
    ['no unique_id at all (one cleared by a cancel)', [{ task_id: 'cleared-task', status: 'canceled' }]],
  ])('does not adopt a task the lookup returns with %s', async (_name, docs) => {
    await scripted(conflictThenList(docs), async (baseUrl, seen) => {
      const err = await failure(client(baseUrl).createMultistageTask(createRequest({ unique_id: 'edge-409-mine' })));
      expect(err).toMatchObject({ operation: 'create task', status: 409, retryable: true });
      expect(err.message).toBe('Scale create task failed after 1 attempt: unique_id edge-409-mine is in use but no task was found by it');
      // The lookup asked for exactly this unique_id.
      expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /v1/task/multistage', 'GET /v1/tasks?unique_id=edge-409-mine&limit=1']);
    });
  });

  it('fails clearly, retryable and with Scale’s 409 text, when the lookup finds no task', async () => {
    await scripted(conflictThenList([]), async (baseUrl, seen) => {
      const err = await failure(client(baseUrl).createMultistageTask(createRequest({ unique_id: 'edge-409-gone' })));
      expect(err).toMatchObject({
        operation: 'create task',
        status: 409,
        retryable: true,
        attempts: 1,
        scaleMessage: 'The provided idempotency key or unique_id is already in use.',
      });
      expect(err.message).toBe('Scale create task failed after 1 attempt: unique_id edge-409-gone is in use but no task was found by it');
      expect(seen).toHaveLength(2);
    });
  });
});
