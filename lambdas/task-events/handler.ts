import type { DynamoDBRecord } from 'aws-lambda';
import { taskEventsOf } from '../core/events/stream-records.js';
import type { TaskEventDetail } from '../core/events/task-event.js';

/**
 * The EventBridge Pipe's enrichment: a batch of the tasks table's stream records in, the task events for their
 * status changes out (each becomes the `detail` of one event on the bus). Pure: nothing to read, nothing to fail
 * on but a malformed image, which fails the batch so the pipe retries it and then dead-letters it.
 */
export const handler = async (records: DynamoDBRecord[]): Promise<TaskEventDetail[]> => taskEventsOf(records);
