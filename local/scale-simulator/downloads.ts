import { itemsOutsideFile, readSceneHeader } from './scene-header.js';

/** Fetching for the simulator: attachments and callbacks go to loopback addresses only, each attempt time-boxed. */

export interface DownloadOutcome {
  url: string;
  statusCode?: number;
  bytes?: number;
  error?: string;
}

export interface SceneFacts {
  frames: number;
  sensors: number;
  bytes: number;
}

/** Downloads one attachment as Scale would, reading what it can of the scene; `signal` ends it early. */
export async function downloadAttachment(
  url: string,
  format: string,
  facts: SceneFacts,
  options: { signal: AbortSignal; timeoutMs: number },
): Promise<{ download: DownloadOutcome; unreadable?: string }> {
  const { signal, done } = attemptSignal(options.signal, options.timeoutMs);
  try {
    return await downloadWith(url, format, signal, facts);
  } finally {
    done();
  }
}

/** A signal that fires when `outer` does (shutdown, cancel) or after `timeoutMs`; `done` detaches it from `outer`. */
export function attemptSignal(outer: AbortSignal, timeoutMs: number): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(outer.reason);
  if (outer.aborted) onOuterAbort();
  else outer.addEventListener('abort', onOuterAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new DOMException('timed out', 'TimeoutError')), timeoutMs);
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      outer.removeEventListener('abort', onOuterAbort);
    },
  };
}

/** The simulator only ever reaches this machine: a test or demo can never make it call out. */
export function isLoopbackUrl(url: string): boolean {
  try {
    const { hostname } = new URL(url);
    return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
  } catch {
    return false;
  }
}

async function downloadWith(url: string, format: string, signal: AbortSignal, facts: SceneFacts): Promise<{ download: DownloadOutcome; unreadable?: string }> {
  if (!isLoopbackUrl(url)) return { download: { url, error: 'refused: the simulator only downloads from loopback addresses' } };
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (err) {
    return { download: { url, error: describeFetchError(err) } };
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    return { download: { url, statusCode: response.status } };
  }
  const counted = countingIterator(response.body);
  try {
    let unreadable: string | undefined;
    if (format === 'sensor_fusion') {
      const reading = await readSceneHeader(counted.view);
      await counted.drain();
      if (reading.ok) {
        facts.sensors += reading.scene.sensors;
        facts.frames += reading.scene.frames;
        // Checked against the bytes that arrived, not a Content-Length: a file cut short shows here.
        unreadable = itemsOutsideFile(reading.scene, counted.bytes());
      } else {
        unreadable = reading.problem;
      }
    } else {
      unreadable = checkLidarFrame(await counted.text());
      facts.frames += 1;
    }
    // The header reader reports a body cut off by a timeout or cancel as an unreadable scene: it is a failed download.
    if (signal.aborted) throw signal.reason;
    facts.bytes += counted.bytes();
    return { download: { url, statusCode: response.status, bytes: counted.bytes() }, unreadable };
  } catch (err) {
    return { download: { url, statusCode: response.status, error: describeFetchError(err) } };
  }
}

/** The frame schema for split_base64 is not public: check only what is certain (a JSON object with points). */
function checkLidarFrame(text: string): string | undefined {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return 'a LiDAR frame is not valid JSON';
  }
  if (frame === null || typeof frame !== 'object' || !Array.isArray((frame as { points?: unknown }).points)) {
    return 'a LiDAR frame is not a JSON object with a points array';
  }
  return undefined;
}

/** Lets the header reader stop early while the download itself goes on to the end, counting bytes. */
function countingIterator(body: ReadableStream<Uint8Array>) {
  const iterator = body[Symbol.asyncIterator]();
  let bytes = 0;
  const chunks: Uint8Array[] = [];
  let keep = false;
  const next = async () => {
    const result = await iterator.next();
    if (!result.done) {
      bytes += result.value.length;
      if (keep) chunks.push(result.value);
    }
    return result;
  };
  const view: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => ({ next, return: async () => ({ done: true as const, value: undefined }) }) };
  return {
    view,
    bytes: () => bytes,
    drain: async () => {
      while (!(await next()).done);
    },
    text: async () => {
      keep = true;
      while (!(await next()).done);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

export function describeFetchError(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'timed out';
  // Aborted from outside the attempt: the task was canceled (its reason says so) or the simulator is closing.
  if (err instanceof Error && err.name === 'AbortError') return `aborted: ${err.message}`;
  const cause = err instanceof Error ? (err.cause as { code?: string } | undefined) : undefined;
  return cause?.code ?? (err instanceof Error ? err.message : String(err));
}
