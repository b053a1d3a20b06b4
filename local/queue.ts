import { randomUUID } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { sqsRecord } from './events.js';

export interface QueueOptions {
  /** Records per invocation, as the event source's batchSize. */
  batchSize: number;
  /** Concurrent invocations, as the event source's maximumConcurrency. */
  maxConcurrency: number;
  /** How long a failed message stays hidden before it is delivered again. */
  visibilityTimeoutMs: number;
  /** Receives before a message moves to the dead-letter list. */
  maxReceiveCount: number;
  /** JSON lines of messages that exhausted their receives. */
  deadLetterFile: string;
  consumer: (event: SQSEvent) => Promise<SQSBatchResponse>;
  onError?: (err: unknown) => void;
}

interface Message {
  messageId: string;
  body: string;
  receiveCount: number;
  visibleAt: number;
}

/**
 * SQS as the event source mapping sees it: batches to a consumer with bounded concurrency, partial batch
 * failures redelivered after the visibility timeout, and a dead-letter list after maxReceiveCount receives.
 */
export class LocalQueue {
  private readonly waiting: Message[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly idleWaiters: Array<() => void> = [];
  readonly stats = { sent: 0, deleted: 0, redelivered: 0, deadLettered: 0 };

  constructor(private readonly options: QueueOptions) {}

  send(body: string): string {
    const message = { messageId: randomUUID(), body, receiveCount: 0, visibleAt: Date.now() };
    this.waiting.push(message);
    this.stats.sent++;
    this.schedule(0);
    return message.messageId;
  }

  /** Resolves when nothing is waiting or being processed. */
  idle(): Promise<void> {
    if (this.waiting.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), delayMs);
  }

  private poll(): void {
    const now = Date.now();
    while (this.inFlight < this.options.maxConcurrency) {
      const batch = this.takeVisible(now);
      if (batch.length === 0) break;
      this.inFlight++;
      void this.deliver(batch).finally(() => {
        this.inFlight--;
        this.schedule(0);
      });
    }
    const next = Math.min(...this.waiting.map((m) => m.visibleAt));
    if (Number.isFinite(next) && this.inFlight < this.options.maxConcurrency) this.schedule(Math.max(0, next - Date.now()));
    if (this.waiting.length === 0 && this.inFlight === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
  }

  private takeVisible(now: number): Message[] {
    const batch: Message[] = [];
    for (let i = 0; i < this.waiting.length && batch.length < this.options.batchSize; ) {
      if (this.waiting[i]!.visibleAt <= now) batch.push(...this.waiting.splice(i, 1));
      else i++;
    }
    return batch;
  }

  private async deliver(batch: Message[]): Promise<void> {
    for (const m of batch) m.receiveCount++;
    let failed: Set<string>;
    try {
      const response = await this.options.consumer({ Records: batch.map((m) => sqsRecord(m.body, m.receiveCount, m.messageId)) });
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (err) {
      // An invocation that throws fails its whole batch, as with a real event source.
      this.options.onError?.(err);
      failed = new Set(batch.map((m) => m.messageId));
    }
    for (const message of batch) {
      if (!failed.has(message.messageId)) {
        this.stats.deleted++;
      } else if (message.receiveCount >= this.options.maxReceiveCount) {
        this.stats.deadLettered++;
        await appendFile(this.options.deadLetterFile, `${JSON.stringify({ ...message, deadLetteredAt: new Date().toISOString() })}\n`);
      } else {
        this.stats.redelivered++;
        message.visibleAt = Date.now() + this.options.visibilityTimeoutMs;
        this.waiting.push(message);
      }
    }
  }
}
