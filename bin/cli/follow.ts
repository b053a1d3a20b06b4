/**
 * Following uploads to the pipeline's verdict: which task record belongs to one upload (by the version S3 answered
 * it with, looked up through the table's byKey index), and waiting until each upload's record reaches a final state
 * or the time runs out.
 */
import { isRealVersionId } from '../../lambdas/core/scenes/scene-identity.js';
import type { TaskRecord, TaskStatus } from '../../lambdas/core/tasks/task-record.js';

/**
 * States nothing changes on its own. `failed` is included: the message waits in the dead-letter queue until someone
 * redrives it, so waiting longer would only wait for the timeout.
 */
export const FINAL_STATUSES: ReadonlySet<TaskStatus> = new Set<TaskStatus>(['completed', 'error', 'canceled', 'rejected', 'create_failed', 'failed']);

/** One object as S3 stored it: what tells its record from the records of every other upload of the same key. */
export interface UploadedVersion {
  bucket: string;
  key: string;
  /** As S3 answered: absent, or "null", where the bucket keeps no versions. */
  versionId?: string;
  /** Without quotes. */
  eTag: string;
  /** When the upload began (ISO time): on a bucket without versions, older records are earlier uploads. */
  startedAt: string;
}

/** Every record of one object key, newest first (the store's `findByKey` over the byKey index). */
export type FindByKey = (bucket: string, key: string) => Promise<TaskRecord[]>;

/** How far this machine's clock may be ahead of the function's that wrote the record. */
const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * The record of exactly this upload: the one with its versionId. Where the bucket gives no versionId, the newest
 * record with its ETag created since the upload began (the same bytes uploaded twice are told apart by time alone).
 */
export function recordOfUpload(records: TaskRecord[], upload: UploadedVersion): TaskRecord | undefined {
  const sameObject = records.filter((record) => record.bucket === upload.bucket && record.key === upload.key);
  if (isRealVersionId(upload.versionId)) return sameObject.find((record) => record.versionId === upload.versionId);
  const earliest = new Date(Date.parse(upload.startedAt) - CLOCK_SKEW_MS).toISOString();
  return sameObject
    .filter((record) => record.eTag === upload.eTag && record.createdAt >= earliest)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
}

export interface FollowedUpload<T extends UploadedVersion = UploadedVersion> {
  upload: T;
  /** The newest state seen; absent when the pipeline never recorded the upload in time. */
  record?: TaskRecord;
  /** Whether that state is final; false when the time ran out first. */
  final: boolean;
}

export interface FollowOptions {
  timeoutMs: number;
  /** Told each time an upload's record shows a new status (for a running commentary). */
  onChange?: (upload: UploadedVersion, record: TaskRecord, previous: TaskStatus | undefined) => void;
  /** The first pause between two rounds of look-ups; it grows to `maxPollMs` so a long wait costs few queries. */
  firstPollMs?: number;
  maxPollMs?: number;
}

/** Look-ups run this many at a time. */
const LOOKUP_CONCURRENCY = 8;

/** Follows every upload until its record is final or `timeoutMs` passed; resolves with the last state of each. */
export async function followUploads<T extends UploadedVersion>(uploads: T[], findByKey: FindByKey, options: FollowOptions): Promise<FollowedUpload<T>[]> {
  const deadline = Date.now() + options.timeoutMs;
  const followed: FollowedUpload<T>[] = uploads.map((upload) => ({ upload, final: false }));
  let pause = options.firstPollMs ?? 250;
  for (;;) {
    const open = followed.filter((item) => !item.final);
    for (let i = 0; i < open.length; i += LOOKUP_CONCURRENCY) {
      await Promise.all(
        open.slice(i, i + LOOKUP_CONCURRENCY).map(async (item) => {
          const record = recordOfUpload(await findByKey(item.upload.bucket, item.upload.key), item.upload);
          if (!record) return;
          if (record.status !== item.record?.status) options.onChange?.(item.upload, record, item.record?.status);
          item.record = record;
          item.final = FINAL_STATUSES.has(record.status);
        }),
      );
    }
    const left = deadline - Date.now();
    if (followed.every((item) => item.final) || left <= 0) return followed;
    await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
    pause = Math.min(options.maxPollMs ?? 5_000, Math.round(pause * 1.5));
  }
}

/** Why an upload did not complete, in the record's own words; undefined when it completed. */
export function outcomeDetail(item: FollowedUpload, waited: string): string | undefined {
  const { record } = item;
  if (!record) return `no record after ${waited}: the pipeline has not processed the upload (is it consuming its queue? see sfs-pipeline redrive)`;
  if (!item.final) return `still ${record.status} after ${waited}${record.lastError ? ` (last error: ${record.lastError})` : ''}`;
  if (record.status === 'completed') return undefined;
  if (record.status === 'failed') return `${record.lastError ?? 'every delivery failed'}; once the cause is fixed, sfs-pipeline redrive resumes it`;
  const scaleError = record.scaleError ? `Scale: ${record.scaleError.status ? `${record.scaleError.status} ` : ''}${record.scaleError.message}` : undefined;
  return record.reason ?? scaleError ?? record.lastError ?? record.status;
}

/** "30m" → 1_800_000; also "90s", "2h", "500ms", or plain seconds. Undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  const ms = Number(match[1]) * unit;
  return ms > 0 ? ms : undefined;
}
