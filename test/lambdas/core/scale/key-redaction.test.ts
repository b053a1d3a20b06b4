import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ScaleClient, type RetryNotice } from '../../../../lambdas/core/scale/client.js';
import { startScaleSimulator, type ScaleSimulator } from '../../../../local/scale-simulator/server.js';

// The simulator plays a careless server (echoAuthorization): every error answer repeats the Authorization header
// and the API key decoded from it. Whatever the status, the key must not reach what the client hands on: the
// thrown error (message, properties, cause chain) and the notices its onRetry callback receives.
const API_KEY = 'live_9e4b7c1a3f6d8e2b5a0c7f4d1e9b3a6c';
const WRONG_KEY = 'live_0a1b2c3d4e5f60718293a4b5c6d7e8f9';
const basicOf = (key: string) => Buffer.from(`${key}:`).toString('base64');
// Nothing listens there, and no task gets far enough to fetch it: these tests are about answers to the API calls.
const SCENE = 'http://127.0.0.1:9/scene.sfs';
const fastRetry = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, attemptTimeoutMs: 2_000, maxElapsedMs: 10_000 };

let sim: ScaleSimulator;
beforeAll(async () => {
  sim = await startScaleSimulator({ apiKey: API_KEY, callbackAuthKey: 'unused', projects: ['p'], config: { echoAuthorization: true, startDelayMs: 60_000 } });
});
afterAll(() => sim?.close());
afterEach(() => {
  sim.configure({ refuseApiKey: null, rateLimit: null, failNextRequests: 0, serverErrorStatus: 503, echoAuthorization: true });
});

/** Runs a call that must fail, with the notices its client's onRetry received. */
async function failing(call: (client: ScaleClient) => Promise<unknown>, apiKey = API_KEY) {
  const notices: RetryNotice[] = [];
  const client = new ScaleClient({ apiKey, baseUrl: sim.apiUrl, retry: fastRetry, onRetry: (n) => notices.push(n) });
  const error = await call(client).then(
    () => expect.fail('the call was expected to fail'),
    (err: unknown) => err,
  );
  return { error: error as Error & { scaleMessage?: string; status?: number }, notices };
}

/** Every place the key could show, rendered as text, with its name. */
function placesOf(error: unknown, notices: RetryNotice[]): Array<[string, string]> {
  const places: Array<[string, string]> = [];
  const seen = new Set<unknown>();
  let depth = 0;
  for (let e: unknown = error; e !== null && e !== undefined && !seen.has(e); e = (e as { cause?: unknown }).cause, depth++) {
    seen.add(e);
    const where = depth === 0 ? 'the error' : `cause #${depth}`;
    places.push([`${where}: message`, e instanceof Error ? e.message : String(e)]);
    places.push([`${where}: stack`, e instanceof Error ? (e.stack ?? '') : '']);
    places.push([`${where}: properties`, JSON.stringify(Object.entries(e as object))]);
  }
  places.push(['util.inspect of the error', inspect(error, { depth: 20, showHidden: true })]);
  places.push(['the onRetry notices', JSON.stringify(notices)]);
  return places;
}

/** Where the key or its basic-auth form shows, e.g. "the key in cause #1: message"; empty when nowhere. */
function leaks(error: unknown, notices: RetryNotice[], apiKey = API_KEY): string[] {
  const forms: Array<[string, string]> = [['the key', apiKey], ['its base64 basic-auth form', basicOf(apiKey)]];
  return placesOf(error, notices).flatMap(([where, text]) => forms.filter(([, secret]) => text.includes(secret)).map(([what]) => `${what} in ${where}`));
}

const KEY_MUST_NOT_LEAK = 'the API key (or its base64 basic-auth form) reached an error or an onRetry notice';
/** The echo reached the client (so the test is not passing because the careless text never arrived). */
const ECHO = 'Request with Authorization "Basic ';

