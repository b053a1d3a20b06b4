import type { DynamoDBRecord } from 'aws-lambda';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { TASK_EVENT_DETAIL_TYPE, TASK_EVENT_SOURCE } from '../lambdas/core/events/task-event.js';
import type { DynamoFront } from './dynamodb-front.js';
import { LocalEventBus } from './event-bus.js';
import { StreamPipe } from './stream-pipe.js';

/** Attempts of one batch before the pipe dead-letters it: the first and the stack's maximumRetryAttempts (10). */
const PIPE_MAX_ATTEMPTS = 11;

export interface TaskEventsOptions {
  workDir: string;
  region: string;
  /** The tasks table's stream. */
  front: DynamoFront;
  /** The task-events function; without it nothing reads the stream and the events file stays empty. */
  enrich?: (records: DynamoDBRecord[]) => Promise<unknown[]>;
  /** Where the bus also POSTs each event. */
  eventsUrl?: string;
  logs: Writable;
}

/**
 * The stack's task events: the table's stream → a pipe (INSERT and MODIFY only, batches of 10, a failed batch
 * retried with a backoff of up to 2 s, then written to `event-dead-letters.jsonl`) → the task-events function →
 * the bus (the contract's source and detail-type) → `events.jsonl`, and `eventsUrl` if given.
 */
export async function startTaskEvents(options: TaskEventsOptions) {
  const eventsFile = join(options.workDir, 'events.jsonl');
  const deadLetterFile = join(options.workDir, 'event-dead-letters.jsonl');
  await writeFile(eventsFile, '');
  await writeFile(deadLetterFile, '');
  const bus = new LocalEventBus({
    eventsFile,
    source: TASK_EVENT_SOURCE,
    detailType: TASK_EVENT_DETAIL_TYPE,
    region: options.region,
    eventsUrl: options.eventsUrl,
    onError: (err) => options.logs.write(`event bus: ${(err as Error).message}\n`),
  });
  const { enrich } = options;
  const pipe = enrich
    ? new StreamPipe({
        filter: (record) => record.eventName === 'INSERT' || record.eventName === 'MODIFY',
        enrich,
        target: (details) => bus.put(details),
        batchSize: 10,
        maxAttempts: PIPE_MAX_ATTEMPTS,
        deadLetterFile,
        onError: (err) => options.logs.write(`task-events pipe: ${(err as Error).message}\n`),
      })
    : undefined;
  if (pipe) options.front.onRecords((records) => pipe.push(records));
  return {
    eventsFile,
    deadLetterFile,
    /** Absent until the task-events function exists. */
    pipe,
    bus,
    /** Resolves when every stream record so far has become events (or a dead letter) and every POST is done. */
    async settled(): Promise<void> {
      await pipe?.idle();
      await bus.idle();
    },
    stop: async () => {
      pipe?.stop();
      bus.stop();
    },
  };
}
