import { describe, expect, it } from 'vitest';
import { ScaleClient, type RetryNotice, type ScaleClientOptions } from '../../../../lambdas/core/scale/client.js';
import { FlowControl } from '../../../../lambdas/core/scale/flow-control.js';
import type { CreateMultistageTaskRequest } from '../../../../lambdas/core/scale/schemas.js';
import { errorAnswer, failure, scripted, taskAnswer } from './scripted-scale.js';

// What the client sends to Scale and what its errors say, against a scripted server that records every request.

const API_KEY = 'live_7c3a9e1b5d2f4a8c6e0b9d3f1a7c5e2b';
const fastRetry = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 40, attemptTimeoutMs: 2_000, maxElapsedMs: 10_000 };
const CREATE: CreateMultistageTaskRequest = { project: 'p', attachments: ['http://127.0.0.1:9/scene.sfs'], scene_format: 'sensor_fusion', metadata: { key: 'a b.sfs' } };

const client = (baseUrl: string, overrides: Partial<ScaleClientOptions> = {}, notices: RetryNotice[] = []) =>
  new ScaleClient({ apiKey: API_KEY, baseUrl, retry: fastRetry, random: () => 0.5, onRetry: (n) => notices.push(n), ...overrides });

const line = (s: { method: string; url: string }) => `${s.method} ${s.url}`;

describe('what the client sends', () => {
  it('reads a task with the key as basic-auth user, asking for JSON, with no body and no content type', async () => {
    await scripted(
      () => taskAnswer(),
      async (baseUrl, seen) => {
        await client(baseUrl).getTask('a/b?c');
        expect(seen.map(line)).toEqual(['GET /v1/task/a%2Fb%3Fc']);
        expect(seen[0]!.headers).toMatchObject({ authorization: `Basic ${Buffer.from(`${API_KEY}:`).toString('base64')}`, accept: 'application/json' });
        expect(seen[0]!.headers['content-type']).toBeUndefined();
        expect(seen[0]!.body).toBe('');
      },
    );
  });

  it('posts a create request as JSON, exactly as given', async () => {
    await scripted(
      () => taskAnswer(),
      async (baseUrl, seen) => {
        expect(await client(baseUrl).createMultistageTask(CREATE)).toEqual({ adopted: false, task: { task_id: 'task-1', status: 'pending', type: 'multistage' } });
        expect(seen.map(line)).toEqual(['POST /v1/task/multistage']);
        expect(seen[0]!.headers['content-type']).toBe('application/json');
        expect(JSON.parse(seen[0]!.body)).toEqual(CREATE);
      },
    );
  });

  it('cancels keeping the unique_id unless asked to clear it', async () => {
    await scripted(
      () => taskAnswer({ status: 'canceled' }),
      async (baseUrl, seen) => {
        const c = client(baseUrl);
        expect((await c.cancelTask('t1')).status).toBe('canceled');
        await c.cancelTask('t1', { clearUniqueId: false });
        await c.cancelTask('t 2', { clearUniqueId: true });
        expect(seen.map(line)).toEqual(['POST /v1/task/t1/cancel', 'POST /v1/task/t1/cancel', 'POST /v1/task/t%202/cancel?clear_unique_id=true']);
        expect(seen[0]!.headers['content-type']).toBeUndefined();
      },
    );
  });

  it('lists tasks with only the filters given', async () => {
    await scripted(
      () => ({ status: 200, body: { docs: [], has_more: false } }),
      async (baseUrl, seen) => {
        const page = await client(baseUrl).listTasks({ project: 'p', batch: undefined, status: 'completed', limit: 5 });
        expect(page).toEqual({ docs: [], has_more: false });
        expect(seen.map(line)).toEqual(['GET /v1/tasks?project=p&status=completed&limit=5']);
      },
    );
  });

  it('takes a base URL with trailing slashes', async () => {
    await scripted(
      () => taskAnswer(),
      async (baseUrl, seen) => {
        await client(`${baseUrl}/`).getTask('t1');
        await client(`${baseUrl}//`).getTask('t2');
        expect(seen.map(line)).toEqual(['GET /v1/task/t1', 'GET /v1/task/t2']);
      },
    );
  });
});

