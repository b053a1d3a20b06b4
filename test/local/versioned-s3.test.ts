import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKit, text, type Kit } from './local-s3-kit.js';

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
const headersOf = (err: unknown) => (err as { $response?: { headers: Record<string, string> } }).$response?.headers ?? {};
const failure = <T>(promise: Promise<T>) => promise.then(() => expect.fail('expected S3 to refuse'), (err: unknown) => err);

let kit: Kit;
beforeAll(async () => {
  kit = await startKit('enabled');
});
afterAll(() => kit.close());

describe('versioning enabled', () => {
  const put = (Key: string, Body: string) => kit.client.send(new PutObjectCommand({ Bucket: 'data', Key, Body }));
  const get = (Key: string, VersionId?: string, Range?: string) => kit.client.send(new GetObjectCommand({ Bucket: 'data', Key, VersionId, Range }));
  const head = (Key: string, VersionId?: string) => kit.client.send(new HeadObjectCommand({ Bucket: 'data', Key, VersionId }));

  it('makes a new version per PUT; a versionId serves that exact version, ranges too; the key serves the newest', async () => {
    const first = await put('v/scene.sfs', 'first');
    const second = await put('v/scene.sfs', 'second!');
    expect(first.VersionId).toMatch(/^[A-Za-z0-9._]{32}$/);
    expect(second.VersionId).toMatch(/^[A-Za-z0-9._]{32}$/);
    expect(second.VersionId).not.toBe(first.VersionId);

    const current = await get('v/scene.sfs');
    expect([await text(current.Body), current.VersionId]).toEqual(['second!', second.VersionId]);
    const old = await get('v/scene.sfs', first.VersionId);
    expect([await text(old.Body), old.VersionId, old.ETag]).toEqual(['first', first.VersionId, '"8b04d5e3775d298e78455efc5ca404d5"']);
    const ranged = await get('v/scene.sfs', first.VersionId, 'bytes=1-3');
    expect([ranged.$metadata.httpStatusCode, await text(ranged.Body), ranged.ContentRange]).toEqual([206, 'irs', 'bytes 1-3/5']);
    const headOld = await head('v/scene.sfs', first.VersionId);
    expect([headOld.ContentLength, headOld.VersionId]).toEqual([5, first.VersionId]);
  });

  it('DELETE adds a delete marker: the key answers 404 with x-amz-delete-marker, older versions stay readable', async () => {
    const kept = await put('d/scene.sfs', 'kept');
    const deleted = await kit.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'd/scene.sfs' }));
    expect(deleted.DeleteMarker).toBe(true);
    expect(deleted.VersionId).toMatch(/^[A-Za-z0-9._]{32}$/);
    expect(deleted.VersionId).not.toBe(kept.VersionId);

    const headErr = await failure(head('d/scene.sfs'));
    expect([(headErr as Error).name, statusOf(headErr)]).toEqual(['NotFound', 404]);
    expect(headersOf(headErr)).toMatchObject({ 'x-amz-delete-marker': 'true', 'x-amz-version-id': deleted.VersionId });
    const getErr = await failure(get('d/scene.sfs'));
    expect([(getErr as Error).name, statusOf(getErr)]).toEqual(['NoSuchKey', 404]);
    expect(headersOf(getErr)['x-amz-delete-marker']).toBe('true');
    expect(await text((await get('d/scene.sfs', kept.VersionId)).Body)).toBe('kept');
    expect((await head('d/scene.sfs', kept.VersionId)).ContentLength).toBe(4);

    // The marker itself is not an object: GET/HEAD by its id is 405.
    expect(statusOf(await failure(get('d/scene.sfs', deleted.VersionId)))).toBe(405);
    const headMarker = await failure(head('d/scene.sfs', deleted.VersionId));
    expect(statusOf(headMarker)).toBe(405);
    expect(headersOf(headMarker)['x-amz-delete-marker']).toBe('true');
  });

  it('DELETE with a versionId removes that version for good; removing the marker brings the key back', async () => {
    const one = await put('p/scene.sfs', 'one');
    const two = await put('p/scene.sfs', 'two');
    const marker = await kit.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'p/scene.sfs' }));
    const unmarked = await kit.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'p/scene.sfs', VersionId: marker.VersionId }));
    expect([unmarked.DeleteMarker, unmarked.VersionId]).toEqual([true, marker.VersionId]);
    expect(await text((await get('p/scene.sfs')).Body)).toBe('two');

    await kit.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'p/scene.sfs', VersionId: two.VersionId }));
    const current = await get('p/scene.sfs');
    expect([await text(current.Body), current.VersionId]).toEqual(['one', one.VersionId]);
    const gone = await failure(get('p/scene.sfs', two.VersionId));
    expect([(gone as Error).name, statusOf(gone)]).toEqual(['NoSuchVersion', 404]);
  });

  it('answers 404 NoSuchVersion for an unknown versionId and 400 for one that cannot be an id', async () => {
    await put('u/scene.sfs', 'x');
    const unknown = await failure(get('u/scene.sfs', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));
    expect([(unknown as Error).name, statusOf(unknown)]).toEqual(['NoSuchVersion', 404]);
    expect(statusOf(await failure(head('u/scene.sfs', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')))).toBe(404);
    expect(statusOf(await failure(get('u/scene.sfs', 'dsf')))).toBe(400);
    expect(statusOf(await failure(get('never/put.sfs')))).toBe(404);
  });

  it('lists only current keys (ListObjectsV2, with delimiter and pages), and every version with ListObjectVersions', async () => {
    await put('list/a/1.sfs', 'a1');
    await put('list/a/2.sfs', 'a2');
    await put('list/a/2.sfs', 'a2 again');
    await put('list/b.sfs', 'b');
    await put('list/c.sfs', 'c');
    await kit.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'list/c.sfs' }));

    const all = await kit.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'list/' }));
    expect(all.Contents?.map((o) => [o.Key, o.Size])).toEqual([['list/a/1.sfs', 2], ['list/a/2.sfs', 8], ['list/b.sfs', 1]]);
    const folders = await kit.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'list/', Delimiter: '/' }));
    expect([folders.CommonPrefixes?.map((p) => p.Prefix), folders.Contents?.map((o) => o.Key)]).toEqual([['list/a/'], ['list/b.sfs']]);

    const pages: string[][] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await kit.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'list/', Delimiter: '/', MaxKeys: 1, ContinuationToken }));
      pages.push([...(page.CommonPrefixes ?? []).map((p) => p.Prefix!), ...(page.Contents ?? []).map((o) => o.Key!)]);
      ContinuationToken = page.NextContinuationToken;
    } while (ContinuationToken);
    expect(pages).toEqual([['list/a/'], ['list/b.sfs']]);

    const versions = await kit.client.send(new ListObjectVersionsCommand({ Bucket: 'data', Prefix: 'list/' }));
    expect(versions.Versions?.map((v) => [v.Key, v.Size, v.IsLatest])).toEqual([
      ['list/a/1.sfs', 2, true],
      ['list/a/2.sfs', 8, true],
      ['list/a/2.sfs', 2, false],
      ['list/b.sfs', 1, true],
      ['list/c.sfs', 1, false],
    ]);
    expect(versions.DeleteMarkers?.map((m) => [m.Key, m.IsLatest])).toEqual([['list/c.sfs', true]]);
  });

  it('copies a chosen version into a new version of another key', async () => {
    const old = await put('copy/src.sfs', 'old content');
    await put('copy/src.sfs', 'new content');
    const copied = await kit.client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'copy/dst.sfs', CopySource: `data/copy/src.sfs?versionId=${old.VersionId}` }));
    expect(copied.CopySourceVersionId).toBe(old.VersionId);
    const dst = await get('copy/dst.sfs');
    expect([await text(dst.Body), dst.VersionId]).toEqual(['old content', copied.VersionId]);
  });

  it('gives concurrent PUTs to one key each their own version, content matching, in event order', async () => {
    const bodies = Array.from({ length: 12 }, (_, i) => `body number ${i} `.repeat(100 + i));
    const answers = await Promise.all(bodies.map((Body) => put('race/scene.sfs', Body)));
    expect(new Set(answers.map((a) => a.VersionId)).size).toBe(12);
    for (const [i, answer] of answers.entries()) expect(await text((await get('race/scene.sfs', answer.VersionId)).Body)).toBe(bodies[i]);

    const events = kit.eventsFor('race/scene.sfs');
    expect(events.map((e) => e.eventName)).toEqual(Array(12).fill('ObjectCreated:Put'));
    expect(new Set(events.map((e) => e.versionId))).toEqual(new Set(answers.map((a) => a.VersionId)));
    // The newest event names the current version.
    expect((await head('race/scene.sfs')).VersionId).toBe(events.at(-1)!.versionId);
  });
});

