import { describe, expect, it } from 'vitest';
import { changesInMessage, compareSequencers, decodeS3Key, encodeS3Key, uploadNotification } from '../../../../lambdas/core/scenes/s3-event.js';

/*
 * The S3 event notification as SQS delivers it, read exactly: what each record yields (and what it leaves out),
 * keys with every space, plus and slash encoded as S3 encodes them, and the notification sent again for a retry.
 */

const body = (...records: unknown[]) => JSON.stringify({ Records: records });
const record = (eventName: string, object: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ eventName, ...extra, s3: { bucket: { name: 'b' }, object } });

describe('S3 event keys', () => {
  it('encodes and decodes every space, plus and slash of a key, not only the first', () => {
    expect(encodeS3Key('a b c/d/e+f+g.sfs')).toBe('a+b+c/d/e%2Bf%2Bg.sfs');
    expect(decodeS3Key('a+b+c/d/e%2Bf%2Bg.sfs')).toBe('a b c/d/e+f+g.sfs');
  });
});

describe('reading a notification', () => {
  it('keeps out of an upload what the record does not carry', () => {
    expect(changesInMessage(body(record('ObjectCreated:Put', { key: 'k.sfs' })))).toStrictEqual([
      { kind: 'created', upload: { eventName: 'ObjectCreated:Put', bucket: 'b', key: 'k.sfs' } },
    ]);
    expect(changesInMessage(body(record('ObjectRemoved:Delete', { key: 'k.sfs' })))).toStrictEqual([
      { kind: 'removed', removal: { eventName: 'ObjectRemoved:Delete', bucket: 'b', key: 'k.sfs' } },
    ]);
  });

  it('keeps the event time and a size of 0, and strips every quote of the ETag', () => {
    const created = record('ObjectCreated:Put', { key: 'k.sfs', size: 0, eTag: '"ab"' }, { eventTime: '2026-11-30T10:00:00.000Z' });
    expect(changesInMessage(body(created))).toStrictEqual([
      { kind: 'created', upload: { eventName: 'ObjectCreated:Put', bucket: 'b', key: 'k.sfs', eTag: 'ab', size: 0, eventTime: '2026-11-30T10:00:00.000Z' } },
    ]);
  });

  it('keeps the event time of a removal, which bounds how long it may wait in the queue', () => {
    const removed = record('ObjectRemoved:DeleteMarkerCreated', { key: 'k.sfs' }, { eventTime: '2026-11-30T10:00:00.000Z' });
    expect(changesInMessage(body(removed))).toStrictEqual([
      { kind: 'removed', removal: { eventName: 'ObjectRemoved:DeleteMarkerCreated', bucket: 'b', key: 'k.sfs', eventTime: '2026-11-30T10:00:00.000Z' } },
    ]);
  });

  it('yields nothing for the test event S3 sends when a notification is set up', () => {
    expect(changesInMessage(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'b' }))).toEqual([]);
  });

  it('calls a JSON body that is no object not a notification', () => {
    expect(() => changesInMessage('null')).toThrow(/^message body is not an S3 event notification: /);
    expect(() => changesInMessage('{"Records":{}}')).toThrow(/^message body is not an S3 event notification: Records: /);
  });

  it('names the record whose key is not URL-encoded', () => {
    const ok = record('ObjectCreated:Put', { key: 'a.sfs' });
    expect(() => changesInMessage(body(ok, record('ObjectCreated:Put', { key: '%' })))).toThrow('Records[1].s3.object.key is not URL-encoded as S3 sends keys: "%"');
  });
});

describe('the notification sent again for an upload', () => {
  it('carries the upload as S3 would have sent it', () => {
    const text = uploadNotification(
      { bucket: 'b', key: 'a b/c+d.sfs', size: 0, eTag: 'e1', versionId: 'v1', sequencer: '0055AED6DCD90281E5' },
      new Date('2026-11-30T10:00:00Z'),
    );
    expect(JSON.parse(text)).toStrictEqual({
      Records: [
        {
          eventName: 'ObjectCreated:Put',
          eventTime: '2026-11-30T10:00:00.000Z',
          s3: { bucket: { name: 'b' }, object: { key: 'a+b/c%2Bd.sfs', size: 0, eTag: 'e1', versionId: 'v1', sequencer: '0055AED6DCD90281E5' } },
        },
      ],
    });
  });

  it('leaves out empty fields, and reads back as the same upload', () => {
    const text = uploadNotification({ bucket: 'b', key: 'k.sfs', eTag: '', versionId: '', sequencer: '' }, new Date('2026-11-30T10:00:00Z'));
    expect(JSON.parse(text).Records[0].s3.object).toStrictEqual({ key: 'k.sfs' });
    expect(changesInMessage(text)).toStrictEqual([{ kind: 'created', upload: { eventName: 'ObjectCreated:Put', bucket: 'b', key: 'k.sfs', eventTime: '2026-11-30T10:00:00.000Z' } }]);
  });
});

describe('sequencer order', () => {
  it('compares equal-length sequencers by value, either way round', () => {
    expect(compareSequencers('0A', '0B')).toBe(-1);
    expect(compareSequencers('0B', '0A')).toBe(1);
    expect(compareSequencers('10', '0F')).toBe(1);
    expect(compareSequencers('0F00', '0F')).toBe(0);
  });
});
