import { describe, expect, it } from 'vitest';
import type { CreateMultistageTaskRequest, ScaleTask } from '../../../../lambdas/core/scale/schemas.js';
import type { UploadEvent } from '../../../../lambdas/core/scenes/s3-event.js';
import type { SceneRef } from '../../../../lambdas/core/scenes/scene-identity.js';
import type { ObjectHead, SceneObjects } from '../../../../lambdas/core/scenes/scene-objects.js';
import { submitScene } from '../../../../lambdas/core/scenes/submit-scene.js';
import { encodeSfsToBuffer } from '../../../../lambdas/core/scenes/sfs/writer.js';
import { parseConfig, RoutingSchema } from '../../../../lambdas/core/shared/config.js';
import type { TaskStore } from '../../../../lambdas/core/tasks/task-store.js';
import { buildSampleScene } from '../../../../local/sample-scenes.js';
import { expectedUniqueId } from '../../../helpers/identity.js';

/*
 * The object changed between S3's event and create-task's HEAD: the event's identity (its version, or its
 * sequencer and ETag) names content that is no longer there. Whatever the bucket's versioning, the new content must
 * never be sent to Scale under the old identity; the newer write has its own event and gets its own task.
 */
const KEY = 'drive/scene.sfs';
const SCENE = encodeSfsToBuffer(buildSampleScene());
const OTHER_SCENE = encodeSfsToBuffer(buildSampleScene({ seed: 99 }));
const routing = parseConfig(RoutingSchema, { project: 'scenes-default' }, 'routing');

interface StoredVersion {
  versionId?: string;
  eTag: string;
  body: Uint8Array;
}

/** One key's writes, oldest first, answering as S3 does: HEAD/GET of no version is the newest, of one version is it. */
function bucketWith(...versions: StoredVersion[]) {
  const reads: SceneRef[] = [];
  const presigned: SceneRef[] = [];
  const find = (ref: SceneRef) => (ref.versionId === undefined ? versions.at(-1) : versions.find((v) => v.versionId === ref.versionId));
  const objects: SceneObjects = {
    async head(ref): Promise<ObjectHead> {
      const v = ref.key === KEY ? find(ref) : undefined;
      return v ? { exists: true, size: v.body.length, eTag: v.eTag, ...(v.versionId ? { versionId: v.versionId } : {}) } : { exists: false };
    },
    async readPrefix(ref, bytes) {
      reads.push(ref);
      const body = find(ref)!.body.subarray(0, bytes);
      return (async function* () {
        yield body;
      })();
    },
    async presign(ref) {
      presigned.push(ref);
      return { url: `https://s3.test/scenes/${ref.key}${ref.versionId ? `?versionId=${ref.versionId}` : ''}` };
    },
  };
  return { objects, reads, presigned };
}

function recordingDeps(objects: SceneObjects) {
  const creates: CreateMultistageTaskRequest[] = [];
  const outcomes: string[] = [];
  const store = {
    startSubmission: async () => 'started' as const,
    recordRejection: async (_id: string, _claim: string, reason: string) => void outcomes.push(`rejected: ${reason}`),
    recordSubmitted: async (_id: string, details: { taskId: string }) => (outcomes.push(`submitted: ${details.taskId}`), 'recorded' as const),
    recordCreateFailure: async () => void outcomes.push('create_failed'),
  } as unknown as TaskStore;
  const scale = {
    createMultistageTask: async (request: CreateMultistageTaskRequest) => {
      creates.push(request);
      return { task: { task_id: 'task-1', status: 'pending' } as ScaleTask, adopted: false };
    },
    findTaskByUniqueId: async () => undefined,
    cancelTask: async () => {
      throw new Error('nothing is canceled here');
    },
  };
  const deps = { objects, store, scale, routing, callbackBaseUrl: 'https://api.test/callback', signingKey: 'k', claimId: 'claim-1' };
  return { deps, creates, outcomes };
}

const event = (fields: Partial<UploadEvent>): UploadEvent => ({ eventName: 'ObjectCreated:Put', bucket: 'scenes', key: KEY, size: SCENE.length, ...fields });