describe('what a failure says', () => {
  it('gives the bare status when the answer has no text', async () => {
    await scripted(
      () => ({ status: 502 }),
      async (baseUrl) => {
        const err = await failure(client(baseUrl, { retry: { ...fastRetry, maxAttempts: 1 } }).getTask('t1'));
        expect(err).toMatchObject({ operation: 'get task', status: 502, scaleMessage: undefined, retryable: true, attempts: 1 });
        expect(err.message).toBe('Scale get task failed after 1 attempt: 502; gave up after the maximum of 1 attempts');
      },
    );
  });

  it('takes Scale’s `message` when there is no `error`, and plain text trimmed', async () => {
    await scripted(
      (_seen, n) => (n === 1 ? { status: 404, body: { message: 'No such task.' } } : { status: 403, text: '  Forbidden by proxy \n' }),
      async (baseUrl) => {
        const c = client(baseUrl);
        expect(await failure(c.cancelTask('t1'))).toMatchObject({ operation: 'cancel task', status: 404, scaleMessage: 'No such task.', retryable: false, attempts: 1 });
        const plain = await failure(c.getTask('t1'));
        expect(plain).toMatchObject({ status: 403, scaleMessage: 'Forbidden by proxy' });
        expect(plain.message).toBe('Scale get task failed after 1 attempt: 403 Forbidden by proxy');
      },
    );
  });

  it('names the first three problems of an answer that is not what Scale documents, and retries a read', async () => {
    await scripted(
      () => ({ status: 200, body: { docs: [{}, {}], has_more: 'no' } }),
      async (baseUrl, seen) => {
        const err = await failure(client(baseUrl, { retry: { ...fastRetry, maxAttempts: 2 } }).listTasks({ project: 'p' }));
        expect(err).toMatchObject({ operation: 'list tasks', status: 200, retryable: true, attempts: 2 });
        expect(err.message).toBe(
          'Scale list tasks failed after 2 attempts: unexpected answer to GET /tasks: docs[0].task_id: expected string; docs[0].status: expected string; ' +
            'docs[1].task_id: expected string; gave up after the maximum of 2 attempts',
        );
        expect(seen).toHaveLength(2);
      },
    );
  });

  it('does not repeat a create without unique_id whose answer could not be read', async () => {
    await scripted(
      () => ({ status: 200, text: 'OK' }),
      async (baseUrl, seen) => {
        const err = await failure(client(baseUrl).createMultistageTask(CREATE));
        expect(err).toMatchObject({ status: 200, retryable: false, attempts: 1 });
        expect(err.message).toBe('Scale create task failed after 1 attempt: unexpected answer to POST /task/multistage: (root): expected object');
        expect(seen).toHaveLength(1);
      },
    );
  });

  it('does not repeat a create without unique_id whose connection dropped, and says so', async () => {
    await scripted(
      () => ({ drop: true }),
      async (baseUrl, seen) => {
        const err = await failure(client(baseUrl).createMultistageTask(CREATE));
        expect(err).toMatchObject({ status: undefined, retryable: false, attempts: 1 });
        expect(err.message).toMatch(/^Scale create task failed after 1 attempt: network error \(UND_ERR_SOCKET\)$/);
        expect(seen).toHaveLength(1);
      },
    );
  });

  it('hands on a 409 to a create without unique_id as it came: there is nothing to look the task up by', async () => {
    await scripted(
      () => errorAnswer(409, 'The provided idempotency key or unique_id is already in use.'),
      async (baseUrl, seen) => {
        const err = await failure(client(baseUrl).createMultistageTask(CREATE));
        expect(err).toMatchObject({ operation: 'create task', status: 409, retryable: false, attempts: 1 });
        expect(err.message).toBe('Scale create task failed after 1 attempt: 409 The provided idempotency key or unique_id is already in use.');
        expect(seen.map(line)).toEqual(['POST /v1/task/multistage']);
      },
    );
  });
});

describe('which failures are tried again', () => {
  it('repeats a create without unique_id answered 429: the request was not processed', async () => {
    await scripted(
      (_seen, n) => (n === 1 ? errorAnswer(429, 'Too many requests') : taskAnswer({ task_id: 'after-429' })),
      async (baseUrl, seen) => {
        const notices: RetryNotice[] = [];
        const { task } = await client(baseUrl, {}, notices).createMultistageTask(CREATE);
        expect(task.task_id).toBe('after-429');
        expect(notices).toEqual([{ operation: 'create task', attempt: 1, delayMs: 5, reason: '429 Too many requests' }]);
        expect(seen).toHaveLength(2);
      },
    );
  });

  it('repeats a cancel answered 5xx, and retries without an onRetry callback', async () => {
    await scripted(
      (_seen, n) => (n === 1 ? errorAnswer(503, 'Busy') : taskAnswer({ status: 'canceled' })),
      async (baseUrl, seen) => {
        const quiet = new ScaleClient({ apiKey: API_KEY, baseUrl, retry: fastRetry, random: () => 0.5 });
        expect((await quiet.cancelTask('t1')).status).toBe('canceled');
        expect(seen).toHaveLength(2);
      },
    );
  });

  it('counts 429s against maxAttempts when there is no flow control to pace them', async () => {
    await scripted(
      () => errorAnswer(429, 'Too many requests'),
      async (baseUrl, seen) => {
        const notices: RetryNotice[] = [];
        const err = await failure(client(baseUrl, { retry: { ...fastRetry, maxAttempts: 2, maxRateLimitedAttempts: 5 } }, notices).getTask('t1'));
        expect(err.message).toBe('Scale get task failed after 2 attempts: 429 Too many requests; gave up after the maximum of 2 attempts');
        expect(seen).toHaveLength(2);
        // Without flow control a notice carries no rate.
        expect(notices).toEqual([{ operation: 'get task', attempt: 1, delayMs: 5, reason: '429 Too many requests' }]);
      },
    );
  });

  it('leaves the flow control’s rate alone on a 5xx, and counts it against maxAttempts', async () => {
    await scripted(
      () => errorAnswer(503, 'Busy'),
      async (baseUrl, seen) => {
        const flowControl = new FlowControl();
        const notices: RetryNotice[] = [];
        const err = await failure(client(baseUrl, { flowControl, retry: { ...fastRetry, maxAttempts: 2, maxRateLimitedAttempts: 5 } }, notices).getTask('t1'));
        expect(err.message).toBe('Scale get task failed after 2 attempts: 503 Busy; gave up after the maximum of 2 attempts');
        expect(seen).toHaveLength(2);
        expect(flowControl.state()).toMatchObject({ rate: null, rateLimited: 0, decreases: 0 });
        expect(notices).toEqual([{ operation: 'get task', attempt: 1, delayMs: 5, reason: '503 Busy', rate: null }]);
      },
    );
  });
});
