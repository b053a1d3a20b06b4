import { encodeS3Key } from '../events.js';
import { receiveSmall } from './body.js';
import { drain, quoted, send, type S3Call } from './call.js';
import type { ObjectVersion, Version } from './versions.js';
import { element, elementsOf, invalidArgument, noSuchBucket, S3Error, xmlDocument } from './xml.js';

const OWNER = '<Owner><ID>local</ID><DisplayName>local</DisplayName></Owner>';
const CREATED = new Date().toISOString();
const compareKeys = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

export async function listBuckets(call: S3Call): Promise<void> {
  const buckets = call.store.bucketNames().map((name) => `<Bucket>${element('Name', name)}${element('CreationDate', CREATED)}</Bucket>`);
  send(call, 200, {}, xmlDocument('ListAllMyBucketsResult', `${OWNER}<Buckets>${buckets.join('')}</Buckets>`));
}

export async function headBucket(call: S3Call): Promise<void> {
  if (!call.store.hasBucket(call.bucket)) throw noSuchBucket(call.bucket);
  send(call, 200, { 'x-amz-bucket-region': 'us-east-1' });
}

export async function createBucket(call: S3Call): Promise<void> {
  await drain(call.req);
  call.store.createBucket(call.bucket);
  send(call, 200, { location: `/${call.bucket}` });
}

export async function getBucketLocation(call: S3Call): Promise<void> {
  call.store.mode(call.bucket);
  send(call, 200, {}, xmlDocument('LocationConstraint', ''));
}

export async function getBucketVersioning(call: S3Call): Promise<void> {
  const mode = call.store.mode(call.bucket);
  send(call, 200, {}, xmlDocument('VersioningConfiguration', mode === 'unversioned' ? '' : element('Status', mode === 'enabled' ? 'Enabled' : 'Suspended')));
}

export async function putBucketVersioning(call: S3Call): Promise<void> {
  const [status] = elementsOf(await receiveSmall(call.req, call.payloadHash), 'Status');
  if (status !== 'Enabled' && status !== 'Suspended') throw new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
  call.store.setMode(call.bucket, status === 'Enabled' ? 'enabled' : 'suspended');
  send(call, 200);
}

interface Page<T> {
  items: Array<{ key: string; item: T }>;
  commonPrefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned: where the next page starts. */
  last?: string;
}

/**
 * One page of a listing in key order: keys under `prefix` after `after`, rolled up into common prefixes at the
 * delimiter; each common prefix counts once toward `maxKeys`, and one equal to `after` was on an earlier page.
 */
function paginate<T>(rows: Array<{ key: string; item: T }>, o: { prefix: string; delimiter?: string; after?: string; maxKeys: number }): Page<T> {
  const page: Page<T> = { items: [], commonPrefixes: [], truncated: false };
  let count = 0;
  for (const row of rows) {
    if (!row.key.startsWith(o.prefix) || (o.after !== undefined && compareKeys(row.key, o.after) <= 0)) continue;
    const at = o.delimiter ? row.key.indexOf(o.delimiter, o.prefix.length) : -1;
    const commonPrefix = at >= 0 ? row.key.slice(0, at + o.delimiter!.length) : undefined;
    if (commonPrefix !== undefined && (commonPrefix === o.after || commonPrefix === page.commonPrefixes.at(-1))) continue;
    if (count === o.maxKeys) {
      page.truncated = true;
      break;
    }
    count++;
    if (commonPrefix !== undefined) page.commonPrefixes.push(commonPrefix);
    else page.items.push(row);
    page.last = commonPrefix ?? row.key;
  }
  return page;
}

function maxKeysOf(call: S3Call): number {
  const given = call.query.get('max-keys');
  if (given === undefined) return 1000;
  if (!/^\d+$/.test(given)) throw invalidArgument('Provided max-keys not an integer or within integer range', 'max-keys', given);
  return Math.min(Number(given), 1000);
}

/** ListObjectsV2 (list-type=2) and ListObjects: current versions only, never delete markers. */
export async function listObjects(call: S3Call): Promise<void> {
  const q = call.query;
  const v2 = q.get('list-type') === '2';
  const encode = q.get('encoding-type') === 'url' ? encodeS3Key : (text: string) => text;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') || undefined;
  const token = q.get('continuation-token');
  const after = v2 ? (token !== undefined ? decodeToken(token) : q.get('start-after')) : q.get('marker');
  const maxKeys = maxKeysOf(call);
  const rows = call.store.entries(call.bucket).flatMap(([key, versions]) => {
    const current = versions.at(-1)!;
    return current.deleteMarker ? [] : [{ key, item: current }];
  });
  const page = paginate<ObjectVersion>(rows, { prefix, delimiter, after, maxKeys });
  const contents = page.items.map(({ key, item }) =>
    `<Contents>${element('Key', encode(key))}${element('LastModified', item.lastModified.toISOString())}${element('ETag', quoted(item.eTag))}${element('Size', item.size)}<StorageClass>STANDARD</StorageClass>${v2 && q.get('fetch-owner') !== 'true' ? '' : OWNER}</Contents>`,
  );
  const prefixes = page.commonPrefixes.map((p) => `<CommonPrefixes>${element('Prefix', encode(p))}</CommonPrefixes>`);
  const head = [
    element('Name', call.bucket),
    element('Prefix', encode(prefix)),
    v2 ? element('StartAfter', q.has('start-after') ? encode(q.get('start-after')!) : undefined) : element('Marker', encode(q.get('marker') ?? '')),
    v2 ? element('ContinuationToken', token) : '',
    v2 && page.truncated ? element('NextContinuationToken', Buffer.from(page.last!).toString('base64url')) : '',
    !v2 && page.truncated && delimiter ? element('NextMarker', encode(page.last!)) : '',
    v2 ? element('KeyCount', page.items.length + page.commonPrefixes.length) : '',
    element('MaxKeys', maxKeys),
    element('Delimiter', delimiter === undefined ? undefined : encode(delimiter)),
    element('EncodingType', q.get('encoding-type')),
    element('IsTruncated', page.truncated),
  ].join('');
  send(call, 200, {}, xmlDocument('ListBucketResult', head + contents.join('') + prefixes.join('')));
}

