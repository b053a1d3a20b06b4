import { afterEach, describe, expect, it, vi } from 'vitest';
import { ScaleClient, type RetryNotice, type ScaleClientOptions } from '../../../../lambdas/core/scale/client.js';
import { FlowControl, type FlowClock } from '../../../../lambdas/core/scale/flow-control.js';
import { errorAnswer, failure, scripted, taskAnswer } from './scripted-scale.js';

// The time rules of a call at their boundaries: the least time worth starting, the attempt timeout clipped to the
// deadline, a retry that must leave a second before the deadline, and Retry-After waited out once.

const API_KEY = 'live_2e8b4d6f0a1c3e5b7d9f1a3c5e7b9d0f';
const fastRetry = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 40, attemptTimeoutMs: 2_000, maxElapsedMs: 10_000 };

const client = (baseUrl: string, overrides: Partial<ScaleClientOptions> = {}, notices: RetryNotice[] = []) =>
  new ScaleClient({ apiKey: API_KEY, baseUrl, retry: fastRetry, random: () => 0.5, onRetry: (n) => notices.push(n), ...overrides });

/** Flow-control time that passes only by its own waits, at once: its pacing costs the test nothing. */
class InstantClock implements FlowClock {
  constructor(private time = Date.now()) {}
  now() {
    return this.time;
  }
  sleep(ms: number) {
    this.time += Math.max(0, ms);
    return Promise.resolve();
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the least time worth starting a request', () => {
  it('is one second: a budget of exactly 1,000 ms is used, 999 ms is not', async () => {
    await scripted(
      () => taskAnswer(),
      async (baseUrl, seen) => {
        expect((await client(baseUrl, { retry: { ...fastRetry, maxElapsedMs: 1_000 } }).getTask('t1')).task_id).toBe('task-1');
        const err = await failure(client(baseUrl, { retry: { ...fastRetry, maxElapsedMs: 999 } }).getTask('t1'));
        expect(err).toMatchObject({ operation: 'get task', retryable: true, attempts: 0 });
        expect(err.message).toBe('Scale get task failed after 0 attempts: not attempted: less than a second left before the deadline');
        expect(seen).toHaveLength(1);
      },
    );
  });
});

describe('one attempt’s timeout', () => {
  it('is cut to what is left before the deadline', async () => {
    await scripted(
      () => ({ ...taskAnswer(), delayMs: 2_500 }),
      async (baseUrl) => {
        const started = Date.now();
        const c = client(baseUrl, { retry: { ...fastRetry, attemptTimeoutMs: 5_000, maxAttempts: 1 }, deadline: started + 1_150 });
        const err = await failure(c.getTask('t1'));
        expect(err.message).toMatch(/no answer within 1\d\d\d ms \(timed out\)/);
        expect(Date.now() - started).toBeLessThan(2_000);
      },
    );
  });
});

describe('a retry must leave a second before the deadline', () => {
  // Date is frozen (timers stay real): the budget arithmetic is exact to the millisecond.
  const refusedOnce = (_seen: unknown, n: number) => (n === 1 ? errorAnswer(429, 'Too many requests', { 'retry-after': '1' }) : taskAnswer({ task_id: 'after-wait' }));
  // Retry-After 1 s capped to 10 ms: the wait and the next attempt's second need 1,010 ms.
  const capped = { ...fastRetry, maxRetryAfterMs: 10 };

  it('retries when the wait and one more second fit the budget exactly', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    await scripted(refusedOnce, async (baseUrl, seen) => {
      const notices: RetryNotice[] = [];
      const { task } = await client(baseUrl, { retry: { ...capped, maxElapsedMs: 1_010 } }, notices).createMultistageTask({
        project: 'p',
        attachments: ['http://127.0.0.1:9/s.sfs'],
        scene_format: 'sensor_fusion',
      });
      expect(task.task_id).toBe('after-wait');
      expect(notices.map((n) => n.delayMs)).toEqual([10]);
      expect(seen).toHaveLength(2);
    });
  });

  it('gives up a millisecond short, naming the budget', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    await scripted(refusedOnce, async (baseUrl, seen) => {
      const err = await failure(client(baseUrl, { retry: { ...capped, maxElapsedMs: 1_009 } }).getTask('t1'));
      expect(err).toMatchObject({ status: 429, retryable: true, attempts: 1 });
      expect(err.message).toBe('Scale get task failed after 1 attempt: 429 Too many requests; gave up: the next try would pass the deadline (1009 ms budget)');
      expect(seen).toHaveLength(1);
    });
  });
});

describe('with flow control', () => {
  it('waits out Retry-After once, in the client: the flow control holds the instance no longer than that', async () => {
    await scripted(
      (_seen, n) => (n === 1 ? errorAnswer(429, 'Too many requests', { 'retry-after': '1' }) : taskAnswer({ task_id: 'after-wait' })),
      async (baseUrl, seen) => {
        // The flow control on real time: its pause and the client's wait run side by side.
        const flowControl = new FlowControl();
        const started = Date.now();
        const notices: RetryNotice[] = [];
        expect((await client(baseUrl, { flowControl }, notices).getTask('t1')).task_id).toBe('after-wait');
        expect(flowControl.state()).toMatchObject({ rateLimited: 1, decreases: 1 });
        expect(notices.map((n) => n.delayMs)).toEqual([1_000]);
        // Once: the retry went after the second's wait and the pace of one request a second (a window and its
        // 50 ms margin after the refused one), not after two waits.
        const elapsed = Date.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(1_000);
        expect(elapsed).toBeLessThan(1_900);
        expect(seen).toHaveLength(2);
      },
    );
  });

  it('still backs off with jitter after a 429 without Retry-After, on top of the pace', async () => {
    await scripted(
      (_seen, n) => (n === 1 ? errorAnswer(429, 'Too many requests') : taskAnswer({ task_id: 'after-wait' })),
      async (baseUrl) => {
        const flowControl = new FlowControl({ clock: new InstantClock() });
        const started = Date.now();
        const c = client(baseUrl, { flowControl, random: () => 0.999, retry: { ...fastRetry, baseDelayMs: 400, maxDelayMs: 400 } });
        expect((await c.getTask('t1')).task_id).toBe('after-wait');
        expect(Date.now() - started).toBeGreaterThanOrEqual(390);
      },
    );
  });

  it('refuses at once a turn that would come later than a second before the deadline', async () => {
    await scripted(
      () => taskAnswer(),
      async (baseUrl, seen) => {
        const clock = new InstantClock();
        const flowControl = new FlowControl({ clock });
        // A 429 of this instance, 1.5 s ago in the flow control's time, holds every request 1.5 s.
        const turn = await flowControl.acquire(Infinity);
        if (!turn.ok) throw new Error(turn.reason);
        flowControl.settle(turn.permit, { rateLimited: true, retryAfterMs: 1_500 });
        // 2.2 s left: the turn (in 1.5 s) comes 0.7 s before the deadline, less than the second a request needs.
        const err = await failure(client(baseUrl, { flowControl, deadline: Date.now() + 2_200 }).getTask('t1'));
        expect(err).toMatchObject({ operation: 'get task', retryable: true, attempts: 0 });
        expect(err.message).toMatch(/^Scale get task failed after 0 attempts: not sent: Scale's rate limit \(429, Retry-After 1500 ms, 1 requests\/s\)/);
        expect(seen).toHaveLength(0);
        // With 2.6 s left it fits, and is sent when the pause is over.
        expect((await client(baseUrl, { flowControl, deadline: Date.now() + 2_600 }).getTask('t1')).task_id).toBe('task-1');
        expect(seen).toHaveLength(1);
      },
    );
  });
});
