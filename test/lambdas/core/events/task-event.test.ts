import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { taskEventsOf } from '../../../../lambdas/core/events/stream-records.js';
import { TaskEventDetailSchema } from '../../../../lambdas/core/events/task-event.js';

// Stream records as DynamoDB writes them for the tasks table (NEW_AND_OLD_IMAGES), images in AttributeValue form.
const S = (value: string) => ({ S: value });
const base = {
  uniqueId: S('sfs-6075c1020613cb0d420717176e118cfa3ed89726'),
  schemaVersion: { N: '1' },
  bucket: S('scenes'),
  key: S('drive 1/scene.sfs'),
  versionId: S('v1'),
  sceneFormat: S('sensor_fusion'),
  project: S('perception'),
  createdAt: S('2026-11-30T07:00:00.000Z'),
};
const image = (fields: Record<string, unknown>) => ({ ...base, ...fields });
function record(eventName: 'INSERT' | 'MODIFY' | 'REMOVE', oldImage?: Record<string, unknown>, newImage?: Record<string, unknown>): DynamoDBRecord {
  return {
    eventID: '1',
    eventName,
    eventSource: 'aws:dynamodb',
    awsRegion: 'eu-west-1',
    dynamodb: {
      Keys: { uniqueId: base.uniqueId },
      ...(oldImage ? { OldImage: oldImage } : {}),
      ...(newImage ? { NewImage: newImage } : {}),
      SequenceNumber: '100',
      SizeBytes: 100,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
  } as DynamoDBRecord;
}

describe('task events from the table stream', () => {
  it('makes one event per status change, in order, each valid against the published schema', () => {
    const submitting = image({ status: S('submitting'), updatedAt: S('2026-11-30T07:00:00.000Z'), claimId: S('c1') });
    const attempt = image({ status: S('submitting'), updatedAt: S('2026-11-30T07:00:05.000Z'), attempts: { N: '1' }, lastError: S('Scale 503') });
    const pending = image({ status: S('pending'), updatedAt: S('2026-11-30T07:00:09.000Z'), taskId: S('6f1c0a2b3c4d5e6f7a8b9c0d'), attempts: { N: '1' }, lastError: S('Scale 503') });
    const completed = image({
      status: S('completed'),
      updatedAt: S('2026-11-30T08:00:00.000Z'),
      taskId: S('6f1c0a2b3c4d5e6f7a8b9c0d'),
      responseJson: S('{"annotations":{"cuboids":12}}'),
      lastCallbackArchive: { M: { bucket: S('results'), key: S('callbacks/sfs-6075c1020613cb0d420717176e118cfa3ed89726/r1.json') } },
    });
    const events = taskEventsOf([record('INSERT', undefined, submitting), record('MODIFY', submitting, attempt), record('MODIFY', attempt, pending), record('MODIFY', pending, completed), record('REMOVE', completed, undefined)]);
    expect(events).toEqual([
      { schemaVersion: 1, uniqueId: base.uniqueId.S, status: 'submitting', versionId: 'v1', project: 'perception', bucket: 'scenes', key: 'drive 1/scene.sfs', sceneFormat: 'sensor_fusion', time: '2026-11-30T07:00:00.000Z' },
      // The pending record still holds the earlier attempt's lastError; only a failed upload's event carries one.
      { schemaVersion: 1, uniqueId: base.uniqueId.S, status: 'pending', previousStatus: 'submitting', taskId: '6f1c0a2b3c4d5e6f7a8b9c0d', versionId: 'v1', project: 'perception', bucket: 'scenes', key: 'drive 1/scene.sfs', sceneFormat: 'sensor_fusion', time: '2026-11-30T07:00:09.000Z' },
      expect.objectContaining({ status: 'completed', previousStatus: 'pending', response: { inline: { annotations: { cuboids: 12 } } }, time: '2026-11-30T08:00:00.000Z' }),
    ]);
    for (const event of events) expect(TaskEventDetailSchema.safeParse(event).success).toBe(true);
  });

  it('names a large response by where it is stored, and carries why a task failed', () => {
    const pending = image({ status: S('pending'), updatedAt: S('2026-11-30T07:00:09.000Z') });
    const large = image({ status: S('completed'), updatedAt: S('2026-11-30T08:00:00.000Z'), responseRef: { M: { bucket: S('results'), key: S('callbacks/x/big.json') } } });
    const rejected = image({ status: S('rejected'), updatedAt: S('2026-11-30T07:00:01.000Z'), reason: S('the object is empty (0 bytes)') });
    const [completed, refused] = taskEventsOf([record('MODIFY', pending, large), record('INSERT', undefined, rejected)]);
    expect(completed).toMatchObject({ status: 'completed', response: { ref: { bucket: 'results', key: 'callbacks/x/big.json' } } });
    expect(refused).toMatchObject({ status: 'rejected', reason: 'the object is empty (0 bytes)' });
    expect(refused).not.toHaveProperty('previousStatus');
    const failed = taskEventsOf([record('MODIFY', pending, image({ status: S('failed'), updatedAt: S('2026-11-30T07:30:00.000Z'), lastError: S('401 Please provide a valid API key') }))]);
    expect(failed).toEqual([expect.objectContaining({ status: 'failed', lastError: '401 Please provide a valid API key' })]);
  });
});
