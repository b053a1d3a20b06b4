import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** An HTTP endpoint that records what is POSTed to it; `statusFor(n)` picks the answer to the n-th call (1-based). */
export async function startRecorder(statusFor: (n: number) => number = () => 200) {
  const received: ReceivedRequest[] = [];
  let calls = 0;
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    calls++;
    const status = statusFor(calls);
    if (status >= 200 && status < 300) received.push({ path: req.url ?? '', headers: req.headers, body: text ? JSON.parse(text) : undefined });
    res.writeHead(status).end();
  });
  const url = await listen(server);
  return { url, received, calls: () => calls, close: () => stop(server) };
}

/** Serves fixed bytes per path (404 otherwise); `statusOverride` answers a path with a status instead. */
export async function startFileServer(files: Record<string, Uint8Array>, statusOverride: Record<string, number> = {}) {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const override = statusOverride[path];
    if (override) return void res.writeHead(override, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code></Error>');
    const file = files[path];
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': String(file.length) }).end(file);
  });
  const url = await listen(server);
  return { url, close: () => stop(server) };
}

/** Polls until `check` returns a value (not undefined) or the time runs out. */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A loopback port that nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
