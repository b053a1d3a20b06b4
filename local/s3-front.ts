import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkPresignedRequest, isPresigned, type Credentials } from './presign-check.js';

/**
 * A reverse proxy in front of s3rver that checks presigned URLs as S3 does (s3rver checks expiry, not
 * signatures): a tampered or wrongly signed URL gets 403 SignatureDoesNotMatch. It also notes completed multipart
 * uploads, because s3rver reports them as a plain POST.
 */
export async function startS3Front(options: { target: string; credentials: Credentials }) {
  const target = new URL(options.target);
  const multipartCompletions = new Set<string>();
  // Our own agent, so closing the front also closes its connections to s3rver (which otherwise waits for them).
  const agent = new Agent({ keepAlive: true });

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/xml' }).end(s3Error('InternalError', (err as Error).message));
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = req.headers.host ?? '';
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (isPresigned(url)) {
      const check = await checkPresignedRequest(req.method ?? 'GET', url, host, options.credentials);
      if (!check.ok) {
        req.resume();
        res.writeHead(403, { 'content-type': 'application/xml' }).end(s3Error(check.code, check.message));
        return;
      }
    }
    if (req.method === 'POST' && url.searchParams.has('uploadId')) multipartCompletions.add(decodeURIComponent(url.pathname));

    const upstream = httpRequest(
      { agent, hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    // A client that stops reading (a ranged header read, a dropped download) stops the upstream transfer too.
    res.on('close', () => upstream.destroy());
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/xml' }).end(s3Error('ServiceUnavailable', err.message));
      else res.destroy();
    });
    req.pipe(upstream);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** True (once) if `/bucket/key` was just completed by a multipart upload. */
    takeMultipartCompletion: (bucket: string, key: string) => multipartCompletions.delete(`/${bucket}/${key}`),
    close: async () => {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function s3Error(code: string, message: string): string {
  const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escape(message)}</Message></Error>`;
}
