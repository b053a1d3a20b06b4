import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ScaleClient, type RetryNotice, type ScaleClientOptions } from '../../../../lambdas/core/scale/client.js';
import { ScaleApiError, ScaleRequestInvalidError } from '../../../../lambdas/core/scale/errors.js';
import { backoffDelay, DEFAULT_RETRY_POLICY, parseRetryAfter } from '../../../../lambdas/core/scale/retry.js';
import type { CreateMultistageTaskRequest } from '../../../../lambdas/core/scale/schemas.js';
import { closedPort } from '../../../helpers/http.js';
import { startScaleSimulator, type ScaleSimulator } from '../../../../local/scale-simulator/server.js';

const API_KEY = 'live_4d1c9e0b7a2f4c8e9d3b6a5f1e0c7b2a';
const BASIC = Buffer.from(`${API_KEY}:`).toString('base64');
// Nothing listens there: these tests look at task creation, not at downloads.
const CLOSED_PORT = await closedPort();
const SCENE_URL = `http://127.0.0.1:${CLOSED_PORT}/scene.sfs`;

let sim: ScaleSimulator;
beforeAll(async () => {
  sim = await startScaleSimulator({ apiKey: API_KEY, callbackAuthKey: 'cb-key', projects: ['lidar-project'], config: { downloadTimeoutMs: 200 } });
});
afterAll(() => sim.close());
afterEach(() => {
  sim.configure({ rateLimit: null, failNextRequests: 0, dropNextRequests: 0, latencyMs: 0, serverErrorRate: 0, startDelayMs: 0 });
});

const fastRetry = { baseDelayMs: 20, maxDelayMs: 200, attemptTimeoutMs: 2_000, maxElapsedMs: 10_000 };

function client(overrides: Partial<ScaleClientOptions> = {}, notices: RetryNotice[] = []) {
  return new ScaleClient({ apiKey: API_KEY, baseUrl: sim.apiUrl, retry: fastRetry, onRetry: (n) => notices.push(n), ...overrides });
}

let seq = 0;
function request(overrides: Partial<CreateMultistageTaskRequest> = {}): CreateMultistageTaskRequest {
  return { project: 'lidar-project', attachments: [SCENE_URL], scene_format: 'sensor_fusion', unique_id: `scene-${Date.now()}-${seq++}`, ...overrides };
}

/** Everything an error can show a log: none of it may hold the key or its basic-auth form. */
function expectNoKey(err: unknown) {
  const e = err as Error;
  const visible = [e.message, e.stack, JSON.stringify(e), String(e.cause ?? ''), JSON.stringify(Object.entries(e))].join('\n');
  expect(visible).not.toContain(API_KEY);
  expect(visible).not.toContain(BASIC);
}

async function failure(promise: Promise<unknown>): Promise<ScaleApiError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ScaleApiError);
  expectNoKey(err);
  return err as ScaleApiError;
}

const requestsSoFar = () => sim.state().requests.total;

