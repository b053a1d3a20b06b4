import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { copyResultFiles, findResultFileUrls, TransientResultFileError, type CopyDeps, type ResultFilePolicy } from '../../../../lambdas/core/callbacks/result-files.js';
import { closedPort } from '../../../helpers/http.js';

// The edges of the result-file rules: the walk's bounds, what is refused, which answers heal, sizes, time, names.
const HELLO_SHA256 = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Answers by path; anything else is the 5 bytes "hello" with its length. Keeps the paths asked for. */
const asked: string[] = [];
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  asked.push(url.pathname);
  const status = /^\/status\/(\d+)$/.exec(url.pathname);
  if (status) return void res.writeHead(Number(status[1])).end(Number(status[1]) === 304 ? undefined : 'no');
  if (url.pathname === '/json') return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5' }).end('hello');
  if (url.pathname === '/redirect') return void res.writeHead(302, { location: '/moved-here' }).end();
  if (url.pathname === '/redirect-away') return void res.writeHead(307, { location: 'https://elsewhere.example/r.json?X-Amz-Signature=0123abcd' }).end();
  if (url.pathname === '/chunked') {
    // No content-length: only counting the bytes as they come shows the size.
    res.writeHead(200);
    for (let i = 0; i < 4; i++) res.write(Buffer.alloc(1024, 1));
    return void res.end();
  }
  if (url.pathname === '/slow') return void setTimeout(() => res.writeHead(200, { 'content-length': '5' }).end('hello'), 3_000).unref();
  if (url.pathname === '/cut') {
    res.writeHead(200, { 'content-length': '100' }).write('0123456789');
    return void setTimeout(() => res.destroy(), 50).unref();
  }
  if (url.pathname === '/stall') return void res.writeHead(200, { 'content-length': '100' }).write('0123456789');
  res.writeHead(200, { 'content-length': '5' }).end('hello');
});
let base: string;
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const policy = (overrides: Partial<ResultFilePolicy> = {}): ResultFilePolicy => ({ hosts: ['127.0.0.1'], allowHttp: true, maxBytes: 1024, scaleHosts: [], timeoutMs: 5_000, ...overrides });
function memoryStore() {
  const put: Array<{ key: string; bytes: number; contentType: string }> = [];
  return { put, store: { put: async (key: string, body: Uint8Array, contentType: string) => (put.push({ key, bytes: body.byteLength, contentType }), { bucket: 'results', key }) } };
}
const copy = (urls: string[], deps: Partial<CopyDeps> = {}) => copyResultFiles('sfs-1', urls, { policy: policy(), store: memoryStore().store, lastAttempt: true, version: 'v1', ...deps });
/** A fetch that answers "hello" and keeps what it was asked: how https hosts are reached without a certificate here. */
function fakeFetch() {
  const calls: Array<{ url: string; init: RequestInit | undefined }> = [];
  const fetchImpl = (async (url: Parameters<typeof fetch>[0], init?: RequestInit) => (calls.push({ url: String(url), init }), new Response('hello', { headers: { 'content-length': '5' } }))) as typeof fetch;
  return { calls, fetchImpl };
}

