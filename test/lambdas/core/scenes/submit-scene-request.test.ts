import { describe, expect, it } from 'vitest';
import { ScaleApiError, ScaleRequestInvalidError } from '../../../../lambdas/core/scale/errors.js';
import type { CreateMultistageTaskRequest, ScaleTask } from '../../../../lambdas/core/scale/schemas.js';
import type { UploadEvent } from '../../../../lambdas/core/scenes/s3-event.js';
import type { ObjectHead, SceneObjects } from '../../../../lambdas/core/scenes/scene-objects.js';
import { submitScene } from '../../../../lambdas/core/scenes/submit-scene.js';
import { parseConfig, RoutingSchema } from '../../../../lambdas/core/shared/config.js';
import type { TaskStore } from '../../../../lambdas/core/tasks/task-store.js';

/*
 * What one upload turns into: the request Scale is sent (field by field, as the route sets it), what the store is
 * told, and the outcome. Bucket, store and Scale are stand-ins that record every call.
 */

const NOW = '2026-11-30T12:00:00.000Z';
const SFS = (() => {
  const json = Buffer.alloc(32, 0x20);
  Buffer.from('{"version":"1.0","sensors":[]}').copy(json);
  return Buffer.concat([json, Buffer.alloc(4)]);
})();

interface Setup {
  current?: ObjectHead;
  expiries?: Array<string | undefined>;
  started?: 'started' | 'resumed' | { alreadyAt: string; owedCancel?: { taskId: string; reason: string } };
  create?: () => Promise<unknown>;
  earlier?: Partial<ScaleTask>;
  recorded?: 'recorded' | { overRejection: string };
  routes?: unknown[];
  /** The upload's bytes (an .sfs by default); frames of a manifest HEAD as 5 bytes, of the version given here if any. */
  body?: Buffer;
  frameVersions?: Record<string, string>;
}

function run(upload: Partial<UploadEvent>, setup: Setup = {}) {
  const calls: unknown[][] = [];
  const requests: CreateMultistageTaskRequest[] = [];
  let presigns = 0;
  const event: UploadEvent = { eventName: 'ObjectCreated:Put', bucket: 'scenes', key: 'r/s.sfs', versionId: 'v1', eTag: 'e1', sequencer: '10', ...upload };
  const objects: SceneObjects = {
    head: async (ref) =>
      ref.key === event.key
        ? (setup.current ?? { exists: true, size: (setup.body ?? SFS).length, versionId: 'v1', eTag: 'e1' })
        : { exists: true, size: 5, ...(setup.frameVersions?.[ref.key] ? { versionId: setup.frameVersions[ref.key] } : {}) },
    readPrefix: async () =>
      (async function* () {
        yield setup.body ?? SFS;
      })(),
    presign: async (ref) => {
      const expiry = (setup.expiries ?? ['2026-11-30T18:00:00.000Z'])[presigns++];
      return { url: `https://s3.test/${ref.key}`, ...(expiry ? { expiresAt: new Date(expiry) } : {}) };
    },
  };
  const store = {
    startSubmission: async () => setup.started ?? 'started',
    recordRejection: async (...args: unknown[]) => void calls.push(['recordRejection', ...args]),
    recordSubmitted: async (...args: unknown[]) => (calls.push(['recordSubmitted', ...args]), setup.recorded ?? 'recorded'),
    recordCreateFailure: async (...args: unknown[]) => void calls.push(['recordCreateFailure', ...args]),
    recordCanceled: async (...args: unknown[]) => (calls.push(['recordCanceled', ...args]), 'applied'),
  } as unknown as TaskStore;
  const scale = {
    createMultistageTask: async (request: CreateMultistageTaskRequest) => {
      requests.push(request);
      if (setup.create) await setup.create();
      return { task: { task_id: 't1' } as ScaleTask, adopted: false };
    },
    findTaskByUniqueId: async () => setup.earlier as ScaleTask | undefined,
    cancelTask: async (taskId: string) => (calls.push(['cancelTask', taskId]), { task_id: taskId, updated_at: NOW } as ScaleTask),
  };
  const routing = parseConfig(RoutingSchema, { project: 'p', batch: 'b0', routes: setup.routes ?? [] }, 'routing');
  const deps = { objects, store, scale, routing, callbackBaseUrl: 'https://api.test/cb', signingKey: 'k', claimId: 'c1', now: () => new Date(NOW) };
  return { outcome: submitScene(event, deps), calls, requests };
}

