import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { authenticate, parseQuery, type S3Accounts } from './s3/auth.js';
import { createBucket, deleteObjects, getBucketLocation, getBucketVersioning, headBucket, listBuckets, listObjects, listObjectVersions, putBucketVersioning } from './s3/buckets.js';
import type { S3Call } from './s3/call.js';
import { MultipartUploads } from './s3/multipart.js';
import { deleteObject, getObject, putObject } from './s3/objects.js';
import type { VersionStore } from './s3/versions.js';
import { newRequestId, notImplemented, S3Error } from './s3/xml.js';

/** Subresources S3 has and this stand-in does not: refused plainly rather than mistaken for a plain GET or PUT. */
const UNSUPPORTED = new Set([
  'accelerate', 'acl', 'analytics', 'attributes', 'cors', 'encryption', 'intelligent-tiering', 'inventory', 'legal-hold', 'lifecycle', 'logging',
  'metrics', 'notification', 'object-lock', 'ownershipControls', 'policy', 'policyStatus', 'publicAccessBlock', 'replication',
  'requestPayment', 'restore', 'retention', 'select', 'tagging', 'torrent', 'website',
]);

/**
 * The local S3's HTTP face, path-style only: authenticates every request as S3 does (presigned URLs through
 * presign-check, Authorization headers by recomputing their SigV4 signature; anonymous requests are refused), then
 * serves it from the version store.
 */
export async function startS3Front(options: { store: VersionStore; accounts: S3Accounts }) {
  const multipart = new MultipartUploads();

  const server = createServer((req, res) => {
    const requestId = newRequestId();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('x-amz-id-2', requestId);
    res.setHeader('server', 'AmazonS3');
    handle(req, res).catch((err: unknown) => {
      // A body nobody read is still drained, so a client that sent it gets the answer.
      if (!req.complete) req.resume();
      const error = err instanceof S3Error ? err : new S3Error(500, 'InternalError', (err as Error).message);
      if (res.headersSent) return void res.destroy();
      const body = req.method === 'HEAD' ? undefined : Buffer.from(error.body(requestId));
      res.writeHead(error.status, { ...error.headers, ...(body ? { 'content-type': 'application/xml', 'content-length': body.length } : {}) }).end(body);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = req.headers.host ?? '127.0.0.1';
    const rawUrl = req.url ?? '/';
    const at = rawUrl.indexOf('?');
    const rawPath = at < 0 ? rawUrl : rawUrl.slice(0, at);
    const rawQuery = at < 0 ? '' : rawUrl.slice(at + 1);
    const url = new URL(rawUrl, `http://${host}`);
    const method = req.method ?? 'GET';
    const { payloadHash } = await authenticate({ method, url, rawPath, rawQuery, headers: req.headers }, options.accounts);

    const query = new Map<string, string>();
    for (const [name, value] of parseQuery(rawQuery)) if (!query.has(name)) query.set(name, value);
    const slash = rawPath.indexOf('/', 1);
    let bucket: string;
    let key: string;
    try {
      bucket = decodeURIComponent(slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash));
      key = slash < 0 ? '' : decodeURIComponent(rawPath.slice(slash + 1));
    } catch {
      throw new S3Error(400, 'InvalidURI', 'Could not parse the specified URI.');
    }
    const call: S3Call = { req, res, method, bucket, key, query, payloadHash, store: options.store, origin: `http://${host}` };
    const unsupported = [...query.keys()].find((name) => UNSUPPORTED.has(name));
    if (unsupported) throw notImplemented(`The ?${unsupported} subresource`);
    await route(call);
  }

  async function route(call: S3Call): Promise<void> {
    const { method, bucket, key, query } = call;
    if (!bucket) {
      if (method === 'GET') return listBuckets(call);
    } else if (!key) {
      if (method === 'HEAD') return headBucket(call);
      if (method === 'GET' && query.has('versioning')) return getBucketVersioning(call);
      if (method === 'GET' && query.has('location')) return getBucketLocation(call);
      if (method === 'GET' && query.has('versions')) return listObjectVersions(call);
      if (method === 'GET' && query.has('uploads')) throw notImplemented('ListMultipartUploads');
      if (method === 'GET') return listObjects(call);
      if (method === 'PUT' && query.has('versioning')) return putBucketVersioning(call);
      if (method === 'PUT') return createBucket(call);
      if (method === 'POST' && query.has('delete')) return deleteObjects(call);
      if (method === 'POST') throw notImplemented('POST Object (a browser form upload)');
      if (method === 'DELETE') throw notImplemented('DeleteBucket');
    } else {
      if ((method === 'GET' || method === 'HEAD') && query.has('uploadId')) throw notImplemented('ListParts');
      if ((method === 'GET' || method === 'HEAD') && query.has('partNumber')) throw notImplemented('Reading one part (?partNumber)');
      if (method === 'GET' || method === 'HEAD') return getObject(call);
      if (method === 'PUT' && query.has('uploadId')) return multipart.uploadPart(call);
      if (method === 'PUT') return putObject(call);
      if (method === 'POST' && query.has('uploads')) return multipart.create(call);
      if (method === 'POST' && query.has('uploadId')) return multipart.complete(call);
      if (method === 'DELETE' && query.has('uploadId')) return multipart.abort(call);
      if (method === 'DELETE') return deleteObject(call);
    }
    throw new S3Error(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.', {}, { Method: method });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