function decodeToken(token: string): string {
  const decoded = Buffer.from(token, 'base64url').toString('utf8');
  if (!token || Buffer.from(decoded).toString('base64url') !== token) throw invalidArgument('The continuation token provided is incorrect', 'continuation-token', token);
  return decoded;
}

/** ListObjectVersions: every version and delete marker, keys in order, newest version first within a key. */
export async function listObjectVersions(call: S3Call): Promise<void> {
  const q = call.query;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') || undefined;
  const keyMarker = q.get('key-marker') || undefined;
  const versionIdMarker = q.get('version-id-marker') || undefined;
  const maxKeys = maxKeysOf(call);
  const entries: string[] = [];
  const prefixes: string[] = [];
  let truncated = false;
  let next: { key: string; versionId?: string } | undefined;
  let count = 0;
  page: for (const [key, versions] of call.store.entries(call.bucket)) {
    if (!key.startsWith(prefix) || (keyMarker !== undefined && compareKeys(key, keyMarker) < 0)) continue;
    if (key === keyMarker && !versionIdMarker) continue;
    const at = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
    if (at >= 0) {
      const commonPrefix = key.slice(0, at + delimiter!.length);
      if (commonPrefix === keyMarker || commonPrefix === prefixes.at(-1)) continue;
      if (count === maxKeys) {
        truncated = true;
        break;
      }
      prefixes.push(commonPrefix);
      count++;
      next = { key: commonPrefix };
      continue;
    }
    let newestFirst = [...versions].reverse();
    // Within the marker's key, the page goes on after the marker's version.
    if (key === keyMarker) newestFirst = newestFirst.slice(newestFirst.findIndex((v) => v.versionId === versionIdMarker) + 1);
    for (const version of newestFirst) {
      if (count === maxKeys) {
        truncated = true;
        break page;
      }
      const common = element('Key', key) + element('VersionId', version.versionId) + element('IsLatest', version === versions.at(-1)) + element('LastModified', version.lastModified.toISOString());
      entries.push(version.deleteMarker ? `<DeleteMarker>${common}${OWNER}</DeleteMarker>` : `<Version>${common}${element('ETag', quoted(version.eTag))}${element('Size', version.size)}<StorageClass>STANDARD</StorageClass>${OWNER}</Version>`);
      count++;
      next = { key, versionId: version.versionId };
    }
  }
  const head = [
    element('Name', call.bucket),
    element('Prefix', prefix),
    element('KeyMarker', keyMarker ?? ''),
    element('VersionIdMarker', versionIdMarker ?? ''),
    truncated ? element('NextKeyMarker', next?.key) + element('NextVersionIdMarker', next?.versionId) : '',
    element('MaxKeys', maxKeys),
    element('Delimiter', delimiter),
    element('IsTruncated', truncated),
  ].join('');
  send(call, 200, {}, xmlDocument('ListVersionsResult', head + entries.join('') + prefixes.map((p) => `<CommonPrefixes>${element('Prefix', p)}</CommonPrefixes>`).join('')));
}

/** DeleteObjects: each key deleted as a single DELETE would (markers, versions, events), answered in one document. */
export async function deleteObjects(call: S3Call): Promise<void> {
  const xml = await receiveSmall(call.req, call.payloadHash);
  const quiet = elementsOf(xml, 'Quiet')[0] === 'true';
  const results = [...xml.matchAll(/<Object>([\s\S]*?)<\/Object>/g)].map((m) => {
    const key = elementsOf(m[1]!, 'Key')[0] ?? '';
    const versionId = elementsOf(m[1]!, 'VersionId')[0];
    try {
      if (versionId !== undefined) {
        const removed: Version | undefined = call.store.deleteVersion(call.bucket, key, versionId);
        return quiet ? '' : `<Deleted>${element('Key', key)}${element('VersionId', versionId)}${removed?.deleteMarker ? element('DeleteMarker', true) + element('DeleteMarkerVersionId', versionId) : ''}</Deleted>`;
      }
      const { deleteMarker } = call.store.deleteCurrent(call.bucket, key);
      return quiet ? '' : `<Deleted>${element('Key', key)}${deleteMarker ? element('DeleteMarker', true) + element('DeleteMarkerVersionId', deleteMarker.versionId) : ''}</Deleted>`;
    } catch (err) {
      if (!(err instanceof S3Error)) throw err;
      return `<Error>${element('Key', key)}${element('VersionId', versionId)}${element('Code', err.code === 'InvalidArgument' ? 'NoSuchVersion' : err.code)}${element('Message', err.message)}</Error>`;
    }
  });
  send(call, 200, {}, xmlDocument('DeleteResult', results.join('')));
}