describe('findResultFileUrls: a bounded walk', () => {
  it('visits 20,000 nodes and no more', () => {
    const visited = Array.from({ length: 19_999 }, (_, i) => (i === 19_998 ? 'https://h/node-19999' : 'x'));
    expect(findResultFileUrls(visited)).toEqual(['https://h/node-19999']);
    const beyond = Array.from({ length: 20_000 }, (_, i) => (i === 19_999 ? 'https://h/node-20000' : 'x'));
    expect(findResultFileUrls(beyond)).toEqual([]);
  });

  it('goes 16 levels deep and no deeper', () => {
    const nested = (depth: number, value: unknown): unknown => (depth === 0 ? value : depth % 2 ? [nested(depth - 1, value)] : { k: nested(depth - 1, value) });
    expect(findResultFileUrls(nested(16, 'https://h/depth-16'))).toEqual(['https://h/depth-16']);
    expect(findResultFileUrls(nested(17, 'https://h/depth-17'))).toEqual([]);
  });

  it('takes URLs of up to 512 characters', () => {
    const at = `https://h/${'a'.repeat(502)}`;
    expect(at).toHaveLength(512);
    expect(findResultFileUrls({ at, over: `${at}b` })).toEqual([at]);
  });

  it('takes whole values that are http(s) URLs, in any case, and skips everything else', () => {
    const response = { a: 'see https://h/inside-text', b: 'https://h/then text', c: 'HTTPS://H/UPPER', d: null, e: 3, f: true, g: 'ftp://h/x', h: 'https://' };
    expect(findResultFileUrls(response)).toEqual(['HTTPS://H/UPPER']);
    expect(findResultFileUrls(undefined)).toEqual([]);
    expect(findResultFileUrls(null)).toEqual([]);
  });
});

describe('copyResultFiles: what is refused', () => {
  it('refuses other schemes, credentials of either kind, and text that is not a URL', async () => {
    const port = (server.address() as AddressInfo).port;
    const urls = [`ftp://127.0.0.1:${port}/x`, `http://user@127.0.0.1:${port}/x`, `http://:pw@127.0.0.1:${port}/x`, 'https://[::1'];
    expect(await copy(urls)).toEqual([
      { sourceUrl: urls[0], error: 'refused: ftp: (only https)' },
      { sourceUrl: urls[1], error: 'refused: credentials in the URL' },
      { sourceUrl: urls[2], error: 'refused: credentials in the URL' },
      { sourceUrl: urls[3], error: 'not a URL' },
    ]);
    expect(asked).not.toContain('/x');
  });

  it('lists at most 30 refused files', async () => {
    const urls = Array.from({ length: 35 }, (_, i) => `https://elsewhere.example/${i}`);
    const listed = await copy(urls);
    expect(listed).toHaveLength(30);
    expect(listed.at(-1)).toEqual({ sourceUrl: urls[29], error: 'refused: host elsewhere.example is not in resultFileHosts' });
  });

  it('fetches https from an allowed host, refusing redirects and bounding the wait', async () => {
    const { calls, fetchImpl } = fakeFetch();
    const copied = await copy(['https://results.example/a/r.json'], { policy: policy({ hosts: ['results.example'], allowHttp: false }), fetchImpl });
    expect(copied).toEqual([{ sourceUrl: 'https://results.example/a/r.json', bucket: 'results', key: 'results/sfs-1/v1/00-r.json', bytes: 5, sha256: HELLO_SHA256 }]);
    expect(calls.map((c) => [c.url, c.init?.redirect, c.init?.signal instanceof AbortSignal, c.init?.headers])).toEqual([['https://results.example/a/r.json', 'manual', true, {}]]);
  });

  it("sends no key to Scale's host when there is no key to send", async () => {
    const { calls, fetchImpl } = fakeFetch();
    expect(await copy(['https://api.scale.com/r.json'], { policy: policy({ hosts: ['api.scale.com'], scaleHosts: ['api.scale.com'] }), fetchImpl })).toMatchObject([{ bytes: 5 }]);
    expect(calls[0]!.init?.headers).toEqual({});
  });

  it('does not follow a redirect, and says so at once: asking again would be answered the same', async () => {
    const host = new URL(base).host;
    expect(await copy([`${base}/redirect`], { lastAttempt: false })).toEqual([{ sourceUrl: `${base}/redirect`, error: `refused: answered 302, a redirect to ${host}; redirects are not followed` }]);
    expect(asked).not.toContain('/moved-here');
  });

  it("names only a redirect's host: its query can carry a signature", async () => {
    const [file] = await copy([`${base}/redirect-away`]);
    expect(file).toEqual({ sourceUrl: `${base}/redirect-away`, error: 'refused: answered 307, a redirect to elsewhere.example; redirects are not followed' });
  });

});

