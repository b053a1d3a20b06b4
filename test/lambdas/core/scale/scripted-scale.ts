import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { ScaleApiError } from '../../../../lambdas/core/scale/errors.js';

/** One request as the scripted server received it. */
export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** What to answer: a status with a JSON (or raw text) body, or `drop` to close the connection unanswered. */
export type Answer =
  | { status: number; headers?: Record<string, string>; body?: unknown; text?: string; delayMs?: number }
  | { drop: true };

/**
 * A stand-in for Scale's API on 127.0.0.1 that answers the n-th request (1-based) as `script` says and records
 * every request, for answers the simulator cannot give. Stopped (connections closed) when `run` ends.
 */
export async function scripted(script: (seen: Seen, n: number) => Answer, run: (baseUrl: string, seen: Seen[]) => Promise<void>): Promise<void> {
  const seen: Seen[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
    seen.push(request);
    const answer = script(request, seen.length);
    if ('drop' in answer) {
      req.socket.destroy();
      return;
    }
    if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
    if (res.destroyed) return;
    const text = answer.text ?? (answer.body === undefined ? '' : JSON.stringify(answer.body));
    res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(text);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A task answer (200). */
export const taskAnswer = (fields: Record<string, unknown> = {}): Answer => ({ status: 200, body: { task_id: 'task-1', status: 'pending', type: 'multistage', ...fields } });

/** Scale's error answer, `{"status_code": …, "error": …}`. */
export const errorAnswer = (status: number, error: string, headers?: Record<string, string>): Answer => ({ status, headers, body: { status_code: status, error } });

/** The ScaleApiError a call failed with; the test fails if the call succeeded or failed some other way. */
export async function failure(promise: Promise<unknown>): Promise<ScaleApiError> {
  const err = await promise.then(
    (value) => expect.fail(`the call was expected to fail, got ${JSON.stringify(value)}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ScaleApiError);
  return err as ScaleApiError;
}