describe('the API key stays out of errors when the server echoes it', () => {
  it('has a simulator that does echo the key, in the error text and as fields, only when asked', async () => {
    const get = async () => (await fetch(`${sim.apiUrl}/task/no-such-task`, { headers: { authorization: `Basic ${basicOf(API_KEY)}` } })).json();
    expect(await get()).toEqual({
      status_code: 404,
      error: `Request with Authorization "Basic ${basicOf(API_KEY)}", API key "${API_KEY}": Task no-such-task not found.`,
      authorization: `Basic ${basicOf(API_KEY)}`,
      api_key: API_KEY,
    });
    sim.configure({ echoAuthorization: false });
    expect(await get()).toEqual({ status_code: 404, error: 'Task no-such-task not found.' });
  });

  it.each([401, 403] as const)('keeps it out of a %i refusal of the key', async (status) => {
    sim.configure({ refuseApiKey: status });
    const { error, notices } = await failing((client) => client.getTask('any-task'));
    expect(error.status).toBe(status);
    expect(error.scaleMessage).toContain(ECHO);
    expect(leaks(error, notices), KEY_MUST_NOT_LEAK).toEqual([]);
  });

  it('keeps a wrong key out of the 401 that echoes it', async () => {
    const { error, notices } = await failing((client) => client.listTasks({ project: 'p' }), WRONG_KEY);
    expect(error.status).toBe(401);
    expect(error.scaleMessage).toContain(ECHO);
    expect(leaks(error, notices, WRONG_KEY), KEY_MUST_NOT_LEAK).toEqual([]);
  });

  it('keeps it out of a 404 and of a 400 to a create request', async () => {
    const missing = await failing((client) => client.getTask('no-such-task'));
    expect(missing.error.status).toBe(404);
    const refused = await failing((client) =>
      client.createMultistageTask({ project: 'no-such-project', attachments: [SCENE], scene_format: 'sensor_fusion', unique_id: 'redaction-400' }),
    );
    expect(refused.error.status).toBe(400);
    for (const { error, notices } of [missing, refused]) {
      expect(error.scaleMessage).toContain(ECHO);
      expect(leaks(error, notices), KEY_MUST_NOT_LEAK).toEqual([]);
    }
  });

  it('keeps it out of every onRetry notice and the final error when 5xx answers run out the attempts', async () => {
    sim.configure({ failNextRequests: 10, serverErrorStatus: 503 });
    const { error, notices } = await failing((client) => client.listTasks({ project: 'p' }));
    expect(error.status).toBe(503);
    expect(notices).toHaveLength(2);
    for (const notice of notices) expect(notice.reason).toContain(ECHO);
    expect(leaks(error, notices), KEY_MUST_NOT_LEAK).toEqual([]);
  });

  it('keeps it out of every onRetry notice and the final error when 429 answers run out the attempts', async () => {
    sim.configure({ rateLimit: { requestsPerSecond: 1, retryAfterSeconds: null } });
    // Takes the one request of this second: every call of the client within it is answered 429.
    await fetch(`${sim.apiUrl}/tasks?project=p`, { headers: { authorization: `Basic ${basicOf(API_KEY)}` } });
    const { error, notices } = await failing((client) => client.getTask('any-task'));
    expect(error.status).toBe(429);
    expect(notices.length).toBeGreaterThan(0);
    for (const notice of notices) expect(notice.reason).toContain(ECHO);
    expect(leaks(error, notices), KEY_MUST_NOT_LEAK).toEqual([]);
  });
});

describe('a key escaped inside a JSON error body', () => {
  it('is redacted once the body is decoded too (test\\u005f… is the key in JSON)', async () => {
    const escaped = API_KEY.replace('_', '\\u005f');
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(403, { 'content-type': 'application/json' }).end(`{"error":"denied for ${escaped}"}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const client = new ScaleClient({ apiKey: API_KEY, baseUrl: `http://127.0.0.1:${port}/v1`, retry: { ...fastRetry, maxAttempts: 1 } });
      const error = (await client.getTask('t-1').then(
        () => expect.fail('a 403 must fail'),
        (err: unknown) => err,
      )) as Error & { scaleMessage?: string };
      // The decoded message arrived (the escape was undone), and the key in it is gone.
      expect(error.scaleMessage).toBe('denied for [redacted]');
      expect(leaks(error, [])).toEqual([]);
    } finally {
      server.close();
    }
  });
});