describe('the request Scale is sent', () => {
  it('carries every setting the route gives', async () => {
    const routes = [{ prefix: 'r/', project: 'p2', batch: 'b2', instruction: 'Mind the glare.', taskBlueprintId: 'bp', priority: 30, tags: ['night'] }];
    const { outcome, requests } = run({}, { routes });
    expect(await outcome).toMatchObject({ kind: 'submitted', taskId: 't1', adopted: false });
    expect(requests[0]).toMatchObject({ project: 'p2', batch: 'b2', instruction: 'Mind the glare.', task_blueprint_id: 'bp', priority: 30, tags: ['night'], scene_format: 'sensor_fusion' });
  });

  it('leaves out what the route does not set, and an empty tag list', async () => {
    const { outcome, requests } = run({}, { routes: [{ prefix: 'r/', project: 'p2', tags: [] }] });
    await outcome;
    const { metadata: _m, callback_url: _c, unique_id: _u, clear_unique_id_on_error: _e, ...rest } = requests[0]!;
    expect(rest).toStrictEqual({ project: 'p2', attachments: ['https://s3.test/r/s.sfs'], scene_format: 'sensor_fusion' });
  });
});

describe('what the store is told', () => {
  it('records a pinned task with the URL expiry', async () => {
    const { outcome, calls } = run({});
    await outcome;
    expect(calls).toEqual([['recordSubmitted', expect.any(String), { taskId: 't1', attachmentExpiresAt: '2026-11-30T18:00:00.000Z', attachmentPinned: true, adopted: false, frameCount: undefined }, NOW]]);
  });

  it('records no expiry when a URL has none, and no pin without a real version', async () => {
    const { outcome, calls } = run({ versionId: 'null' }, { current: { exists: true, size: SFS.length, versionId: 'null', eTag: 'e1' }, expiries: [undefined] });
    await outcome;
    expect(calls[0]![2]).toStrictEqual({ taskId: 't1', attachmentExpiresAt: undefined, attachmentPinned: false, adopted: false, frameCount: undefined });
  });

  it('records the earliest URL expiry of a frame scene, and pins it only when every frame has a version', async () => {
    const manifest = { key: 'r/m.frames.json' };
    const body = Buffer.from('{"frames":["0.json","1.json"]}');
    const expiries = ['2026-11-30T18:00:00.000Z', '2026-11-30T17:00:00.000Z'];
    const frameVersions = { 'r/0.json': 'f0', 'r/1.json': 'f1' };
    const pinned = run(manifest, { body, expiries, frameVersions });
    expect(await pinned.outcome).toMatchObject({ kind: 'submitted' });
    expect(pinned.requests[0]).toMatchObject({ scene_format: 'split_base64', attachments: ['https://s3.test/r/0.json', 'https://s3.test/r/1.json'] });
    expect(pinned.calls[0]![2]).toStrictEqual({ taskId: 't1', attachmentExpiresAt: '2026-11-30T17:00:00.000Z', attachmentPinned: true, adopted: false, frameCount: 2 });
    // One frame without a version, or a manifest without one: the scene is not pinned as a whole.
    for (const [upload, versions] of [[manifest, { 'r/0.json': 'f0' }], [{ ...manifest, versionId: 'null' }, frameVersions]] as const) {
      const unpinned = run(upload, { body, expiries, frameVersions: versions, current: { exists: true, size: body.length, versionId: upload === manifest ? 'v1' : 'null', eTag: 'e1' } });
      await unpinned.outcome;
      expect(unpinned.calls[0]![2]).toMatchObject({ attachmentPinned: false, frameCount: 2 });
    }
  });

  it('records no expiry when only some URLs know theirs', async () => {
    const { outcome, calls } = run({ key: 'r/m.frames.json' }, { body: Buffer.from('{"frames":["0.json","1.json"]}'), expiries: ['2026-11-30T18:00:00.000Z', undefined] });
    await outcome;
    expect(calls[0]![2]).toMatchObject({ attachmentExpiresAt: undefined });
  });

  it('skips an upload another delivery already finished', async () => {
    const { outcome, calls } = run({}, { started: { alreadyAt: 'pending' } });
    expect(await outcome).toStrictEqual({ kind: 'skipped', uniqueId: expect.stringMatching(/^sfs-/), status: 'pending' });
    expect(calls).toEqual([]);
  });

  it('rejects an empty object in plain words', async () => {
    const { outcome, calls } = run({}, { current: { exists: true, size: 0, versionId: 'v1' } });
    expect(await outcome).toMatchObject({ kind: 'rejected', reason: 'the object is empty (0 bytes)' });
    expect(calls).toEqual([['recordRejection', expect.any(String), 'c1', 'the object is empty (0 bytes)', NOW]]);
  });

  it('names a newer version, clipped, or says it is unknown', async () => {
    const long = run({}, { current: { exists: true, size: 1, versionId: 'x'.repeat(100) } });
    expect(await long.outcome).toMatchObject({
      reason: `a newer version (${'x'.repeat(79)}…) replaced this one before it was processed (the newer upload gets its own task)`,
    });
    const unknown = run({}, { current: { exists: true, size: 1 } });
    expect(await unknown.outcome).toMatchObject({ reason: 'a newer version (unknown) replaced this one before it was processed (the newer upload gets its own task)' });
  });

  it('sends an unversioned upload when HEAD gives no ETag to compare', async () => {
    const { outcome } = run({ versionId: undefined }, { current: { exists: true, size: SFS.length } });
    expect(await outcome).toMatchObject({ kind: 'submitted', taskId: 't1' });
  });

  it('on a redelivery of a deleted upload, adopts and cancels the task an earlier delivery created', async () => {
    const { outcome, calls } = run({}, { current: { exists: false }, started: 'resumed', earlier: { task_id: 't0' } });
    expect(await outcome).toStrictEqual({ kind: 'canceled', uniqueId: expect.any(String), taskId: 't0' });
    expect(calls[0]).toEqual(['recordSubmitted', expect.any(String), { taskId: 't0', attachmentPinned: true, adopted: true }, NOW]);
    expect(calls[2]![0]).toBe('recordCanceled');
    expect(calls[2]![2]).toMatchObject({
      reason: 'the object was deleted before it was processed (its current version is a delete marker, or it is gone); the task an earlier delivery had created was canceled at Scale',
    });
  });

  it('on a first delivery of a deleted upload, rejects it and adopts nothing, whatever Scale would have answered', async () => {
    // Only a resumed claim can follow a delivery that created a task; a first one has no earlier task to look for.
    const { outcome, calls } = run({}, { current: { exists: false }, started: 'started', earlier: { task_id: 't0' } });
    const reason = 'the object was deleted before it was processed (its current version is a delete marker, or it is gone)';
    expect(await outcome).toStrictEqual({ kind: 'rejected', uniqueId: expect.any(String), reason });
    expect(calls).toEqual([['recordRejection', expect.any(String), 'c1', reason, NOW]]);
  });

  it('cancels the task it created over a rejection recorded meanwhile', async () => {
    const { outcome, calls } = run({}, { recorded: { overRejection: 'the object was deleted' } });
    expect(await outcome).toStrictEqual({ kind: 'canceled', uniqueId: expect.any(String), taskId: 't1' });
    expect(calls.at(-1)![0]).toBe('recordCanceled');
    expect(calls.at(-1)![2]).toMatchObject({ reason: 'the object was deleted; the task created meanwhile was canceled at Scale' });
  });

  it('cancels, on a later delivery, the task whose cancel over a rejection is still owed', async () => {
    const { outcome, calls, requests } = run({}, { started: { alreadyAt: 'pending', owedCancel: { taskId: 't7', reason: 'a newer version replaced this one' } } });
    expect(await outcome).toStrictEqual({ kind: 'canceled', uniqueId: expect.any(String), taskId: 't7' });
    expect(requests).toEqual([]);
    expect(calls.map(([name]) => name)).toEqual(['cancelTask', 'recordCanceled']);
    expect(calls[1]![2]).toMatchObject({ taskId: 't7', reason: 'a newer version replaced this one; the task created meanwhile was canceled at Scale' });
    // Nothing owed: skipped, as any delivery after the outcome.
    const skipped = run({}, { started: { alreadyAt: 'pending' } });
    expect(await skipped.outcome).toStrictEqual({ kind: 'skipped', uniqueId: expect.any(String), status: 'pending' });
    expect(skipped.calls).toEqual([]);
  });
});

