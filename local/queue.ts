import { randomUUID } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { sqsRecord } from './events.js';
import { mulberry32 } from './random.js';

/** The ways SQS's at-least-once delivery shows itself; each can be switched on, at start or at run time. */
export interface DeliveryFaults {
  /**
   * Share (0–1) of receives that hand the same message to a second consumer too, in another batch (concurrently
   * when a consumer is free, otherwise later, even after the first copy deleted it). 0: no duplicates.
   */
  duplicateDeliveryRate: number;
  /** Seed for the duplicate decisions, for repeatable runs (default: Math.random). */
  seed?: number;
  /**
   * A message whose consumer has not finished within visibilityTimeoutMs becomes visible again and goes to
   * another consumer while the first still runs, with its receive count incremented (SQS does exactly this).
   *
   * Off by default, unlike SQS, because the local pipeline shortens the visibility timeout: the stack sets it to
   * six times create-task's timeout (6 × 60 s), so there an invocation is killed long before its message could
   * reappear; the local pipeline uses 2 s (500 ms in tests) so that failed messages come back quickly, and a
   * legitimately slow invocation (a cold start, Scale's rate limit and retries) would then be delivered again
   * on every run — a duplicate AWS never produces with the stack's settings. (Switched on at 500 ms, the
   * end-to-end suite saw up to 17 of 21 messages delivered twice, and one that succeeded dead-lettered after
   * maxReceiveCount receives.) Switch it on to exercise a handler's idempotency under concurrency.
   */
  redeliverInFlight: boolean;
}

export interface QueueOptions extends Partial<DeliveryFaults> {
  /** Records per invocation, as the event source's batchSize. */
  batchSize: number;
  /** Concurrent invocations, as the event source's maximumConcurrency. */
  maxConcurrency: number;
  /** How long a received message stays hidden: before it is delivered again after a failure, or (with redeliverInFlight) while in flight. */
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
  sentAt: number;
  firstReceivedAt?: number;
  receiveCount: number;
  /** When it can be received again; Infinity while held for a consumer (redeliverInFlight off). */
  visibleAt: number;
  /** Deliveries of it whose consumer has not answered yet. */
  inFlight: number;
  /** The receive whose failure was last acted on: a receive's outcome is decided once. */
  decidedReceive: number;
}

/** One hand-over of a message to a consumer. */
interface Delivery {
  message: Message;
  receiveCount: number;
  receiptHandle: string;
}

/**
 * SQS as the event source mapping sees it: batches to a consumer with bounded concurrency, partial batch
 * failures redelivered after the visibility timeout, a dead-letter list after maxReceiveCount receives, and,
 * when switched on, duplicate deliveries and redelivery of messages still in flight.
 *
 * A message is deleted as soon as any of its deliveries succeeds. When deliveries fail, the last one to finish
 * decides: the message becomes visible again after the visibility timeout, or, once it has been received
 * maxReceiveCount times, goes to the dead-letter file (once).
 */
export class LocalQueue {
  private readonly messages = new Map<string, Message>();
  /** Extra deliveries (duplicates) waiting for a free consumer. */
  private readonly copies: Delivery[] = [];
  private faults: DeliveryFaults;
  private random: () => number;
  private receipts = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly idleWaiters: Array<() => void> = [];
  /** Appends to and redrives of the dead-letter file, one after another. */
  private deadLetterWrites: Promise<void> = Promise.resolve();
  readonly stats = {
    sent: 0,
    /** Every hand-over of a message to a consumer, duplicates included. */
    received: 0,
    /** Messages removed after a successful delivery (once each). */
    deleted: 0,
    /** Failed receives after which the message went back to the queue. */
    redelivered: 0,
    deadLettered: 0,
    /** Extra copies delivered because of duplicateDeliveryRate. */
    duplicated: 0,
    /** Receives of a message while an earlier receive of it was still being processed. */
    inFlightRedelivered: 0,
  };

  constructor(private readonly options: QueueOptions) {
    this.faults = { duplicateDeliveryRate: options.duplicateDeliveryRate ?? 0, seed: options.seed, redeliverInFlight: options.redeliverInFlight ?? false };
    this.random = this.seeded(this.faults.seed);
  }

