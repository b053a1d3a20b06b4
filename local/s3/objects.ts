import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, open, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { receiveToFile } from './body.js';
import { drain, quoted, send, versionHeaders, type S3Call } from './call.js';
import { checkVersionIdShape, type ObjectAttributes, type ObjectVersion, type Version } from './versions.js';
import { element, S3Error, xmlDocument } from './xml.js';

const STORED_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'];
const RESPONSE_OVERRIDES = ['content-type', 'content-language', 'expires', 'cache-control', 'content-disposition', 'content-encoding'];

export function attributesOf(req: IncomingMessage): ObjectAttributes {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === 'string' && (STORED_HEADERS.includes(name) || name.startsWith('x-amz-meta-'))) headers[name] = value;
  }
  return { contentType: req.headers['content-type'] ?? 'binary/octet-stream', headers };
}

const httpDate = (date: Date) => date.toUTCString();

/** The version a GET/HEAD (or a copy's source) names, with S3's answers for what is missing or a delete marker. */
function resolve(call: S3Call, bucket: string, key: string, versionId: string | undefined): ObjectVersion {
  const details = { Key: key, ...(versionId !== undefined ? { VersionId: versionId } : {}) };
  if (versionId !== undefined) {
    checkVersionIdShape(versionId);
    const version = call.store.find(bucket, key, versionId);
    if (!version) throw new S3Error(404, 'NoSuchVersion', 'The specified version does not exist.', {}, details);
    if (version.deleteMarker) {
      throw new S3Error(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.', markerHeaders(version), { Method: call.method, ResourceType: 'DeleteMarker' });
    }
    return version;
  }
  const current = call.store.current(bucket, key);
  if (!current) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', {}, details);
  if (current.deleteMarker) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', markerHeaders(current), details);
  return current;
}

const markerHeaders = (marker: Version) => ({ 'x-amz-delete-marker': 'true', 'x-amz-version-id': marker.versionId, 'last-modified': httpDate(marker.lastModified) });

/** If-Match / If-None-Match / If-(Un)Modified-Since on a read, as S3 evaluates them. */
function checkConditions(call: S3Call, version: ObjectVersion): 'ok' | 'not-modified' {
  const h = call.req.headers;
  const seconds = Math.floor(version.lastModified.getTime() / 1000) * 1000;
  const matches = (list: string) => list.split(',').some((t) => t.trim() === '*' || t.trim().replace(/"/g, '') === version.eTag);
  if (h['if-match'] !== undefined && !matches(h['if-match'])) throw new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {}, { Condition: 'If-Match' });
  if (h['if-match'] === undefined && h['if-unmodified-since'] && seconds > Date.parse(h['if-unmodified-since'])) {
    throw new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {}, { Condition: 'If-Unmodified-Since' });
  }
  if (h['if-none-match'] !== undefined) return matches(h['if-none-match']) ? 'not-modified' : 'ok';
  if (h['if-modified-since'] && seconds <= Date.parse(h['if-modified-since'])) return 'not-modified';
  return 'ok';
}

/** A single `bytes=` range (S3 ignores what it cannot parse and serves the whole object). */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  const unsatisfiable = () => new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable', { 'content-range': `bytes */${size}` }, { RangeRequested: header, ActualObjectSize: String(size) });
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) throw unsatisfiable();
  return { start, end };
}

export async function getObject(call: S3Call): Promise<void> {
  const { bucket, key, query } = call;
  const version = resolve(call, bucket, key, query.get('versionId'));
  const headers: Record<string, string | number> = {
    'last-modified': httpDate(version.lastModified),
    etag: quoted(version.eTag),
    'accept-ranges': 'bytes',
    'content-type': version.contentType,
    ...version.headers,
    ...versionHeaders(call, version),
  };
  for (const name of RESPONSE_OVERRIDES) {
    const override = query.get(`response-${name}`);
    if (override !== undefined) headers[name] = override;
  }
  if (checkConditions(call, version) === 'not-modified') {
    call.res.writeHead(304, { etag: quoted(version.eTag), 'last-modified': httpDate(version.lastModified), ...versionHeaders(call, version) }).end();
    return;
  }
  const range = parseRange(call.req.headers.range, version.size);
  // The version may have been deleted since it was resolved: then it is gone, as S3 would say.
  const file = await open(version.file).catch(() => {
    throw new S3Error(404, query.has('versionId') ? 'NoSuchVersion' : 'NoSuchKey', 'The specified key does not exist.', {}, { Key: key });
  });
  const status = range ? 206 : 200;
  const length = range ? range.end - range.start + 1 : version.size;
  call.res.writeHead(status, { ...headers, 'content-length': length, ...(range ? { 'content-range': `bytes ${range.start}-${range.end}/${version.size}` } : {}) });
  if (call.method === 'HEAD' || length === 0) {
    await file.close();
    call.res.end();
    return;
  }
  const stream = file.createReadStream({ start: range?.start ?? 0, end: range?.end ?? version.size - 1 });
  // A client that stops reading (a ranged header read, a dropped download) ends the read too.
  call.res.on('close', () => stream.destroy());
  stream.on('error', () => call.res.destroy());
  stream.pipe(call.res);
}

