import type { APIGatewayProxyResult } from 'aws-lambda';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { callbackEvent } from './events.js';

/** API Gateway's REST payload limit. */
const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

/**
 * The callback API as API Gateway runs it: POST /callback with the required `ref` and `sig` query parameters
 * (the stack's request validator), turned into a proxy event for the function and its result into the answer.
 */
export async function startApiFront(invoke: (event: ReturnType<typeof callbackEvent>) => Promise<APIGatewayProxyResult>) {
  const server = createServer(async (req, res) => {
    const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const url = new URL(req.url ?? '/', 'http://api');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size <= MAX_PAYLOAD_BYTES) chunks.push(chunk as Buffer);
    }
    if (url.pathname !== '/callback' || req.method !== 'POST') return send(403, { message: 'Missing Authentication Token' });
    if (size > MAX_PAYLOAD_BYTES) return send(413, { message: 'Request Too Long' });
    const missing = ['ref', 'sig'].filter((p) => !url.searchParams.get(p));
    if (missing.length > 0) return send(400, { message: `Missing required request parameters: [${missing.join(', ')}]` });

    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]));
    try {
      const result = await invoke(
        callbackEvent({ body: Buffer.concat(chunks).toString('utf8'), headers, query: Object.fromEntries(url.searchParams), sourceIp: req.socket.remoteAddress ?? '127.0.0.1' }),
      );
      res.writeHead(result.statusCode, result.headers as Record<string, string>).end(result.body);
    } catch {
      // What API Gateway answers when the integration fails.
      send(502, { message: 'Internal server error' });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
