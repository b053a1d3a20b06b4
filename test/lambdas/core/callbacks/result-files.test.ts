import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyResultFiles, findResultFileUrls, TransientResultFileError, type ResultFilePolicy } from '../../../../lambdas/core/callbacks/result-files.js';
import { startFileServer, startRecorder } from '../../../helpers/http.js';

const annotations = Buffer.from(JSON.stringify({ cuboids: [{ id: 1, label: 'car' }] }));
const big = Buffer.alloc(4096, 7);
let files: Awaited<ReturnType<typeof startFileServer>>;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
beforeAll(async () => {
  files = await startFileServer({ '/r/annotations.json': annotations, '/r/big.bin': big }, { '/r/broken.json': 503, '/r/gone.json': 404 });
  recorder = await startRecorder();
});
afterAll(async () => {
  await files.close();
  await recorder.close();
});

const policy = (overrides: Partial<ResultFilePolicy> = {}): ResultFilePolicy => ({ hosts: ['127.0.0.1'], allowHttp: true, maxBytes: 1024, scaleHosts: [], timeoutMs: 5_000, ...overrides });
function memoryStore() {
  const stored = new Map<string, Buffer>();
  return { stored, put: async (key: string, body: Uint8Array) => (stored.set(key, Buffer.from(body)), { bucket: 'results', key }) };
}

describe('result files', () => {
  it('finds the URLs in a response, in document order, fragments dropped, by a bounded walk', () => {
    const response = { annotations: { url: 'https://scaleapi-results.s3.amazonaws.com/a.json' }, frames: [{ image: 'http://x/1.png' }, { image: 'http://x/1.png#again' }], note: 'not a url' };
    expect(findResultFileUrls(response)).toEqual(['https://scaleapi-results.s3.amazonaws.com/a.json', 'http://x/1.png']);
    const many = { list: Array.from({ length: 1_000 }, (_, i) => `https://h/${i}`) };
    expect(findResultFileUrls(many)).toEqual(Array.from({ length: 50 }, (_, i) => `https://h/${i}`));
    let deep: unknown = 'https://h/deep';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(findResultFileUrls(deep)).toEqual([]);
  });

  it('copies allowed files home with their size and sha256, and says why it did not copy the others', async () => {
    const store = memoryStore();
    const urls = [`${files.url}/r/annotations.json`, 'https://elsewhere.example/r/x.json', `${files.url}/r/big.bin`, `${files.url}/r/gone.json`];
    const copied = await copyResultFiles('sfs-1', urls, { policy: policy(), store, lastAttempt: false, version: 'v1' });
    expect(copied).toEqual([
      { sourceUrl: urls[0], bucket: 'results', key: 'results/sfs-1/v1/00-annotations.json', bytes: annotations.length, sha256: createHash('sha256').update(annotations).digest('hex') },
      { sourceUrl: urls[1], error: 'refused: host elsewhere.example is not in resultFileHosts' },
      { sourceUrl: urls[2], error: '4096 bytes; at most 1024 are copied' },
      { sourceUrl: urls[3], error: 'fetching answered 404' },
    ]);
    expect(store.stored.get('results/sfs-1/v1/00-annotations.json')?.equals(annotations)).toBe(true);
    expect(await copyResultFiles('sfs-1', [`${files.url}/r/annotations.json`], { policy: policy({ allowHttp: false }), store, lastAttempt: false, version: 'v1' })).toEqual([
      { sourceUrl: `${files.url}/r/annotations.json`, error: 'refused: http: (only https)' },
    ]);
  });

  it('retries a file that may heal (5xx), and on the last try records it instead of losing the result', async () => {
    const store = memoryStore();
    const url = `${files.url}/r/broken.json`;
    await expect(copyResultFiles('sfs-2', [url], { policy: policy(), store, lastAttempt: false, version: 'v1' })).rejects.toBeInstanceOf(TransientResultFileError);
    expect(await copyResultFiles('sfs-2', [url], { policy: policy(), store, lastAttempt: true, version: 'v1' })).toEqual([{ sourceUrl: url, error: 'fetching answered 503' }]);
  });

  it('copies at most 20 files, refuses credentials in URLs, and treats a body cut off as something that may heal', async () => {
    const store = memoryStore();
    const urls = [`http://user:pw@127.0.0.1:9/x`, ...Array.from({ length: 21 }, (_, i) => `${files.url}/r/annotations.json?n=${i}`)];
    const copied = await copyResultFiles('sfs-4', urls, { policy: policy(), store, lastAttempt: false, version: 'v1' });
    expect(copied[0]).toEqual({ sourceUrl: urls[0], error: 'refused: credentials in the URL' });
    expect(copied.filter((f) => f.key)).toHaveLength(20);
    expect(copied.at(-1)).toEqual({ sourceUrl: urls[21], error: 'not copied: more than 20 result files' });
    // A server that promises 1000 bytes and hangs up after 10.
    const cut = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('0123456789', () => res.socket?.destroy());
    });
    await new Promise<void>((resolve) => cut.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(cut.address() as AddressInfo).port}/r/cut.json`;
    await expect(copyResultFiles('sfs-4', [url], { policy: policy(), store, lastAttempt: false, version: 'v1' })).rejects.toBeInstanceOf(TransientResultFileError);
    cut.close();
    // No time left in the invocation: nothing is fetched; on the last try the file is listed as not copied.
    expect(await copyResultFiles('sfs-4', [`${files.url}/r/annotations.json`], { policy: policy(), store, lastAttempt: true, version: 'v2', deadline: Date.now() + 500 })).toEqual([
      { sourceUrl: `${files.url}/r/annotations.json`, error: 'not copied: no time left in this invocation' },
    ]);
  });

  it("sends Scale's API key to Scale's own hosts only", async () => {
    const store = memoryStore();
    const apiKey = async () => 'live_result_key';
    await copyResultFiles('sfs-3', [`${recorder.url}/r/secure.json`], { policy: policy(), store, lastAttempt: true, version: 'v1', apiKey });
    await copyResultFiles('sfs-3', [`${recorder.url}/r/secure.json`], { policy: policy({ scaleHosts: ['127.0.0.1'] }), store, lastAttempt: true, version: 'v1', apiKey });
    expect(recorder.received.map((r) => r.headers.authorization)).toEqual([undefined, `Basic ${Buffer.from('live_result_key:').toString('base64')}`]);
  });
});
