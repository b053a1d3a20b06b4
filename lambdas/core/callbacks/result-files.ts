import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type * as z from 'zod/mini';
import type { ResultFileSchema } from '../tasks/task-record.js';

/** A result file Scale's response referenced: where it was copied (with its size and digest), or why not. */
export type ResultFile = z.infer<typeof ResultFileSchema>;

export interface ResultFilePolicy {
  /** Hosts files may be fetched from (exact names); anything else is refused, so a response cannot make us fetch anywhere. */
  hosts: string[];
  /** Plain http is refused unless this is set (the local pipeline's simulator serves http on loopback). */
  allowHttp: boolean;
  maxBytes: number;
  /** Hosts that get Scale's API key (Secure Result URLs need it); no other host ever sees it. */
  scaleHosts: string[];
  timeoutMs: number;
}

/** Where copies go. */
export interface ResultFileStore {
  /** Stores a copy; `signal` aborts a write that outlives the policy's timeout or the deadline. */
  put(key: string, body: Uint8Array, contentType: string, signal: AbortSignal): Promise<{ bucket: string; key: string }>;
}

/** A failure worth retrying (network, timeout, 5xx): the callback's message comes back unless it is the last try. */
export class TransientResultFileError extends Error {
  override readonly name = 'TransientResultFileError';
}

/** At most this many result files are copied (and listed) per callback. */
export const MAX_RESULT_FILES = 20;

/**
 * The http(s) URLs in a response, fragments dropped, found by a bounded breadth-first walk (depth, nodes, count,
 * URL length): a hostile response costs little. Shallower URLs come first, so they are numbered first.
 */
export function findResultFileUrls(response: unknown, limit = 50): string[] {
  const found = new Set<string>();
  const queue: Array<{ value: unknown; depth: number }> = [{ value: response, depth: 0 }];
  for (let nodes = 0; nodes < queue.length && nodes < 20_000 && found.size < limit; nodes++) {
    const { value, depth } = queue[nodes]!;
    if (typeof value === 'string') {
      if (/^https?:\/\/[^\s]+$/i.test(value) && value.length <= 512) found.add(value.split('#')[0]!);
    } else if (value !== null && typeof value === 'object' && depth < 16) {
      for (const child of Object.values(value as Record<string, unknown>)) queue.push({ value: child, depth: depth + 1 });
    }
  }
  return [...found];
}

export interface CopyDeps {
  policy: ResultFilePolicy;
  store: ResultFileStore;
  /** Epoch ms by which copying must end (the invocation's time, less a reserve): no file outlives the function. */
  deadline?: number;
  /** Names this callback's copies (a digest of its body), so a stale or later callback never overwrites them. */
  version: string;
  apiKey?: () => Promise<string>;
  /** The last try: transient failures are then recorded instead of thrown, so the result itself is not lost. */
  lastAttempt: boolean;
  fetchImpl?: typeof fetch;
}

/**
 * Copies each allowed file (at most MAX_RESULT_FILES) to `results/<uniqueId>/<version>/…`; refused ones are listed
 * first-come, failures that will not heal are listed, and ones that may heal are thrown unless this is the last try.
 */
export async function copyResultFiles(uniqueId: string, urls: string[], deps: CopyDeps): Promise<ResultFile[]> {
  const files: ResultFile[] = [];
  let copied = 0;
  for (const [i, sourceUrl] of urls.entries()) {
    const refusal = refusalOf(sourceUrl, deps.policy) ?? (copied >= MAX_RESULT_FILES ? `not copied: more than ${MAX_RESULT_FILES} result files` : undefined);
    if (refusal) {
      if (files.length < MAX_RESULT_FILES + 10) files.push({ sourceUrl, error: refusal });
      continue;
    }
    copied++;
    try {
      const left = (deps.deadline ?? Infinity) - Date.now();
      if (left < 1_000) throw new TransientResultFileError('not copied: no time left in this invocation');
      files.push({ sourceUrl, ...(await copyOne(uniqueId, i, sourceUrl, deps)) });
    } catch (err) {
      if (err instanceof TransientResultFileError && !deps.lastAttempt) throw err;
      files.push({ sourceUrl, error: (err as Error).message.slice(0, 300) });
    }
  }
  return files;
}

