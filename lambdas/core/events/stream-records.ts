import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue, DynamoDBRecord } from 'aws-lambda';
import type { TaskRecord } from '../tasks/task-record.js';
import { taskEventFrom, type TaskEventDetail } from './task-event.js';

const imageOf = (image: Record<string, AttributeValue> | undefined): TaskRecord | undefined =>
  image ? (unmarshall(image as Parameters<typeof unmarshall>[0]) as TaskRecord) : undefined;

/** The task events in a batch of the tasks table's stream records, in the stream's order; status changes only. */
export function taskEventsOf(records: DynamoDBRecord[]): TaskEventDetail[] {
  return records.flatMap((record) => {
    const event = taskEventFrom(imageOf(record.dynamodb?.OldImage), imageOf(record.dynamodb?.NewImage));
    return event ? [event] : [];
  });
}