describe('an upload overwritten between its event and the HEAD', () => {
  it.each([
    ['an unversioned bucket (no versionId)', { eTag: 'e-old', sequencer: '0062F1A7B3C4D5E600' }, { eTag: 'e-new' }],
    ['a suspended bucket (version "null")', { versionId: 'null', eTag: 'e-old', sequencer: '0062F1A7B3C4D5E600' }, { versionId: 'null', eTag: 'e-new' }],
  ])('in %s: rejected under its own id, and nothing is read, signed or sent', async (_name, old, current) => {
    const bucket = bucketWith({ ...current, body: OTHER_SCENE });
    const { deps, creates, outcomes } = recordingDeps(bucket.objects);
    const outcome = await submitScene(event(old), deps);
    expect(outcome).toMatchObject({ kind: 'rejected', uniqueId: expectedUniqueId({ bucket: 'scenes', key: KEY, ...old }), reason: expect.stringContaining('overwritten before it was processed') });
    expect(outcomes).toEqual([expect.stringContaining('rejected: the object was overwritten')]);
    expect([creates, bucket.reads, bucket.presigned]).toEqual([[], [], []]);
  });

  it.each([
    ['other bytes', 'e-new'],
    ['the same bytes (same ETag)', 'e-1'],
  ])('in a versioned bucket, a newer version with %s: rejected, the old version never sent', async (_name, newerETag) => {
    const bucket = bucketWith({ versionId: 'v1', eTag: 'e-1', body: SCENE }, { versionId: 'v2', eTag: newerETag, body: OTHER_SCENE });
    const { deps, creates } = recordingDeps(bucket.objects);
    const outcome = await submitScene(event({ versionId: 'v1', eTag: 'e-1', sequencer: '0062F1A7B3C4D5E600' }), deps);
    expect(outcome).toMatchObject({ kind: 'rejected', reason: expect.stringContaining('a newer version (v2) replaced this one') });
    expect([creates, bucket.reads, bucket.presigned]).toEqual([[], [], []]);
  });
});

describe('an upload that is still the current content', () => {
  it('in a versioned bucket: reads, signs and sends exactly the version the event named', async () => {
    const bucket = bucketWith({ versionId: 'v1', eTag: 'e-1', body: SCENE });
    const { deps, creates } = recordingDeps(bucket.objects);
    const upload = event({ versionId: 'v1', eTag: 'e-1', sequencer: '0062F1A7B3C4D5E600' });
    expect(await submitScene(upload, deps)).toMatchObject({ kind: 'submitted', taskId: 'task-1' });
    expect(bucket.reads.map((r) => r.versionId)).toEqual(['v1']);
    expect(bucket.presigned.map((r) => r.versionId)).toEqual(['v1']);
    expect(creates).toHaveLength(1);
    expect(creates[0]).toMatchObject({ unique_id: expectedUniqueId(upload), attachments: [`https://s3.test/scenes/${KEY}?versionId=v1`] });
    expect(creates[0]!.metadata).toEqual({ source: { bucket: 'scenes', key: KEY, versionId: 'v1', eTag: 'e-1', sequencer: '0062F1A7B3C4D5E600', size: SCENE.length } });
  });

  it('in an unversioned bucket: sent under the identity of its sequencer and ETag, with the ETag HEAD confirmed', async () => {
    const bucket = bucketWith({ eTag: 'e-1', body: SCENE });
    const { deps, creates } = recordingDeps(bucket.objects);
    const upload = event({ eTag: 'e-1', sequencer: '0062F1A7B3C4D5E600' });
    expect(await submitScene(upload, deps)).toMatchObject({ kind: 'submitted' });
    expect(bucket.presigned).toEqual([{ bucket: 'scenes', key: KEY, eTag: 'e-1' }]);
    expect(creates.map((c) => [c.unique_id, (c.metadata as { source: { eTag: string } }).source.eTag])).toEqual([[expectedUniqueId(upload), 'e-1']]);
  });
});