describe('versioning suspended', () => {
  let suspended: Kit;
  beforeAll(async () => {
    suspended = await startKit('suspended');
  });
  afterAll(() => suspended.close());

  it('writes the "null" version, replacing the previous one; a DELETE makes a "null" delete marker', async () => {
    const put = (Body: string) => suspended.client.send(new PutObjectCommand({ Bucket: 'data', Key: 's/scene.sfs', Body }));
    expect((await put('one')).VersionId).toBe('null');
    expect((await put('two')).VersionId).toBe('null');
    const versions = await suspended.client.send(new ListObjectVersionsCommand({ Bucket: 'data', Prefix: 's/' }));
    expect(versions.Versions?.map((v) => [v.VersionId, v.Size])).toEqual([['null', 3]]);
    const got = await suspended.client.send(new GetObjectCommand({ Bucket: 'data', Key: 's/scene.sfs', VersionId: 'null' }));
    expect([await text(got.Body), got.VersionId]).toEqual(['two', 'null']);

    const deleted = await suspended.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 's/scene.sfs' }));
    expect([deleted.DeleteMarker, deleted.VersionId]).toEqual([true, 'null']);
    expect(statusOf(await failure(suspended.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 's/scene.sfs' }))))).toBe(404);
    expect(suspended.eventsFor('s/scene.sfs').map((e) => [e.eventName, e.versionId])).toEqual([
      ['ObjectCreated:Put', 'null'],
      ['ObjectCreated:Put', 'null'],
      ['ObjectRemoved:DeleteMarkerCreated', 'null'],
    ]);
  });

  it('keeps the versions made while enabled when a bucket is suspended later', async () => {
    await suspended.client.send(new PutBucketVersioningCommand({ Bucket: 'other', VersioningConfiguration: { Status: 'Enabled' } }));
    const enabled = await suspended.client.send(new PutObjectCommand({ Bucket: 'other', Key: 'k.sfs', Body: 'kept' }));
    await suspended.client.send(new PutBucketVersioningCommand({ Bucket: 'other', VersioningConfiguration: { Status: 'Suspended' } }));
    const afterSuspend = await suspended.client.send(new PutObjectCommand({ Bucket: 'other', Key: 'k.sfs', Body: 'latest' }));
    expect(enabled.VersionId).toMatch(/^[A-Za-z0-9._]{32}$/);
    expect(afterSuspend.VersionId).toBe('null');
    const old = await suspended.client.send(new GetObjectCommand({ Bucket: 'other', Key: 'k.sfs', VersionId: enabled.VersionId }));
    expect(await text(old.Body)).toBe('kept');
  });
});

describe('unversioned', () => {
  let plain: Kit;
  beforeAll(async () => {
    plain = await startKit('unversioned');
  });
  afterAll(() => plain.close());

  it('names no version anywhere, and a DELETE removes the object', async () => {
    const put = await plain.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'n/scene.sfs', Body: 'plain' }));
    expect(put.VersionId).toBeUndefined();
    expect((await plain.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'n/scene.sfs' }))).VersionId).toBeUndefined();
    const deleted = await plain.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'n/scene.sfs' }));
    expect([deleted.DeleteMarker, deleted.VersionId]).toEqual([undefined, undefined]);
    const err = await failure(plain.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'n/scene.sfs' })));
    expect(statusOf(err)).toBe(404);
    expect(headersOf(err)['x-amz-delete-marker']).toBeUndefined();
    const events = plain.eventsFor('n/scene.sfs');
    expect(events.map((e) => e.eventName)).toEqual(['ObjectCreated:Put', 'ObjectRemoved:Delete']);
    expect(events.map((e) => e.versionId)).toEqual([undefined, undefined]);
    expect((await plain.client.send(new ListObjectsV2Command({ Bucket: 'data' }))).KeyCount).toBe(0);
  });
});
