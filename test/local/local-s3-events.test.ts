import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sequencersIncrease, startKit, type Kit } from './local-s3-kit.js';

let kit: Kit;
beforeAll(async () => {
  kit = await startKit('enabled');
});
afterAll(() => kit.close());

const KEY = 'ev/red flower+é.sfs';
const ENCODED = 'ev/red+flower%2B%C3%A9.sfs';

describe('S3 event records', () => {
  it('emits one record per write and delete, in AWS shape, with the key encoded, versionIds and growing sequencers', async () => {
    const put = await kit.client.send(new PutObjectCommand({ Bucket: 'data', Key: KEY, Body: 'hello' }));
    const copy = await kit.client.send(new CopyObjectCommand({ Bucket: 'data', Key: KEY, CopySource: `data/${encodeURIComponent(KEY)}?versionId=${put.VersionId}`, MetadataDirective: 'REPLACE' }));
    const { UploadId } = await kit.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: KEY }));
    const parts = [Buffer.alloc(5 * 1024 * 1024, 1), Buffer.from('z')];
    const etags = [];
    for (const [i, Body] of parts.entries()) etags.push((await kit.client.send(new UploadPartCommand({ Bucket: 'data', Key: KEY, UploadId, PartNumber: i + 1, Body }))).ETag);
    const completed = await kit.client.send(
      new CompleteMultipartUploadCommand({ Bucket: 'data', Key: KEY, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }),
    );
    const marker = await kit.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: KEY }));
    await kit.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: KEY, VersionId: put.VersionId }));

    const records = kit.records.filter((r) => r.s3.object.key === ENCODED);
    expect(records.map((r) => r.eventName)).toEqual([
      'ObjectCreated:Put',
      'ObjectCreated:Copy',
      'ObjectCreated:CompleteMultipartUpload',
      'ObjectRemoved:DeleteMarkerCreated',
      'ObjectRemoved:Delete',
    ]);
    expect(records.map((r) => r.s3.object.versionId)).toEqual([put.VersionId, copy.VersionId, completed.VersionId, marker.VersionId, put.VersionId]);
    expect(records.map((r) => r.s3.object.size)).toEqual([5, 5, 5 * 1024 * 1024 + 1, undefined, undefined]);
    expect(records[0]!.s3.object.eTag).toBe('5d41402abc4b2a76b9719d911017c592');
    expect(records[1]!.s3.object.eTag).toBe('5d41402abc4b2a76b9719d911017c592');
    expect(records[2]!.s3.object.eTag).toMatch(/^[0-9a-f]{32}-2$/);
    expect(records[2]!.s3.object.eTag).toBe(completed.ETag!.replace(/"/g, ''));
    expect(records.slice(3).map((r) => r.s3.object.eTag)).toEqual([undefined, undefined]);
    for (const r of records) {
      expect(r).toMatchObject({ eventVersion: '2.1', eventSource: 'aws:s3', awsRegion: 'us-east-1', s3: { bucket: { name: 'data', arn: 'arn:aws:s3:::data' } } });
      expect(r.s3.object.sequencer).toMatch(/^[0-9A-F]+$/);
    }
    expect(sequencersIncrease(records.map((r) => r.s3.object.sequencer))).toBe(true);
  });

  it('reports DeleteObjects per key, as single deletes would', async () => {
    const a = await kit.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'batch/a.sfs', Body: 'a' }));
    await kit.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'batch/b.sfs', Body: 'b' }));
    const answer = await kit.client.send(
      new DeleteObjectsCommand({ Bucket: 'data', Delete: { Objects: [{ Key: 'batch/a.sfs', VersionId: a.VersionId }, { Key: 'batch/b.sfs' }] } }),
    );
    expect(answer.Deleted?.map((d) => [d.Key, d.DeleteMarker ?? false])).toEqual([['batch/a.sfs', false], ['batch/b.sfs', true]]);
    expect(kit.eventsFor('batch/a.sfs').map((e) => [e.eventName, e.versionId])).toEqual([
      ['ObjectCreated:Put', a.VersionId],
      ['ObjectRemoved:Delete', a.VersionId],
    ]);
    expect(kit.eventsFor('batch/b.sfs').at(-1)).toMatchObject({ eventName: 'ObjectRemoved:DeleteMarkerCreated', versionId: answer.Deleted![1]!.DeleteMarkerVersionId });
  });

  it('refuses a multipart completion whose parts are missing, mismatched or too small, and emits nothing', async () => {
    const before = kit.records.length;
    const { UploadId } = await kit.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'mp/bad.sfs' }));
    const small = await kit.client.send(new UploadPartCommand({ Bucket: 'data', Key: 'mp/bad.sfs', UploadId, PartNumber: 1, Body: 'tiny' }));
    const last = await kit.client.send(new UploadPartCommand({ Bucket: 'data', Key: 'mp/bad.sfs', UploadId, PartNumber: 2, Body: 'end' }));
    const complete = (Parts: Array<{ ETag?: string; PartNumber: number }>) =>
      kit.client.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'mp/bad.sfs', UploadId, MultipartUpload: { Parts } })).catch((err: Error) => err.name);
    expect(await complete([{ ETag: small.ETag, PartNumber: 1 }, { ETag: last.ETag, PartNumber: 2 }])).toBe('EntityTooSmall');
    expect(await complete([{ ETag: '"00000000000000000000000000000000"', PartNumber: 1 }])).toBe('InvalidPart');
    expect(await complete([{ ETag: last.ETag, PartNumber: 2 }, { ETag: small.ETag, PartNumber: 1 }])).toBe('InvalidPartOrder');
    expect(kit.records.length).toBe(before);
  });
});
