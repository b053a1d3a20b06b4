import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { taskEventsOf } from '../../../../lambdas/core/events/stream-records.js';
import { INLINE_EVENT_RESPONSE_BYTES, TASK_EVENT_DETAIL_TYPE, TASK_EVENT_SOURCE, TaskEventDetailSchema, taskEventFrom } from '../../../../lambdas/core/events/task-event.js';
import type { TaskRecord } from '../../../../lambdas/core/tasks/task-record.js';

// Which fields an event carries for which status. Events are compared whole (toStrictEqual): a field that is
// present with no value is still a field a consumer sees.
const record = (fields: Partial<TaskRecord>): TaskRecord => ({
  schemaVersion: 1,
  uniqueId: 'sfs-6075c1020613cb0d420717176e118cfa3ed89726',
  status: 'pending',
  bucket: 'scenes',
  key: 'fleet/drive.frames.json',
  sceneFormat: 'split_base64',
  createdAt: '2026-11-30T07:00:00.000Z',
  updatedAt: '2026-11-30T07:05:00.000Z',
  ...fields,
});
const head = { schemaVersion: 1, uniqueId: 'sfs-6075c1020613cb0d420717176e118cfa3ed89726', bucket: 'scenes', key: 'fleet/drive.frames.json', sceneFormat: 'split_base64', time: '2026-11-30T07:05:00.000Z' };
const ARCHIVE = { bucket: 'results', key: 'callbacks/sfs-6075/r1.json' };

describe('the published contract', () => {
  it('names its source and type as consumers match them', () => {
    expect(TASK_EVENT_SOURCE).toBe('scale-sfs-pipeline');
    expect(TASK_EVENT_DETAIL_TYPE).toBe('Task status changed');
    expect(INLINE_EVENT_RESPONSE_BYTES).toBe(20_480);
  });

  it('validates an event with every field, and refuses another version or status', () => {
    const full = {
      ...head,
      status: 'completed',
      previousStatus: 'pending',
      taskId: 't1',
      versionId: 'v1',
      project: 'p',
      batch: 'b',
      response: { ref: ARCHIVE },
      resultFiles: [{ sourceUrl: 'https://scaleapi-results.s3.amazonaws.com/a.json', bucket: 'results', key: 'files/a.json', bytes: 3, sha256: 'ab' }],
      reason: 'r',
      scaleError: { status: 400, message: 'm' },
      lastError: 'e',
    };
    expect(TaskEventDetailSchema.parse(full)).toStrictEqual(full);
    const inline = { ...head, status: 'completed', response: { inline: { annotations: [1] } } };
    expect(TaskEventDetailSchema.parse(inline)).toStrictEqual(inline);
    expect(TaskEventDetailSchema.safeParse({ ...head, status: 'pending', sceneFormat: 'sensor_fusion' }).success).toBe(true);
    expect(TaskEventDetailSchema.safeParse({ ...head, status: 'pending', schemaVersion: 2 }).success).toBe(false);
    expect(TaskEventDetailSchema.safeParse({ ...head, status: 'archived' }).success).toBe(false);
  });
});

describe('an event per status change', () => {
  it('carries only the fields the record has', () => {
    expect(taskEventFrom(undefined, record({ status: 'submitting' }))).toStrictEqual({ ...head, status: 'submitting' });
    expect(taskEventFrom(record({ status: 'submitting' }), record({ taskId: 't1', versionId: 'v1', project: 'p', batch: 'b' }))).toStrictEqual({
      ...head,
      status: 'pending',
      previousStatus: 'submitting',
      taskId: 't1',
      versionId: 'v1',
      project: 'p',
      batch: 'b',
    });
  });

  it('makes none when the status stays or the record goes away', () => {
    expect(taskEventFrom(record({ status: 'pending' }), record({ status: 'pending', taskId: 't2' }))).toBeUndefined();
    expect(taskEventFrom(record({}), undefined)).toBeUndefined();
  });
});