/** Conditional writes: If-None-Match: * (create only) and If-Match: <etag>, evaluated when the write lands. */
function checkWriteConditions(call: S3Call): void {
  const current = call.store.current(call.bucket, call.key);
  const live = current && !current.deleteMarker ? current : undefined;
  const ifNoneMatch = call.req.headers['if-none-match'];
  const ifMatch = call.req.headers['if-match'];
  if (ifNoneMatch === '*' && live) throw new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {}, { Condition: 'If-None-Match' });
  if (ifMatch !== undefined) {
    if (!live) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', {}, { Key: call.key });
    if (ifMatch.replace(/"/g, '') !== live.eTag) throw new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {}, { Condition: 'If-Match' });
  }
}

export async function putObject(call: S3Call): Promise<void> {
  if (call.req.headers['x-amz-copy-source'] !== undefined) return copyObject(call);
  const file = call.store.newBlobPath();
  const { size, md5Hex } = await receiveToFile(call.req, file, call.payloadHash);
  try {
    checkWriteConditions(call);
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
  const version = call.store.commitObject(call.bucket, call.key, { ...attributesOf(call.req), size, eTag: md5Hex, file }, 'ObjectCreated:Put');
  send(call, 200, { etag: quoted(version.eTag), ...versionHeaders(call, version) });
}

async function copyObject(call: S3Call): Promise<void> {
  await drain(call.req);
  const source = String(call.req.headers['x-amz-copy-source']);
  const [path = '', search = ''] = source.split('?');
  const sourceVersionId = new URLSearchParams(search).get('versionId') ?? undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path).replace(/^\//, '');
  } catch {
    throw new S3Error(400, 'InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey');
  }
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) throw new S3Error(400, 'InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey');
  const [sourceBucket, sourceKey] = [decoded.slice(0, slash), decoded.slice(slash + 1)];
  let from: ObjectVersion;
  try {
    from = resolve(call, sourceBucket, sourceKey, sourceVersionId);
  } catch (err) {
    if (err instanceof S3Error && err.status === 405) throw new S3Error(400, 'InvalidRequest', 'The source of a copy request may not specifically refer to a delete marker by version id.');
    throw err;
  }
  const replace = call.req.headers['x-amz-metadata-directive'] === 'REPLACE';
  const file = call.store.newBlobPath();
  const md5 = createHash('md5');
  try {
    await copyFile(from.file, file);
    for await (const chunk of createReadStream(file)) md5.update(chunk as Buffer);
    checkWriteConditions(call);
  } catch (err) {
    await rm(file, { force: true });
    throw err instanceof S3Error ? err : new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', {}, { Key: sourceKey });
  }
  const attributes = replace ? attributesOf(call.req) : { contentType: from.contentType, headers: from.headers };
  const version = call.store.commitObject(call.bucket, call.key, { ...attributes, size: from.size, eTag: md5.digest('hex'), file }, 'ObjectCreated:Copy');
  const sourceVersioned = call.store.mode(sourceBucket) !== 'unversioned';
  const body = xmlDocument('CopyObjectResult', element('LastModified', version.lastModified.toISOString()) + element('ETag', quoted(version.eTag)));
  send(call, 200, { ...versionHeaders(call, version), ...(sourceVersioned ? { 'x-amz-copy-source-version-id': from.versionId } : {}) }, body);
}

export async function deleteObject(call: S3Call): Promise<void> {
  await drain(call.req);
  const versionId = call.query.get('versionId');
  if (versionId !== undefined) {
    const removed = call.store.deleteVersion(call.bucket, call.key, versionId);
    send(call, 204, { 'x-amz-version-id': versionId, ...(removed?.deleteMarker ? { 'x-amz-delete-marker': 'true' } : {}) });
    return;
  }
  const { deleteMarker } = call.store.deleteCurrent(call.bucket, call.key);
  send(call, 204, deleteMarker ? versionHeaders(call, deleteMarker) : {});
}
