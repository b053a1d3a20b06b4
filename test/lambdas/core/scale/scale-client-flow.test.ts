import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ScaleClient, type RetryNotice, type ScaleClientOptions } from '../../../../lambdas/core/scale/client.js';
import { ScaleApiError } from '../../../../lambdas/core/scale/errors.js';
import { FlowControl, type RequestPacer } from '../../../../lambdas/core/scale/flow-control.js';
import type { CreateMultistageTaskRequest } from '../../../../lambdas/core/scale/schemas.js';
import { closedPort } from '../../../helpers/http.js';
import { startScaleSimulator, type ScaleSimulator } from '../../../../local/scale-simulator/server.js';

// The client with an instance's flow control, against the simulator's rate limit (real time, about a second each).

const API_KEY = 'live_0f3b9c2e7d4a4b1c8e6f5a2d9b7c3e1f';
const SCENE_URL = `http://127.0.0.1:${await closedPort()}/scene.sfs`;
const fastRetry = { baseDelayMs: 20, maxDelayMs: 200, attemptTimeoutMs: 2_000, maxElapsedMs: 10_000 };

let sim: ScaleSimulator;
beforeAll(async () => {
  sim = await startScaleSimulator({ apiKey: API_KEY, callbackAuthKey: 'cb-key', projects: ['lidar-project'], config: { downloadTimeoutMs: 200 } });
});
afterAll(() => sim.close());
afterEach(() => {
  sim.configure({ rateLimit: null });
});

const client = (overrides: Partial<ScaleClientOptions> = {}, notices: RetryNotice[] = []) =>
  new ScaleClient({ apiKey: API_KEY, baseUrl: sim.apiUrl, retry: fastRetry, onRetry: (n) => notices.push(n), ...overrides });
let seq = 0;
const request = (): CreateMultistageTaskRequest => ({ project: 'lidar-project', attachments: [SCENE_URL], scene_format: 'sensor_fusion', unique_id: `flow-${Date.now()}-${seq++}` });
const requestsSoFar = () => sim.state().requests.total;
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.unreachable('the call succeeded'),
    (err: unknown) => (expect(err).toBeInstanceOf(ScaleApiError), err as ScaleApiError),
  );
/** Lets the simulator's one-second window empty, and uses its one request of the next second. */
async function limitTo(requestsPerSecond: number, retryAfterSeconds: number | null) {
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  sim.configure({ rateLimit: { requestsPerSecond, retryAfterSeconds } });
  await client().getTask('0123456789abcdef01234567').catch(() => undefined);
}