  /** Changes delivery faults while running; a new seed restarts the sequence of duplicate decisions. */
  configure(patch: Partial<DeliveryFaults>): DeliveryFaults {
    const rate = patch.duplicateDeliveryRate;
    if (rate !== undefined && !(rate >= 0 && rate <= 1)) throw new Error(`duplicateDeliveryRate must be within 0..1, not ${rate}`);
    this.faults = { ...this.faults, ...patch };
    if ('seed' in patch) this.random = this.seeded(patch.seed);
    this.schedule(0);
    return { ...this.faults };
  }

  send(body: string): string {
    const message: Message = { messageId: randomUUID(), body, sentAt: Date.now(), receiveCount: 0, visibleAt: Date.now(), inFlight: 0, decidedReceive: 0 };
    this.messages.set(message.messageId, message);
    this.stats.sent++;
    this.schedule(0);
    return message.messageId;
  }

  /** Resolves when nothing is waiting or being processed. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private seeded(seed: number | undefined): () => number {
    return seed === undefined ? Math.random : mulberry32(seed);
  }

  private isIdle(): boolean {
    return this.messages.size === 0 && this.copies.length === 0 && this.inFlight === 0;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.poll(), delayMs);
  }

  private async poll(): Promise<void> {
    await this.deadLetterExhausted(Date.now());
    while (this.inFlight < this.options.maxConcurrency && !this.stopped) {
      const batch = this.takeVisible(Date.now());
      if (batch.length === 0) break;
      this.inFlight++;
      void this.deliver(batch).finally(() => {
        this.inFlight--;
        this.schedule(0);
      });
    }
    const next = Math.min(...[...this.messages.values(), ...this.copies.map((c) => c.message)].map((m) => m.visibleAt));
    if (Number.isFinite(next) && this.inFlight < this.options.maxConcurrency) this.schedule(Math.max(0, next - Date.now()));
    if (this.isIdle()) this.idleWaiters.splice(0).forEach((resolve) => resolve());
  }

  /**
   * SQS moves a message that becomes visible after maxReceiveCount receives to the dead-letter queue instead of
   * delivering it again, even while an earlier receive of it is still being processed (whose delete then finds
   * nothing). Only reachable through in-flight redelivery: a failed last receive dead-letters on the spot.
   */
  private async deadLetterExhausted(now: number): Promise<void> {
    for (const message of [...this.messages.values()]) {
      if (message.visibleAt <= now && message.receiveCount >= this.options.maxReceiveCount) await this.deadLetter(message);
    }
  }

  private takeVisible(now: number): Delivery[] {
    const batch: Delivery[] = [];
    // SQS never returns one message twice in a receive: a duplicate waits for another batch.
    const taken = new Set<string>();
    for (const message of this.messages.values()) {
      if (batch.length >= this.options.batchSize) break;
      if (message.visibleAt > now) continue;
      // Received maxReceiveCount times: SQS moves it to the dead-letter queue rather than deliver it again (the next
      // poll does, whichever of the two looks first).
      if (message.receiveCount >= this.options.maxReceiveCount) continue;
      batch.push(this.receive(message, now));
      taken.add(message.messageId);
    }
    for (let i = 0; i < this.copies.length && batch.length < this.options.batchSize; ) {
      const copy = this.copies[i]!;
      if (taken.has(copy.message.messageId)) {
        i++;
        continue;
      }
      this.copies.splice(i, 1);
      copy.message.inFlight++;
      this.stats.received++;
      this.stats.duplicated++;
      batch.push(copy);
      taken.add(copy.message.messageId);
    }
    return batch;
  }

  private receive(message: Message, now: number): Delivery {
    if (message.inFlight > 0) this.stats.inFlightRedelivered++;
    message.receiveCount++;
    message.firstReceivedAt ??= now;
    message.inFlight++;
    message.visibleAt = this.faults.redeliverInFlight ? now + this.options.visibilityTimeoutMs : Infinity;
    this.stats.received++;
    const delivery = { message, receiveCount: message.receiveCount, receiptHandle: this.receiptHandle(message) };
    if (this.faults.duplicateDeliveryRate > 0 && this.random() < this.faults.duplicateDeliveryRate) {
      // The copy is the same receive seen twice (same receive count), handed over separately.
      this.copies.push({ ...delivery, receiptHandle: this.receiptHandle(message) });
    }
    return delivery;
  }