describe('copyResultFiles: which answers may heal', () => {
  it.each([500, 429])('retries on %i, and records it on the last try', async (status) => {
    const url = `${base}/status/${status}`;
    await expect(copy([url], { lastAttempt: false })).rejects.toBeInstanceOf(TransientResultFileError);
    expect(await copy([url])).toEqual([{ sourceUrl: url, error: `fetching answered ${status}` }]);
  });

  it('retries when our own bucket refuses the copy (throttling, an outage), and records why on the last try', async () => {
    const url = `${base}/file.json`;
    const slowDown = { put: async () => Promise.reject(Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown' })) };
    await expect(copy([url], { store: slowDown, lastAttempt: false })).rejects.toThrow(new TransientResultFileError('storing failed: SlowDown: Please reduce your request rate.'));
    expect(await copy([url], { store: slowDown })).toEqual([{ sourceUrl: url, error: 'storing failed: SlowDown: Please reduce your request rate.' }]);
  });

  it('records an answer that is not a success without retrying it, even one without a body', async () => {
    const url = `${base}/status/304`;
    expect(await copy([url], { lastAttempt: false })).toEqual([{ sourceUrl: url, error: 'fetching answered 304' }]);
  });

  it('handles answers without a body, as a fetch may give them', async () => {
    const answer = (status: number, headers: Record<string, string> = {}) => (async () => new Response(null, { status, headers })) as typeof fetch;
    const url = `${base}/r.json`;
    await expect(copy([url], { fetchImpl: answer(503), lastAttempt: false })).rejects.toThrow('fetching answered 503');
    expect(await copy([url], { fetchImpl: answer(403) })).toEqual([{ sourceUrl: url, error: 'fetching answered 403' }]);
    expect(await copy([url], { fetchImpl: answer(200, { 'content-length': '5000' }) })).toEqual([{ sourceUrl: url, error: '5000 bytes; at most 1024 are copied' }]);
  });

  it('says why a fetch failed, and cuts a long reason to 300 characters', async () => {
    const closed = `http://127.0.0.1:${await closedPort()}/r.json`;
    // fetch's own message is only "fetch failed": the cause says what happened.
    expect(await copy([closed])).toEqual([{ sourceUrl: closed, error: `fetching failed: fetch failed (connect ECONNREFUSED ${new URL(closed).host})` }]);
    const fetchImpl = (async () => Promise.reject(new Error('x'.repeat(1_000)))) as typeof fetch;
    expect(await copy([`${base}/r.json`], { fetchImpl })).toEqual([{ sourceUrl: `${base}/r.json`, error: `fetching failed: ${'x'.repeat(283)}` }]);
    const longCause = (async () => Promise.reject(new TypeError('fetch failed', { cause: new Error('y'.repeat(1_000)) }))) as typeof fetch;
    expect(await copy([`${base}/r.json`], { fetchImpl: longCause })).toEqual([{ sourceUrl: `${base}/r.json`, error: `fetching failed: fetch failed (${'y'.repeat(200)})` }]);
  });
});

describe('copyResultFiles: sizes, names and time', () => {
  it('copies a file of exactly the allowed size, and refuses a larger one counted as it streams', async () => {
    expect(await copy([`${base}/five.bin`], { policy: policy({ maxBytes: 5 }) })).toMatchObject([{ bytes: 5, sha256: HELLO_SHA256 }]);
    // Too large will not heal: recorded even before the last try.
    expect(await copy([`${base}/chunked`], { lastAttempt: false })).toEqual([{ sourceUrl: `${base}/chunked`, error: 'more than 1024 bytes; not copied' }]);
  });

  it('copies an empty answer (204) as an empty file', async () => {
    expect(await copy([`${base}/status/204`])).toEqual([{ sourceUrl: `${base}/status/204`, bucket: 'results', key: 'results/sfs-1/v1/00-204', bytes: 0, sha256: EMPTY_SHA256 }]);
  });

  it('keeps the content type it was given, or says the bytes are opaque', async () => {
    const { put, store } = memoryStore();
    await copy([`${base}/json`, `${base}/plain.bin`], { store });
    expect(put.map((p) => p.contentType)).toEqual(['application/json', 'application/octet-stream']);
  });

  it('names copies by position and a safe, bounded form of the file name', async () => {
    const long = 'n'.repeat(150);
    const urls = [`${base}/r/scene%20one(1).json`, `${base}/`, ...Array.from({ length: 8 }, (_, i) => `${base}/f${i}`), `${base}/r/${long}`];
    const copied = await copy(urls);
    expect(copied.map((f) => f.key)).toEqual([
      'results/sfs-1/v1/00-scene_20one_1_.json',
      'results/sfs-1/v1/01-file',
      ...Array.from({ length: 8 }, (_, i) => `results/sfs-1/v1/0${i + 2}-f${i}`),
      `results/sfs-1/v1/10-${'n'.repeat(100)}`,
    ]);
  });

  it('starts a copy with a second left before the deadline, not with less', async () => {
    const now = Date.now();
    const clock = vi.spyOn(Date, 'now').mockReturnValue(now);
    try {
      const { fetchImpl } = fakeFetch();
      expect(await copy([`${base}/r.json`], { fetchImpl, deadline: now + 1_000 })).toMatchObject([{ bytes: 5 }]);
      expect(await copy([`${base}/r.json`], { fetchImpl, deadline: now + 999 })).toEqual([{ sourceUrl: `${base}/r.json`, error: 'not copied: no time left in this invocation' }]);
    } finally {
      clock.mockRestore();
    }
  });

  it('gives up waiting at the policy timeout, or at the deadline when that comes first', async () => {
    expect(await copy([`${base}/slow`], { policy: policy({ timeoutMs: 200 }) })).toEqual([{ sourceUrl: `${base}/slow`, error: 'fetching failed: timed out' }]);
    const timeouts = vi.spyOn(AbortSignal, 'timeout');
    try {
      expect(await copy([`${base}/slow`], { policy: policy({ timeoutMs: 60_000 }), deadline: Date.now() + 1_100 })).toEqual([{ sourceUrl: `${base}/slow`, error: 'fetching failed: timed out' }]);
      expect(timeouts).toHaveBeenCalledOnce();
      expect(timeouts.mock.calls[0]![0]).toBeGreaterThan(1_000);
      expect(timeouts.mock.calls[0]![0]).toBeLessThanOrEqual(1_100);
    } finally {
      timeouts.mockRestore();
    }
  });

  it('gives up on a store that does not answer, as something that may heal', async () => {
    const hanging = { put: (_key: string, _body: Uint8Array, _type: string, signal: AbortSignal) => new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' })))) };
    await expect(copy([`${base}/r.json`], { policy: policy({ timeoutMs: 200 }), store: hanging, lastAttempt: false })).rejects.toThrow(new TransientResultFileError('storing failed: timed out'));
    expect(await copy([`${base}/r.json`], { policy: policy({ timeoutMs: 200 }), store: hanging })).toEqual([{ sourceUrl: `${base}/r.json`, error: 'storing failed: timed out' }]);
  });

  it('gives up on a body that stops coming, as something that may heal', async () => {
    await expect(copy([`${base}/stall`], { policy: policy({ timeoutMs: 300 }), lastAttempt: false })).rejects.toBeInstanceOf(TransientResultFileError);
    expect(await copy([`${base}/stall`], { policy: policy({ timeoutMs: 300 }) })).toEqual([{ sourceUrl: `${base}/stall`, error: 'reading failed: timed out' }]);
  });

  it('says a body cut off mid-way was cut, not timed out, and retries it', async () => {
    await expect(copy([`${base}/cut`], { lastAttempt: false })).rejects.toMatchObject({ name: 'TransientResultFileError', message: 'reading failed: terminated' });
    expect(await copy([`${base}/cut`])).toEqual([{ sourceUrl: `${base}/cut`, error: 'reading failed: terminated' }]);
  });
});