describe('why an upload ended where it did', () => {
  it('gives the reason of a rejected or canceled upload', () => {
    expect(taskEventFrom(undefined, record({ status: 'rejected', reason: 'the object is empty (0 bytes)' }))).toStrictEqual({ ...head, status: 'rejected', reason: 'the object is empty (0 bytes)' });
    expect(taskEventFrom(record({}), record({ status: 'canceled', reason: 'the object was deleted' }))).toStrictEqual({
      ...head,
      status: 'canceled',
      previousStatus: 'pending',
      reason: 'the object was deleted',
    });
    expect(taskEventFrom(undefined, record({ status: 'rejected' }))).toStrictEqual({ ...head, status: 'rejected' });
  });

  it("gives Scale's refusal of a create_failed upload and the last error of a failed one", () => {
    const scaleError = { status: 400, message: 'Project not found' };
    expect(taskEventFrom(record({ status: 'submitting' }), record({ status: 'create_failed', scaleError }))).toStrictEqual({ ...head, status: 'create_failed', previousStatus: 'submitting', scaleError });
    expect(taskEventFrom(record({ status: 'submitting' }), record({ status: 'failed', lastError: 'Scale 503' }))).toStrictEqual({ ...head, status: 'failed', previousStatus: 'submitting', lastError: 'Scale 503' });
    expect(taskEventFrom(record({ status: 'submitting' }), record({ status: 'create_failed' }))).toStrictEqual({ ...head, status: 'create_failed', previousStatus: 'submitting' });
    expect(taskEventFrom(record({ status: 'submitting' }), record({ status: 'failed' }))).toStrictEqual({ ...head, status: 'failed', previousStatus: 'submitting' });
  });

  it('leaves out what a record kept from an earlier state', () => {
    const leftovers = { reason: 'old reason', scaleError: { message: 'old refusal' }, lastError: 'Scale 503 on an earlier attempt' };
    expect(taskEventFrom(record({ status: 'submitting' }), record({ status: 'pending', ...leftovers }))).toStrictEqual({ ...head, status: 'pending', previousStatus: 'submitting' });
    expect(taskEventFrom(record({ status: 'failed' }), record({ status: 'rejected', ...leftovers }))).toStrictEqual({ ...head, status: 'rejected', previousStatus: 'failed', reason: 'old reason' });
  });
});

describe("Scale's response and result files", () => {
  it('carries a response of exactly 20480 bytes inline, and names a larger one by its archive', () => {
    const json = (bytes: number) => `{"a":"${'x'.repeat(bytes - 8)}"}`;
    expect(Buffer.byteLength(json(20_480))).toBe(20_480);
    const small = taskEventFrom(record({}), record({ status: 'completed', responseJson: json(20_480), lastCallbackArchive: ARCHIVE }));
    expect(small?.response).toStrictEqual({ inline: { a: 'x'.repeat(20_472) } });
    const large = taskEventFrom(record({}), record({ status: 'completed', responseJson: json(20_481), lastCallbackArchive: ARCHIVE }));
    expect(large?.response).toStrictEqual({ ref: ARCHIVE });
  });

  it('prefers a stored response over the archive, and has no response without either', () => {
    const stored = { bucket: 'results', key: 'responses/big.json' };
    expect(taskEventFrom(record({}), record({ status: 'completed', responseRef: stored, lastCallbackArchive: ARCHIVE }))).toStrictEqual({ ...head, status: 'completed', previousStatus: 'pending', response: { ref: stored } });
    // An archive alone (no response on the record) is not a response.
    expect(taskEventFrom(record({}), record({ status: 'error', lastCallbackArchive: ARCHIVE }))).toStrictEqual({ ...head, status: 'error', previousStatus: 'pending' });
    expect(taskEventFrom(record({}), record({ status: 'completed', responseJson: `"${'é'.repeat(10_240)}"` }))).toStrictEqual({ ...head, status: 'completed', previousStatus: 'pending' });
  });

  it('lists result files for a completed task only', () => {
    const resultFiles = [{ sourceUrl: 'https://api.scale.com/v1/files/a', error: 'larger than 104857600 bytes' }];
    expect(taskEventFrom(record({}), record({ status: 'completed', resultFiles }))).toStrictEqual({ ...head, status: 'completed', previousStatus: 'pending', resultFiles });
    // A task recalled to pending still has the files of its earlier completion on the record.
    expect(taskEventFrom(record({ status: 'completed' }), record({ status: 'pending', resultFiles }))).toStrictEqual({ ...head, status: 'pending', previousStatus: 'completed' });
  });
});

describe('stream records', () => {
  it('skips a record that carries no images', () => {
    const bare = { eventID: '9', eventName: 'MODIFY', eventSource: 'aws:dynamodb' } as DynamoDBRecord;
    expect(taskEventsOf([bare])).toEqual([]);
  });
});