describe('ScaleClient with flow control', () => {
  it('keeps the whole instance to Retry-After: a later call that cannot wait for it is not even sent', async () => {
    await limitTo(1, 9);
    const flowControl = new FlowControl();
    const first = await failure(client({ flowControl, deadline: Date.now() + 3_000 }).createMultistageTask(request()));
    // Only the rate limit stands in the way: the error says when a try may be made.
    expect(first).toMatchObject({ status: 429, retryable: true, attempts: 1, retryInMs: 9_000 });
    expect(flowControl.state()).toMatchObject({ rateLimited: 1, decreases: 1 });
    expect(Math.floor(flowControl.state().rate!)).toBe(1);

    const before = requestsSoFar();
    const second = await failure(client({ flowControl, deadline: Date.now() + 3_000 }).getTask('0123456789abcdef01234567'));
    expect(second).toMatchObject({ retryable: true, attempts: 0 });
    expect(second.retryInMs).toBeGreaterThan(8_000);
    expect(second.retryInMs).toBeLessThanOrEqual(9_000);
    expect(second.message).toMatch(/not sent: Scale's rate limit \(429, Retry-After 9000 ms, 1 requests\/s\)/);
    expect(requestsSoFar()).toBe(before);
  });

  it('says when to try again once the rate-limited attempts are spent', async () => {
    await limitTo(1, 2);
    const c = client({ flowControl: new FlowControl(), retry: { ...fastRetry, maxRateLimitedAttempts: 1 } });
    const err = await failure(c.createMultistageTask(request()));
    expect(err).toMatchObject({ status: 429, attempts: 1, retryInMs: 2_000 });
    expect(err.message).toContain('gave up after the maximum of 1 rate-limited attempts');
  });

  it('tells a call with no time left to wait for a turn only when its earlier turns took the time', async () => {
    // A pacer whose every turn comes 1.2 s after it is asked for: the first call's turn takes most of a 2.1 s budget.
    const slowTurns = {
      acquire: async () => (await new Promise((resolve) => setTimeout(resolve, 1_200)), { ok: true as const, permit: { sentAt: Date.now() } }),
      settle: () => undefined,
      state: () => ({ rate: 1, pausedUntil: 0, waiting: 0, decreases: 0, rateLimited: 0 }),
    } as RequestPacer;
    const c = client({ flowControl: slowTurns, deadline: Date.now() + 2_100 });
    await c.getTask('0123456789abcdef01234567').catch(() => undefined);
    const late = await failure(c.getTask('0123456789abcdef01234567'));
    expect(late).toMatchObject({ attempts: 0, retryInMs: 0, message: expect.stringContaining('not attempted: less than a second left') });
    // A limit in force, but the time went elsewhere (no turn was waited for): nothing says a turn is what is missing.
    const before = requestsSoFar();
    const elsewhere = await failure(client({ flowControl: new FlowControl().limitTo(5), deadline: Date.now() + 500 }).getTask('0123456789abcdef01234567'));
    expect(elsewhere).toMatchObject({ attempts: 0, message: expect.stringContaining('not attempted') });
    expect(elsewhere.retryInMs).toBeUndefined();
    expect((await failure(client({ deadline: Date.now() + 500 }).getTask('0123456789abcdef01234567'))).retryInMs).toBeUndefined();
    expect(requestsSoFar()).toBe(before);
  });

  it('does not spend the attempts on 429s: their retries are paced instead', async () => {
    await limitTo(1, null);
    const notices: RetryNotice[] = [];
    const limited = sim.state().requests.rateLimited;
    const c = client({ flowControl: new FlowControl(), retry: { ...fastRetry, maxAttempts: 1, maxRateLimitedAttempts: 5 } }, notices);
    const { task } = await c.createMultistageTask(request());
    expect(task.status).toBe('pending');
    expect(sim.state().requests.rateLimited).toBeGreaterThan(limited);
    // Paced at the share Scale let this client have: one request per second.
    expect(notices[0]).toMatchObject({ reason: '429 Too many requests, please slow down.' });
    expect(Math.floor(notices[0]!.rate!)).toBe(1);
  });

  it('still gives up after the most rate-limited attempts allowed, each one paced', async () => {
    // A server that refuses everything, Retry-After 0: only the count ends the call.
    let received = 0;
    const refusing = createServer((req, res) => {
      received++;
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' }).end(JSON.stringify({ status_code: 429, error: 'Too many requests' }));
    });
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    try {
      const baseUrl = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/v1`;
      // The times the flow control let each request go, on its own clock: when the server gets to them depends on load.
      const flowControl = new FlowControl();
      const grantedAt: number[] = [];
      const recording: RequestPacer = {
        acquire: async (latestStart) => {
          const turn = await flowControl.acquire(latestStart);
          if (turn.ok) grantedAt.push(turn.permit.sentAt);
          return turn;
        },
        settle: (permit, answer) => flowControl.settle(permit, answer),
        state: () => flowControl.state(),
      };
      const c = client({ baseUrl, flowControl: recording, retry: { ...fastRetry, maxRateLimitedAttempts: 3 } });
      const err = await failure(c.createMultistageTask(request()));
      expect(err).toMatchObject({ status: 429, retryable: true, attempts: 3 });
      expect(err.message).toContain('gave up after the maximum of 3 rate-limited attempts');
      expect(received).toBe(3);
      expect(grantedAt).toHaveLength(3);
      // Nothing accepted: one request per second at most, never back to back.
      expect(grantedAt[2]! - grantedAt[1]!).toBeGreaterThanOrEqual(1_000);
    } finally {
      refusing.closeAllConnections();
      await new Promise<void>((resolve) => refusing.close(() => resolve()));
    }
  });
});