  private receiptHandle(message: Message): string {
    return `rh-${message.messageId}-${++this.receipts}`;
  }

  private record(delivery: Delivery): SQSRecord {
    const { message } = delivery;
    const record = sqsRecord(message.body, delivery.receiveCount, message.messageId);
    return {
      ...record,
      // Every receive gets its own receipt handle, as in SQS.
      receiptHandle: delivery.receiptHandle,
      attributes: { ...record.attributes, SentTimestamp: String(message.sentAt), ApproximateFirstReceiveTimestamp: String(message.firstReceivedAt) },
    };
  }

  private async deliver(batch: Delivery[]): Promise<void> {
    let failed: Set<string>;
    try {
      const response = await this.options.consumer({ Records: batch.map((d) => this.record(d)) });
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (err) {
      // An invocation that throws fails its whole batch, as with a real event source.
      if (!this.stopped) this.options.onError?.(err);
      failed = new Set(batch.map((d) => d.message.messageId));
    }
    // A stopped queue acts on nothing: its files may already be gone.
    if (this.stopped) return;
    for (const { message } of batch) {
      message.inFlight--;
      const live = this.messages.get(message.messageId) === message;
      if (!failed.has(message.messageId)) {
        // Deleting through any delivery's receipt handle removes the message; a later copy's delete finds nothing.
        if (live) {
          this.messages.delete(message.messageId);
          this.stats.deleted++;
        }
      } else if (live && message.inFlight === 0 && message.decidedReceive < message.receiveCount) {
        message.decidedReceive = message.receiveCount;
        if (message.receiveCount >= this.options.maxReceiveCount) {
          await this.deadLetter(message);
        } else {
          this.stats.redelivered++;
          message.visibleAt = Date.now() + this.options.visibilityTimeoutMs;
        }
      }
    }
  }

  /**
   * Moves every dead-lettered message back into the queue, as SQS's redrive (StartMessageMoveTask) does: each is
   * sent again as a new message with a fresh receive count, and leaves the dead-letter file. Serialized with
   * dead-lettering, so a message dead-lettered meanwhile is either moved or stays in the file, never lost. A line
   * that is not a dead letter (`{"body": "…"}`, e.g. edited by hand) blocks nothing: it stays in the file, and its
   * line number (1-based, in the file as it was) is in `unreadableLines`.
   */
  redrive(): Promise<{ moved: number; unreadableLines?: number[] }> {
    const moving = this.deadLetterWrites.then(async () => {
      const text = await readFile(this.options.deadLetterFile, 'utf8').catch(() => '');
      const bodies: string[] = [];
      const kept: string[] = [];
      const unreadableLines: number[] = [];
      text.split('\n').forEach((line, i) => {
        if (line.trim() === '') return;
        const body = deadLetterBody(line);
        if (body === undefined) {
          kept.push(line);
          unreadableLines.push(i + 1);
        } else bodies.push(body);
      });
      await writeFile(this.options.deadLetterFile, kept.map((line) => `${line}\n`).join(''));
      for (const body of bodies) this.send(body);
      return { moved: bodies.length, ...(unreadableLines.length > 0 ? { unreadableLines } : {}) };
    });
    this.deadLetterWrites = moving.then(() => undefined, () => undefined);
    return moving;
  }

  private async deadLetter(message: Message): Promise<void> {
    if (!this.messages.delete(message.messageId)) return;
    this.stats.deadLettered++;
    const { messageId, body, receiveCount } = message;
    const line = `${JSON.stringify({ messageId, body, receiveCount, deadLetteredAt: new Date().toISOString() })}\n`;
    const write = this.deadLetterWrites.then(() => appendFile(this.options.deadLetterFile, line)).catch((err: unknown) => this.options.onError?.(err));
    this.deadLetterWrites = write;
    await write;
  }
}

/** The message body of one dead-letter line, or undefined when the line is not one. */
function deadLetterBody(line: string): string | undefined {
  try {
    const body = (JSON.parse(line) as { body?: unknown } | null)?.body;
    return typeof body === 'string' ? body : undefined;
  } catch {
    return undefined;
  }
}