describe("Scale's refusals", () => {
  const apiError = (status: number, retryable: boolean, scaleMessage?: string) =>
    new ScaleApiError('refused', { operation: 'create', status, retryable, attempts: 1, ...(scaleMessage ? { scaleMessage } : {}) });

  it("records a permanent refusal in Scale's words, or else the error's", async () => {
    const bad = run({}, { create: () => Promise.reject(apiError(400, false, 'bad project')) });
    expect(await bad.outcome).toStrictEqual({ kind: 'create_failed', uniqueId: expect.any(String), scaleStatus: 400, scaleMessage: 'bad project' });
    expect(bad.calls).toEqual([['recordCreateFailure', expect.any(String), 'c1', { status: 400, message: 'bad project' }, NOW]]);
    const plain = run({}, { create: () => Promise.reject(apiError(422, false)) });
    expect(await plain.outcome).toMatchObject({ scaleStatus: 422, scaleMessage: 'Scale create failed after 1 attempt: refused' });
    const invalid = run({}, { create: () => Promise.reject(new ScaleRequestInvalidError(['tags: too many'])) });
    expect(await invalid.outcome).toStrictEqual({ kind: 'create_failed', uniqueId: expect.any(String), scaleStatus: undefined, scaleMessage: 'invalid Scale task request: tags: too many' });
  });

  it.each([
    ['a retryable failure', apiError(503, true)],
    ['a refused key', apiError(401, false)],
    ['an error not from Scale', new Error('socket hang up')],
  ])('passes on %s, recording nothing', async (_name, err) => {
    const { outcome, calls } = run({}, { create: () => Promise.reject(err) });
    await expect(outcome).rejects.toBe(err);
    expect(calls).toEqual([]);
  });
});
