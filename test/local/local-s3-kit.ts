import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { startLocalS3, type VersioningMode } from '../../local/emulators/s3.js';
import { s3ObjectEvent, type S3EventRecord } from '../../local/events.js';
import type { Credentials } from '../../local/presign-check.js';

export const CREDENTIALS: Credentials = { accessKeyId: 'LOCALKEY', secretAccessKey: 'local-secret-0123' };

export function clientFor(endpoint: string, credentials: Credentials = CREDENTIALS, extra: S3ClientConfig = {}): S3Client {
  return new S3Client({ region: 'us-east-1', endpoint, credentials, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', ...extra });
}

/** A local S3 with its own client and the event records it emitted. */
export async function startKit(versioning: VersioningMode, extra: { urlRefusedCredentials?: Credentials[] } = {}) {
  const s3 = await startLocalS3({ buckets: ['data', 'other'], versioning, credentials: CREDENTIALS, ...extra });
  const records: S3EventRecord[] = [];
  s3.onEvent((batch) => records.push(...batch));
  return {
    s3,
    client: clientFor(s3.endpoint),
    records,
    /** The decoded events for one key, in the order S3 emitted them. */
    eventsFor: (key: string) => records.map(s3ObjectEvent).filter((e) => e.key === key),
    close: () => s3.close(),
  };
}

export type Kit = Awaited<ReturnType<typeof startKit>>;

/** AWS's rule for sequencers: compare as hex strings after left-padding to equal length. */
export function sequencersIncrease(sequencers: string[]): boolean {
  const width = Math.max(...sequencers.map((s) => s.length));
  const padded = sequencers.map((s) => s.padStart(width, '0'));
  return padded.every((s, i) => i === 0 || s > padded[i - 1]!);
}

export const text = async (body: { transformToString(): Promise<string> } | undefined) => body!.transformToString();
