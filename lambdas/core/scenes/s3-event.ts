import * as z from 'zod/mini';
import { checkAgainst, quote, summarizeProblems } from '../shared/validation.js';
import type { UploadIdentity } from './scene-identity.js';

/** Keys in S3 event notifications are URL-encoded with '+' for spaces: `red+flower%C3%A9.sfs`. */
export function encodeS3Key(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

export function decodeS3Key(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}

const S3RecordSchema = z.looseObject({
  eventName: z.string(),
  eventTime: z.optional(z.string()),
  s3: z.looseObject({
    bucket: z.looseObject({ name: z.string() }),
    object: z.looseObject({
      key: z.string(),
      size: z.optional(z.number()),
      eTag: z.optional(z.string()),
      versionId: z.optional(z.string()),
      sequencer: z.optional(z.string()),
    }),
  }),
});

const S3NotificationSchema = z.looseObject({ Records: z.array(S3RecordSchema) });

/** An object written to the bucket: a new upload (or a redelivery of one). */
export interface UploadEvent extends UploadIdentity {
  eventName: string;
  size?: number;
  /** When S3 stored the object (ISO). */
  eventTime?: string;
}

/** An object or version removed: a delete marker, a deleted version, or (unversioned) the object itself. */
export interface RemovalEvent {
  eventName: string;
  bucket: string;
  key: string;
  /** The delete marker's id (DeleteMarkerCreated) or the removed version's id (Delete of a version). */
  versionId?: string;
  sequencer?: string;
  /** When S3 removed it (ISO). */
  eventTime?: string;
}

export type BucketChange = { kind: 'created'; upload: UploadEvent } | { kind: 'removed'; removal: RemovalEvent };

/**
 * The changes in one SQS message body (an S3 event notification). Throws with a clear, bounded message for a body
 * that is not one; a test event, and event types this product does not act on, yield nothing.
 */
export function changesInMessage(body: string): BucketChange[] {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error('message body is not JSON; expected an S3 event notification');
  }
  // S3 sends one test event when a notification is configured; it names no object.
  if ((json as { Event?: unknown } | null)?.Event === 's3:TestEvent') return [];
  const parsed = checkAgainst(S3NotificationSchema, json);
  if (!parsed.ok) throw new Error(`message body is not an S3 event notification: ${summarizeProblems(parsed.problems)}`);
  return parsed.value.Records.flatMap((r, i): BucketChange[] => {
    const object = r.s3.object;
    let key: string;
    try {
      key = decodeS3Key(object.key);
    } catch {
      throw new Error(`Records[${i}].s3.object.key is not URL-encoded as S3 sends keys: ${quote(object.key, 200)}`);
    }
    const common = {
      eventName: r.eventName,
      bucket: r.s3.bucket.name,
      key,
      ...(object.versionId ? { versionId: object.versionId } : {}),
      ...(object.sequencer ? { sequencer: object.sequencer } : {}),
      ...(r.eventTime ? { eventTime: r.eventTime } : {}),
    };
    if (r.eventName.startsWith('ObjectCreated:')) {
      const eTag = object.eTag?.replace(/"/g, '');
      const extra = { ...(eTag ? { eTag } : {}), ...(object.size !== undefined ? { size: object.size } : {}) };
      return [{ kind: 'created', upload: { ...common, ...extra } }];
    }
    if (r.eventName.startsWith('ObjectRemoved:')) return [{ kind: 'removed', removal: common }];
    return [];
  });
}

/**
 * The S3 event notification S3 sent for an upload, as create-task reads it back: the same bucket, key (encoded as
 * S3 encodes it), versionId, sequencer and ETag, so it names the same upload (the same uniqueId). Sending it to the
 * ingest queue submits that upload again by the very path an upload takes (the reconciler's resubmissions, retries).
 * `eventTime` bounds how long it may wait in the queue for Scale's rate limit (a day from then).
 */
export function uploadNotification(upload: UploadIdentity & { size?: number }, eventTime: Date): string {
  const object = {
    key: encodeS3Key(upload.key),
    ...(upload.size !== undefined ? { size: upload.size } : {}),
    ...(upload.eTag ? { eTag: upload.eTag } : {}),
    ...(upload.versionId ? { versionId: upload.versionId } : {}),
    ...(upload.sequencer ? { sequencer: upload.sequencer } : {}),
  };
  return JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', eventTime: eventTime.toISOString(), s3: { bucket: { name: upload.bucket }, object } }] });
}

/** S3 sequencers order events for one key: as AWS documents, right-pad the shorter with zeros, then compare. */
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  const [x, y] = [a.toUpperCase().padEnd(width, '0'), b.toUpperCase().padEnd(width, '0')];
  return x < y ? -1 : x > y ? 1 : 0;
}