describe('ScaleClient against the simulator', () => {
  it('creates a multistage task and reads it back by id and by unique_id', async () => {
    const req = request({ tags: ['a'], priority: 30, metadata: { key: 'dir/scene.sfs' }, callback_url: `http://127.0.0.1:${CLOSED_PORT}/callback?ref=1` });
    const { task, adopted } = await client().createMultistageTask(req);
    expect(adopted).toBe(false);
    expect(task).toMatchObject({ status: 'pending', type: 'multistage', unique_id: req.unique_id, tags: ['a'], metadata: { key: 'dir/scene.sfs' } });
    expect(task.task_id).toMatch(/^[0-9a-f]{24}$/);
    expect(task.params).toMatchObject({ attachments: [SCENE_URL], scene_format: 'sensor_fusion' });
    expect((await client().getTask(task.task_id)).task_id).toBe(task.task_id);
    expect((await client().findTaskByUniqueId(req.unique_id!))?.task_id).toBe(task.task_id);
    expect(await client().findTaskByUniqueId('no-such-unique-id')).toBeUndefined();
  });

  it('cancels a task, optionally freeing its unique_id', async () => {
    sim.configure({ startDelayMs: 5_000 }); // still pending: only a task whose work has not started can be cancelled
    const req = request();
    const { task } = await client().createMultistageTask(req);
    expect((await client().cancelTask(task.task_id, { clearUniqueId: true })).status).toBe('canceled');
    const again = await client().createMultistageTask(req);
    expect(again.adopted).toBe(false);
    expect(again.task.task_id).not.toBe(task.task_id);
  });

  it.each([
    ['priority', { priority: 15 as 10 }, 'priority: must be 10, 20 or 30'],
    ['tags', { tags: ['1', '2', '3', '4', '5', '6'] }, 'tags: must hold at most 5 tags'],
    ['metadata', { metadata: { blob: 'x'.repeat(10 * 1024) } }, 'metadata: is 10251 bytes serialized; Scale allows at most 10000'],
    ['sensor_fusion attachments', { attachments: [SCENE_URL, SCENE_URL] }, 'attachments: sensor_fusion takes exactly one .sfs URL, got 2'],
    ['split_base64 attachments', { scene_format: 'split_base64' as const, attachments: [] }, 'attachments: must hold at least one attachment URL'],
    ['attachment URL', { attachments: ['s3://bucket/scene.sfs'] }, 'attachments[0]: must be a full http(s) URL'],
    ['callback_url', { callback_url: 'ftp://example.com/cb' }, 'callback_url: must be a full http(s) URL or an email address'],
    ['project', { project: '' }, 'project: is required'],
    ['scene_format', { scene_format: 'pointcloud' as 'sensor_fusion' }, 'scene_format: expected one of "sensor_fusion", "split_base64"'],
    ['unknown key', { colour: 'red' } as Partial<CreateMultistageTaskRequest>, 'unknown key(s) colour'],
  ])('rejects a bad %s before sending', async (_name, overrides, message) => {
    const before = requestsSoFar();
    const err = await client().createMultistageTask(request(overrides)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScaleRequestInvalidError);
    expect((err as Error).message).toContain(message);
    expect(requestsSoFar()).toBe(before);
  });

  it('accepts an email callback and several split_base64 frames', async () => {
    const { task } = await client().createMultistageTask(
      request({ scene_format: 'split_base64', attachments: [SCENE_URL, SCENE_URL, SCENE_URL], callback_url: 'labels@example.com' }),
    );
    expect(task.params?.attachments).toHaveLength(3);
  });

  it('fails with 401 on a wrong key, once, without the key in the error', async () => {
    const before = requestsSoFar();
    const wrongKey = 'live_wrongwrongwrong';
    const err = await failure(client({ apiKey: wrongKey }).getTask('0123456789abcdef01234567'));
    expect(err).toMatchObject({ status: 401, retryable: false, attempts: 1 });
    expect(err.message).not.toContain(wrongKey);
    expect(requestsSoFar()).toBe(before + 1);
  });

  it('keeps the key out of errors even when a careless server echoes it, raw or base64-encoded', async () => {
    // Not Scale (which does not echo keys) but a proxy in front of it might: both forms, in JSON and plain text.
    const echo = createServer((req, res) => {
      const text = `bad request from ${req.headers.authorization} (key ${API_KEY}) ` + 'x'.repeat(5_000);
      if (req.url?.includes('json')) res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ status_code: 400, error: text }));
      else res.writeHead(400).end(text);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(echo.address() as AddressInfo).port}/v1`;
    try {
      for (const id of ['json', 'plain']) {
        const err = await failure(client({ baseUrl: base }).getTask(id));
        expect(err.scaleMessage).toMatch(/^bad request from Basic \[redacted\] \(key \[redacted\]\) x+$/);
        // Bounded: the echoed text goes into log lines and records.
        expect(err.scaleMessage!.length).toBe(300);
        expectNoKey(err);
      }
    } finally {
      echo.closeAllConnections();
      await new Promise<void>((resolve) => echo.close(() => resolve()));
    }
  });

  it('adopts the existing task on 409', async () => {
    const req = request();
    const first = await client().createMultistageTask(req);
    const second = await client().createMultistageTask(req);
    expect(second).toMatchObject({ adopted: true, task: { task_id: first.task.task_id } });
  });

  it('recovers from a create whose answer was cut off: retry, 409, adopt, one task', async () => {
    const req = request();
    const notices: RetryNotice[] = [];
    sim.configure({ dropNextRequests: 1 });
    const { task, adopted } = await client({}, notices).createMultistageTask(req);
    expect(adopted).toBe(true);
    expect(notices[0]?.reason).toMatch(/network error/);
    expect(sim.state().tasks.filter((t) => t.unique_id === req.unique_id).map((t) => t.task.task_id)).toEqual([task.task_id]);
  });

  it('honours Retry-After on 429 and then succeeds', async () => {
    const notices: RetryNotice[] = [];
    sim.configure({ rateLimit: { requestsPerSecond: 1, retryAfterSeconds: 1 } });
    const c = client({}, notices);
    await c.createMultistageTask(request()); // uses the one request of this second
    const started = Date.now();
    const { task } = await c.createMultistageTask(request());
    expect(task.status).toBe('pending');
    expect(notices.map((n) => [n.reason, n.delayMs])).toContainEqual(['429 Too many requests, please slow down.', 1000]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('backs off exponentially on 429 without Retry-After and then succeeds', async () => {
    const notices: RetryNotice[] = [];
    sim.configure({ rateLimit: { requestsPerSecond: 1, retryAfterSeconds: null } });
    const c = client({ random: () => 0.999, retry: { ...fastRetry, baseDelayMs: 100, maxDelayMs: 800, maxAttempts: 8 } }, notices);
    await c.createMultistageTask(request()); // uses the one request of this second
    const { task } = await c.createMultistageTask(request());
    expect(task.status).toBe('pending');
    // Full jitter under a doubling ceiling (random pinned near 1): 100, 200, 400, 800 ms ceilings.
    const delays = notices.map((n) => [n.reason.slice(0, 3), n.delayMs]);
    expect(delays.slice(0, 3)).toEqual([['429', 99], ['429', 199], ['429', 399]]);
  });

  it('retries 5xx and then succeeds', async () => {
    const notices: RetryNotice[] = [];
    sim.configure({ failNextRequests: 2 });
    const { task } = await client({}, notices).createMultistageTask(request());
    expect(task.status).toBe('pending');
    expect(notices.map((n) => n.reason)).toEqual(['503 Internal server error (simulated).', '503 Internal server error (simulated).']);
  });

  it('retries a dropped connection on a read', async () => {
    const { task } = await client().createMultistageTask(request());
    sim.configure({ dropNextRequests: 1 });
    const notices: RetryNotice[] = [];
    expect((await client({}, notices).getTask(task.task_id)).task_id).toBe(task.task_id);
    expect(notices).toHaveLength(1);
  });

  it('times out a slow answer and reports it as retryable', async () => {
    sim.configure({ latencyMs: 400 });
    const before = requestsSoFar();
    const err = await failure(client({ retry: { ...fastRetry, attemptTimeoutMs: 100, maxAttempts: 2 } }).getTask('0123456789abcdef01234567'));
    expect(err).toMatchObject({ retryable: true, attempts: 2 });
    expect(err.message).toMatch(/no answer within 100 ms \(timed out\)/);
    expect(requestsSoFar()).toBe(before + 2);
  });

  it('does not retry a permanent 400 and carries Scale’s text', async () => {
    const before = requestsSoFar();
    const err = await failure(client().createMultistageTask(request({ project: 'no-such-project' })));
    expect(err).toMatchObject({ status: 400, retryable: false, attempts: 1, scaleMessage: 'Project "no-such-project" was not found.' });
    expect(requestsSoFar()).toBe(before + 1);
  });

  it('does not repeat a create without unique_id after an ambiguous 5xx', async () => {
    sim.configure({ failNextRequests: 1 });
    const err = await failure(client().createMultistageTask(request({ unique_id: undefined })));
    expect(err).toMatchObject({ status: 503, retryable: false, attempts: 1 });
  });

  it('bounds retries by count', async () => {
    sim.configure({ failNextRequests: 100 });
    const before = requestsSoFar();
    const err = await failure(client({ retry: { ...fastRetry, maxAttempts: 3 } }).createMultistageTask(request()));
    expect(err).toMatchObject({ status: 503, retryable: true, attempts: 3 });
    expect(err.message).toContain('gave up after the maximum of 3 attempts');
    // Not the rate limit: nothing says when Scale will work again.
    expect(err.retryInMs).toBeUndefined();
    expect(requestsSoFar()).toBe(before + 3);
  });

  it('bounds retries by total time, Retry-After included', async () => {
    sim.configure({ rateLimit: { requestsPerSecond: 1, retryAfterSeconds: 1 } });
    const c = client({ retry: { ...fastRetry, maxAttempts: 50, maxElapsedMs: 2_500 } });
    await c.getTask('0123456789abcdef01234567').catch(() => undefined);
    sim.configure({ rateLimit: { requestsPerSecond: 1, retryAfterSeconds: 5 } });
    const started = Date.now();
    const err = await failure(c.createMultistageTask(request()));
    expect(err).toMatchObject({ status: 429, retryable: true, retryInMs: 5_000 });
    expect(err.message).toContain('the next try would pass the deadline');
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it('keeps every call, the 409 lookup included, inside one deadline', async () => {
    // A create whose answer is lost (so the retry meets 409), then a rate limit asking for 9 s: the lookup that
    // resolves the 409 must not get a fresh budget of its own.
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // an empty rate-limit window: earlier tests' requests age out
    sim.configure({ dropNextRequests: 1, rateLimit: { requestsPerSecond: 2, retryAfterSeconds: 9 } });
    const started = Date.now();
    const deadline = started + 3_000;
    const c = client({ retry: { ...fastRetry, maxAttempts: 10, maxElapsedMs: 30_000, maxRetryAfterMs: 10_000 }, deadline });
    const err = await failure(c.createMultistageTask(request()));
    expect(err).toMatchObject({ operation: 'list tasks', status: 429, retryable: true });
    expect(Date.now()).toBeLessThanOrEqual(deadline);
    // A deadline that is not a whole millisecond (what arithmetic on remaining time gives) still times calls out.
    sim.configure({ rateLimit: null, latencyMs: 3_000 });
    const fractional = await failure(client({ retry: { ...fastRetry, maxAttempts: 1 }, deadline: Date.now() + 1_500.5 }).getTask('0123456789abcdef01234567'));
    expect(fractional.message).toContain('timed out');
    sim.configure({ latencyMs: 0 });
    // Past the deadline nothing is even attempted.
    const before = requestsSoFar();
    const late = await failure(client({ deadline: Date.now() + 500 }).getTask('0123456789abcdef01234567'));
    expect(late).toMatchObject({ retryable: true, attempts: 0 });
    expect(late.message).toContain('less than a second left');
    expect(requestsSoFar()).toBe(before);
  });

  it('treats an unreachable Scale as a retryable network error', async () => {
    const err = await failure(client({ baseUrl: `http://127.0.0.1:${CLOSED_PORT}/v1`, retry: { ...fastRetry, maxAttempts: 2 } }).getTask('x'));
    expect(err).toMatchObject({ retryable: true, attempts: 2, status: undefined });
    expect(err.message).toMatch(/network error \(ECONNREFUSED\)/);
  });

  it('refuses to start without a key', () => {
    expect(() => new ScaleClient({ apiKey: '' })).toThrow('Scale API key is empty');
  });
});

describe('retry arithmetic', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it('draws full-jitter delays under an exponential, capped ceiling', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 100, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, policy, () => 0.5))).toEqual([50, 100, 200, 400, 500]);
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
  });
});
