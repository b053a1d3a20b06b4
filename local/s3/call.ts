import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Version, VersionStore } from './versions.js';

/** One authenticated request, addressed path-style: `/bucket/key`. */
export interface S3Call {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  /** Empty for the service (ListBuckets). */
  bucket: string;
  /** Decoded; empty for bucket-level requests. */
  key: string;
  /** First value of each query parameter. */
  query: Map<string, string>;
  /** The SHA-256 of the body the request signed (header-signed requests only). */
  payloadHash?: string;
  store: VersionStore;
  /** `http://host`, for the Location of a completed multipart upload. */
  origin: string;
}

export function send(call: S3Call, status: number, headers: Record<string, string | number> = {}, body?: string): void {
  const bytes = body === undefined ? undefined : Buffer.from(body);
  call.res.writeHead(status, {
    ...(bytes ? { 'content-type': 'application/xml', 'content-length': bytes.length } : { 'content-length': 0 }),
    ...headers,
  });
  call.res.end(bytes);
}

/** S3 names the version in its answers once a bucket has had versioning on (suspended buckets say "null"). */
export function versionHeaders(call: S3Call, version: Version): Record<string, string> {
  if (call.store.mode(call.bucket) === 'unversioned') return {};
  return { 'x-amz-version-id': version.versionId, ...(version.deleteMarker ? { 'x-amz-delete-marker': 'true' } : {}) };
}

/** Reads and discards a body the operation does not use, so the connection can carry the next request. */
export async function drain(req: IncomingMessage): Promise<void> {
  for await (const chunk of req) void chunk;
}

export const quoted = (eTag: string) => `"${eTag}"`;
