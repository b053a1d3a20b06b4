import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3EventRecord } from '../events.js';
import type { Credentials } from '../presign-check.js';
import { startS3Front } from '../s3-front.js';
import { VersionStore, type VersioningMode } from '../s3/versions.js';

export type { VersioningMode } from '../s3/versions.js';

export interface LocalS3Options {
  buckets: string[];
  /** The buckets' versioning state at start (default 'enabled', as the stack's buckets). */
  versioning?: VersioningMode;
  /** The only account: every request must be signed with it (header or presigned URL). */
  credentials: Credentials;
  /** Accepted on header-signed requests only: URLs presigned with them are refused, as with expired role credentials. */
  urlRefusedCredentials?: Credentials[];
}

/**
 * An S3 on a free loopback port, as strict as S3 where the pipeline depends on it: versions and delete markers,
 * SigV4 header signatures and SigV4/SigV2 presigned URLs verified, and one S3 event notification record per write or delete.
 * Object bytes live in a fresh temporary folder, removed on close.
 */
export async function startLocalS3(options: LocalS3Options) {
  const directory = await mkdtemp(join(tmpdir(), 'local-s3-'));
  const store = new VersionStore(directory, options.buckets, options.versioning ?? 'enabled');
  const front = await startS3Front({ store, accounts: { credentials: options.credentials, urlRefusedCredentials: options.urlRefusedCredentials } });
  return {
    endpoint: front.endpoint,
    /** Called with the records of each write or delete, as S3 would notify them, before the request is answered. */
    onEvent: (listener: (records: S3EventRecord[]) => void) => store.onEvent(listener),
    versioning: (bucket: string) => store.mode(bucket),
    close: async () => {
      await front.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

export type LocalS3 = Awaited<ReturnType<typeof startLocalS3>>;
