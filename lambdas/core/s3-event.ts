import * as z from 'zod/mini';
import { checkAgainst } from './validation.js';
import type { SceneRef } from './scene-identity.js';

/** Keys in S3 event notifications are URL-encoded with '+' for spaces: `red+flower%C3%A9.sfs`. */
export function decodeS3Key(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}

const S3RecordSchema = z.looseObject({
  eventName: z.string(),
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

export interface UploadEvent extends SceneRef {
  eventName: string;
  size?: number;
}

/**
 * The uploads in one SQS message body (an S3 event notification). Throws with a clear message for a body that
 * is not one; a test event yields no uploads.
 */
export function uploadsInMessage(body: string): UploadEvent[] {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error('message body is not JSON; expected an S3 event notification');
  }
  // S3 sends one test event when a notification is configured; it names no object.
  if ((json as { Event?: unknown } | null)?.Event === 's3:TestEvent') return [];
  const parsed = checkAgainst(S3NotificationSchema, json);
  if (!parsed.ok) throw new Error(`message body is not an S3 event notification: ${parsed.problems.join('; ')}`);
  return parsed.value.Records.filter((r) => r.eventName.startsWith('ObjectCreated:')).map((r) => ({
    eventName: r.eventName,
    bucket: r.s3.bucket.name,
    key: decodeS3Key(r.s3.object.key),
    ...(r.s3.object.versionId ? { versionId: r.s3.object.versionId } : {}),
    ...(r.s3.object.eTag ? { eTag: r.s3.object.eTag } : {}),
    ...(r.s3.object.size !== undefined ? { size: r.s3.object.size } : {}),
  }));
}
