import type { DynamoDBRecord } from 'aws-lambda';
import { appendFile } from 'node:fs/promises';

export interface StreamPipeOptions<Detail> {
  /** The pipe's filter: records it drops never reach the enrichment. */
  filter?: (record: DynamoDBRecord) => boolean;
  /** The enrichment (a function invoked with the batch of records as its event); it answers with an array. */
  enrich: (records: DynamoDBRecord[]) => Promise<Detail[]>;
  /** The target (the bus): each element of the enrichment's answer becomes one event. */
  target: (details: Detail[]) => Promise<unknown>;
  /** Records per invocation at most (default 10). */
  batchSize?: number;
  /** Attempts of one batch before it is dead-lettered (default 3: the first and two retries). */
  maxAttempts?: number;
  /** Wait before the first retry, doubled for each further one (default 200 ms) up to `maxRetryDelayMs` (2 s). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Where a batch goes after its last failed attempt: one JSON line per batch. */
  deadLetterFile: string;
  onError?: (err: unknown) => void;
}

export interface StreamPipeStats {
  /** Records that passed the filter. */
  records: number;
  /** Attempts of batches, retries included. */
  attempts: number;
  retried: number;
  delivered: number;
  deadLettered: number;
}

/**
 * An EventBridge Pipe from a table's stream: filter, batches of up to `batchSize` records in stream order, an
 * enrichment, then the target. The stream is read as one shard: a batch finishes (delivered or dead-lettered)
 * before the next starts, so records of one key keep their order. At least once: a failed batch is retried whole,
 * so the enrichment and the target may see records again; after `maxAttempts` the batch is written to the
 * dead-letter file and the pipe moves on.
 */
export class StreamPipe<Detail = unknown> {
  readonly stats: StreamPipeStats = { records: 0, attempts: 0, retried: 0, delivered: 0, deadLettered: 0 };
  private readonly waiting: DynamoDBRecord[] = [];
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: StreamPipeOptions<Detail>) {}

  /** Takes records from the stream, in stream order. */
  push(records: DynamoDBRecord[]): void {
    if (this.stopped) return;
    const kept = this.options.filter ? records.filter(this.options.filter) : records;
    this.stats.records += kept.length;
    this.waiting.push(...kept);
    this.running ??= this.run().finally(() => (this.running = undefined));
  }

  /** Resolves when every record taken so far has been delivered or dead-lettered. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Takes no more records and starts no more attempts (one in progress ends on its own). */
  stop(): void {
    this.stopped = true;
  }

  private async run(): Promise<void> {
    while (this.waiting.length > 0 && !this.stopped) {
      const batch = this.waiting.splice(0, this.options.batchSize ?? 10);
      await this.deliver(batch);
    }
  }

  private async deliver(batch: DynamoDBRecord[]): Promise<void> {
    const maxAttempts = this.options.maxAttempts ?? 3;
    let delay = this.options.retryDelayMs ?? 200;
    for (let attempt = 1; ; attempt++) {
      this.stats.attempts++;
      try {
        const details = await this.options.enrich(batch);
        if (!Array.isArray(details)) throw new Error(`the enrichment answered ${JSON.stringify(details) ?? 'nothing'}, not an array of event details`);
        await this.options.target(details);
        this.stats.delivered++;
        return;
      } catch (err) {
        if (this.stopped) return;
        this.options.onError?.(err);
        if (attempt >= maxAttempts) return this.deadLetter(batch, attempt, err);
        this.stats.retried++;
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, this.options.maxRetryDelayMs ?? 2_000);
        if (this.stopped) return;
      }
    }
  }

  private async deadLetter(records: DynamoDBRecord[], attempts: number, err: unknown): Promise<void> {
    this.stats.deadLettered++;
    const line = JSON.stringify({ records, attempts, error: (err as Error)?.message ?? String(err), deadLetteredAt: new Date().toISOString() });
    await appendFile(this.options.deadLetterFile, `${line}\n`).catch((failure: unknown) => this.options.onError?.(failure));
  }
}
