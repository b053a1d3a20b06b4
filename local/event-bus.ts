import type { EventBridgeEvent } from 'aws-lambda';
import { appendFile } from 'node:fs/promises';
import { eventBridgeEvent } from './events.js';

/** EventBridge refuses an entry larger than 256 KB. */
export const EVENT_SIZE_LIMIT_BYTES = 256 * 1024;

export interface EventBusOptions {
  /** Every event put, one JSON line each, in the order put: the record of truth. */
  eventsFile: string;
  source: string;
  detailType: string;
  region: string;
  /** Where each event is also POSTed (as JSON), in order; a failed POST is retried, then reported to onError. */
  eventsUrl?: string;
  /** POST attempts per event (default 3). */
  postAttempts?: number;
  /** Wait before the first POST retry, doubled for each further one (default 200 ms). */
  postRetryDelayMs?: number;
  /** How long one POST may take (default 5 s). */
  postTimeoutMs?: number;
  onError?: (err: unknown) => void;
}

export interface EventBusStats {
  put: number;
  posted: number;
  /** Events whose every POST attempt failed. */
  postFailed: number;
}

/**
 * The tasks bus: each detail put becomes an EventBridge event appended to the events file; POSTs to `eventsUrl`
 * follow in the same order without holding up the puts.
 */
export class LocalEventBus {
  readonly stats: EventBusStats = { put: 0, posted: 0, postFailed: 0 };
  private posting: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: EventBusOptions) {}

  /** Puts one event per detail, all or none: an entry, or all of them, over EventBridge's size limit fails the put. */
  async put<T>(details: T[]): Promise<Array<EventBridgeEvent<string, T>>> {
    const { source, detailType, region } = this.options;
    const events = details.map((detail) => eventBridgeEvent(detail, { source, detailType, region }));
    const lines = events.map((event) => JSON.stringify(event));
    const tooLarge = lines.findIndex((line) => Buffer.byteLength(line) > EVENT_SIZE_LIMIT_BYTES);
    if (tooLarge >= 0) throw new Error(`event ${tooLarge} is larger than EventBridge's ${EVENT_SIZE_LIMIT_BYTES} bytes`);
    // PutEvents limits the whole request, not only each entry.
    const total = lines.reduce((sum, line) => sum + Buffer.byteLength(line), 0);
    if (total > EVENT_SIZE_LIMIT_BYTES) throw new Error(`the ${events.length} events are ${total} bytes together; EventBridge takes at most ${EVENT_SIZE_LIMIT_BYTES} in one request`);
    if (events.length === 0) return events;
    await appendFile(this.options.eventsFile, lines.map((line) => `${line}\n`).join(''));
    this.stats.put += events.length;
    const url = this.options.eventsUrl;
    if (url) for (const line of lines) this.posting = this.posting.then(() => this.post(url, line));
    return events;
  }

  /** Resolves when every POST asked for so far has succeeded or given up. */
  async idle(): Promise<void> {
    let seen: Promise<void> | undefined;
    while (seen !== this.posting) await (seen = this.posting);
  }

  /** Sends nothing more (the events file already has every event put). */
  stop(): void {
    this.stopped = true;
  }

  private async post(url: string, body: string): Promise<void> {
    const attempts = this.options.postAttempts ?? 3;
    let delay = this.options.postRetryDelayMs ?? 200;
    let lastError = '';
    for (let attempt = 1; attempt <= attempts && !this.stopped; attempt++) {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(this.options.postTimeoutMs ?? 5_000),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.stats.posted++;
          return;
        }
        lastError = `HTTP ${res.status}`;
      } catch (err) {
        lastError = (err as Error).message;
      }
      if (attempt < attempts && !this.stopped) await new Promise((resolve) => setTimeout(resolve, delay));
      delay *= 2;
    }
    if (this.stopped) return;
    this.stats.postFailed++;
    const id = (JSON.parse(body) as { id: string }).id;
    this.options.onError?.(new Error(`event ${id} could not be POSTed to ${url} (${lastError}); it is in ${this.options.eventsFile}`));
  }
}