function refusalOf(sourceUrl: string, policy: ResultFilePolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(sourceUrl);
  } catch {
    return 'not a URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) return `refused: ${url.protocol} (only https)`;
  if (url.username || url.password) return 'refused: credentials in the URL';
  if (!policy.hosts.includes(url.hostname)) return `refused: host ${url.hostname} is not in resultFileHosts`;
  return undefined;
}

async function copyOne(uniqueId: string, index: number, sourceUrl: string, deps: CopyDeps): Promise<Omit<ResultFile, 'sourceUrl'>> {
  const url = new URL(sourceUrl);
  const headers: Record<string, string> = {};
  // The key goes to Scale's own hosts only, and only when it is available.
  if (deps.apiKey && deps.policy.scaleHosts.includes(url.hostname)) headers.authorization = `Basic ${Buffer.from(`${await deps.apiKey()}:`).toString('base64')}`;
  let response: Response;
  try {
    // A redirect is answered, not followed: it could lead anywhere, and the allow-list is about where we fetch.
    response = await (deps.fetchImpl ?? fetch)(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(timeLeft(deps)) });
  } catch (err) {
    throw new TransientResultFileError(`fetching failed: ${whyFetchFailed(err)}`);
  }
  if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
    await response.body?.cancel();
    throw new Error(`refused: answered ${response.status}, a redirect to ${redirectHost(response.headers.get('location')!, url)}; redirects are not followed`);
  }
  if (response.status >= 500 || response.status === 429) {
    await response.body?.cancel();
    throw new TransientResultFileError(`fetching answered ${response.status}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`fetching answered ${response.status}`);
  }
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > deps.policy.maxBytes) {
    await response.body?.cancel();
    throw new Error(`${declared} bytes; at most ${deps.policy.maxBytes} are copied`);
  }
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  try {
    for await (const chunk of response.body ?? []) {
      bytes += chunk.length;
      if (bytes > deps.policy.maxBytes) throw new Error(`more than ${deps.policy.maxBytes} bytes; not copied`);
      chunks.push(chunk);
    }
  } catch (err) {
    // Too large stays too large; a connection cut or a timeout mid-body may heal.
    if ((err as Error).message.startsWith('more than')) throw err;
    throw new TransientResultFileError(`reading failed: ${(err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message}`);
  }
  const body = Buffer.concat(chunks, bytes);
  chunks.length = 0;
  const name = posix.basename(url.pathname).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || 'file';
  const key = `results/${uniqueId}/${deps.version}/${String(index).padStart(2, '0')}-${name}`;
  let stored: Awaited<ReturnType<CopyDeps['store']['put']>>;
  const storing = AbortSignal.timeout(timeLeft(deps));
  try {
    stored = await deps.store.put(key, body, response.headers.get('content-type') ?? 'application/octet-stream', storing);
  } catch (err) {
    // Our own bucket refusing a write (throttling, an outage, a policy being fixed) heals: try the callback again.
    // (The SDK reports an aborted request as its own AbortError.)
    const why = storing.aborted ? 'timed out' : `${(err as Error).name}: ${(err as Error).message}`;
    throw new TransientResultFileError(`storing failed: ${why}`);
  }
  return { ...stored, bytes, sha256: createHash('sha256').update(body).digest('hex') };
}

/** How long a fetch or a store may take: the policy's timeout, or less when the deadline comes first. */
const timeLeft = (deps: CopyDeps) => Math.max(1, Math.floor(Math.min(deps.policy.timeoutMs, (deps.deadline ?? Infinity) - Date.now())));

/** fetch's own error says only "fetch failed"; its cause says what (refused, reset, a bad port…). */
function whyFetchFailed(err: unknown): string {
  if ((err as Error).name === 'TimeoutError') return 'timed out';
  const cause = (err as { cause?: { message?: unknown } }).cause?.message;
  return typeof cause === 'string' && cause !== '' ? `${(err as Error).message} (${cause.slice(0, 200)})` : (err as Error).message;
}

/** Where a redirect points, for the error: its host only (the rest can be long, or carry a signature). */
function redirectHost(location: string, from: URL): string {
  try {
    return new URL(location, from).host.slice(0, 100) || '(no host)';
  } catch {
    return '(an unreadable location)';
  }
}
