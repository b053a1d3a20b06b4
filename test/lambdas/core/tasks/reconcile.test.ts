import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScaleClient } from '../../../../lambdas/core/scale/client.js';
import { changesInMessage } from '../../../../lambdas/core/scenes/s3-event.js';
import { reconcile } from '../../../../lambdas/core/tasks/reconcile.js';
import { eventually, startRecorder } from '../../../helpers/http.js';
import { expectedUniqueId } from '../../../helpers/identity.js';
import { SECRETS, startPipelineEnv } from '../../../helpers/pipeline-env.js';

// Against the Scale simulator and dynalite; what the reconciler hands on (states, resubmissions) is captured.
let env: Awaited<ReturnType<typeof startPipelineEnv>>;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
let scale: ScaleClient;
beforeAll(async () => {
  recorder = await startRecorder(() => 500); // the callback URL refuses everything: callbacks are lost
  env = await startPipelineEnv({ callbackUrl: `${recorder.url}/callback` });
  env.scale.configure({ callbackMaxAttempts: 1 });
  scale = new ScaleClient({ apiKey: SECRETS.scaleApiKey, baseUrl: env.scale.apiUrl });
});
afterAll(async () => {
  await env.close();
  await recorder.close();
});

let n = 0;
const newId = () => `sfs-${(++n).toString(16).padStart(40, 'a')}`;
const source = (uniqueId: string) => ({ uniqueId, bucket: 'scenes', key: `reconcile/${uniqueId}.sfs`, versionId: `v-${uniqueId.slice(-6)}`, eTag: 'e', sequencer: '00A1', size: 10, sceneFormat: 'sensor_fusion' as const, project: 'scenes-default' });

function run(now = new Date()) {
  const stored: Array<{ uniqueId: string; name: string; body: Record<string, unknown> }> = [];
  const resubmitted: string[] = [];
  const report = reconcile({
    scale,
    records: env.reader,
    projects: ['scenes-default'],
    afterMinutes: 30,
    lookBackHours: 25,
    errorResubmissions: 0,
    prepareResubmission: async () => false,
    now: () => now,
    storeState: async (uniqueId, name, body) => void stored.push({ uniqueId, name, body: JSON.parse(body) as Record<string, unknown> }),
    resubmit: async (notification) => void resubmitted.push(notification),
  });
  return { report, stored, resubmitted };
}

describe('reconcile', () => {
  it('hands on the state of a task whose callbacks were lost, once the record lacks it, and not again once it has it', async () => {
    const uniqueId = newId();
    expect(await env.store.startSubmission(source(uniqueId), 'c', new Date().toISOString())).toBe('started');
    const created = await scale.createMultistageTask({ project: 'scenes-default', attachments: [`${recorder.url}/nothing.sfs`], scene_format: 'sensor_fusion', unique_id: uniqueId, callback_url: `${recorder.url}/callback` });
    expect(await env.store.recordSubmitted(uniqueId, { taskId: created.task.task_id, attachmentPinned: true, adopted: false }, new Date().toISOString())).toBe('recorded');
    // The attachment cannot be downloaded: the task errors, and its callback is refused (lost).
    const task = await eventually(() => env.scale.state().tasks.find((t) => t.unique_id === uniqueId && t.settled));
    expect(task.task.status).toBe('error');

    const first = run();
    expect(await first.report).toMatchObject({ missingStates: 1, resubmitted: 0 });
    expect(first.stored).toEqual([{ uniqueId, name: expect.stringMatching(/^reconciled-\d{4}-\d\d-\d\dT\d{9}Z-error-0\.json$/), body: expect.objectContaining({ task_id: created.task.task_id, status: 'error', reconciled: true }) }]);

    // Once the callback path applied it, the next run finds nothing missing.
    const applied = await env.store.applyCallback(
      { uniqueId, taskId: created.task.task_id, status: 'error', scaleUpdatedAt: new Date(task.task.updated_at).toISOString(), order: 'x', digest: 'd', archive: { bucket: 'results', key: 'k' }, source: { bucket: 'scenes', key: 'k.sfs', sceneFormat: 'sensor_fusion' } },
      new Date().toISOString(),
    );
    expect(applied).toBe('applied');
    const second = run();
    expect(await second.report).toMatchObject({ missingStates: 0 });
    expect(second.stored.filter((s) => s.uniqueId === uniqueId)).toEqual([]);
  });

  it('leaves alone the tasks of uploads it has no record of (another stack sharing the project)', async () => {
    const [foreign, own] = [newId(), newId()];
    // Beside it, an upload of this stack whose callback was lost: the same run hands that one on.
    expect(await env.store.startSubmission(source(own), 'c', new Date().toISOString())).toBe('started');
    const ownTask = await scale.createMultistageTask({ project: 'scenes-default', attachments: [`${recorder.url}/nothing.sfs`], scene_format: 'sensor_fusion', unique_id: own });
    expect(await env.store.recordSubmitted(own, { taskId: ownTask.task.task_id, attachmentPinned: true, adopted: false }, new Date().toISOString())).toBe('recorded');
    await scale.createMultistageTask({ project: 'scenes-default', attachments: [`${recorder.url}/nothing.sfs`], scene_format: 'sensor_fusion', unique_id: foreign });
    await eventually(() => (env.scale.state().tasks.filter((t) => [foreign, own].includes(t.unique_id!) && t.settled).length === 2 ? true : undefined));
    const { report, stored } = run();
    await report;
    expect(stored.filter((s) => s.uniqueId === own)).toHaveLength(1);
    expect(stored.filter((s) => s.uniqueId === foreign)).toEqual([]);
  });

  it('reconciles a recall at the same instant as the completion it follows', async () => {
    const uniqueId = newId();
    expect(await env.store.startSubmission(source(uniqueId), 'c', new Date().toISOString())).toBe('started');
    const at = '2026-11-30T06:00:00.000Z';
    // The completion must be in the record: otherwise the recall would be "missing" for the wrong reason.
    const completed = await env.store.applyCallback(
      { uniqueId, taskId: 't', status: 'completed', scaleUpdatedAt: at, order: `${at}#1#000000#2026-11-30T06:00:01.000Z#k`, digest: 'd', archive: { bucket: 'results', key: 'k' }, source: { bucket: 'scenes', key: 'k.sfs', sceneFormat: 'sensor_fusion' } },
      new Date().toISOString(),
    );
    expect(completed).toBe('applied');
    expect(await env.reader.get(uniqueId)).toMatchObject({ status: 'completed', scaleUpdatedAt: at });
    const recalled = { task_id: 't', status: 'pending', updated_at: at, unique_id: uniqueId, audits: [] };
    const stored: string[] = [];
    const report = await reconcile({
      scale: { listTasks: async () => ({ docs: [recalled], has_more: false }), findTaskByUniqueId: async () => undefined },
      records: env.reader,
      projects: ['p'],
      afterMinutes: 30,
      lookBackHours: 25,
      errorResubmissions: 0,
      prepareResubmission: async () => false,
      storeState: async (_id, name) => void stored.push(name),
      resubmit: async () => undefined,
    });
    expect(report).toMatchObject({ checked: 1, missingStates: 1 });
    expect(stored).toEqual(['reconciled-2026-11-30T060000000Z-pending-0.json']);
  });

  it('goes on with the other projects when one listing fails, stops a token that repeats, and reports it', async () => {
    let calls = 0;
    const report = await reconcile({
      scale: {
        listTasks: async ({ project }) => {
          calls++;
          if (project === 'gone') throw new Error('400 Project "gone" was not found.');
          return { docs: [], has_more: true, next_token: 'same' };
        },
        findTaskByUniqueId: async () => undefined,
      },
      records: { get: async () => undefined, listByStatus: async () => ({ items: [] }), listByStatusBefore: async () => ({ items: [] }) },
      projects: ['gone', 'looping'],
      afterMinutes: 30,
      lookBackHours: 25,
      errorResubmissions: 0,
      prepareResubmission: async () => false,
      storeState: async () => undefined,
      resubmit: async () => undefined,
    });
    expect(calls).toBe(3); // 'gone' once; 'looping' until its token repeats
    expect(report).toMatchObject({ failedProjects: 1, errors: ['project gone: 400 Project "gone" was not found.'] });
  });

  it('resubmits an upload stuck in submitting that never reached Scale, as the same upload', async () => {
    // The upload's own uniqueId (sha256 of ["scenes","reconcile/never sent.sfs","v:v-never"]): a resubmission is that upload.
    const uniqueId = 'sfs-4d8d25ff57a2c2a23d5acdf25935f6a972035985';
    expect(await env.store.startSubmission({ ...source(uniqueId), key: 'reconcile/never sent.sfs', versionId: 'v-never' }, 'c', '2026-11-30T05:00:00.000Z')).toBe('started');
    const { report, resubmitted } = run(new Date('2026-11-30T06:00:00.000Z'));
    expect(await report).toMatchObject({ resubmitted: 1 });
    const [change] = changesInMessage(resubmitted.find((r) => r.includes('never+sent'))!);
    expect(change).toMatchObject({ kind: 'created', upload: { bucket: 'scenes', key: 'reconcile/never sent.sfs', versionId: 'v-never' } });
    expect(expectedUniqueId(change!.kind === 'created' ? change!.upload : ({} as never))).toBe(uniqueId);
  });

  it('adopts the task Scale has for an upload stuck in submitting (its answer was lost)', async () => {
    const uniqueId = newId();
    expect(await env.store.startSubmission(source(uniqueId), 'c', '2026-11-30T05:00:00.000Z')).toBe('started');
    await scale.createMultistageTask({ project: 'scenes-default', attachments: [`${recorder.url}/nothing.sfs`], scene_format: 'sensor_fusion', unique_id: uniqueId });
    const { report, stored, resubmitted } = run(new Date(Date.now() + 60 * 60_000));
    expect(await report).toMatchObject({ adopted: expect.any(Number) });
    expect((await report).adopted).toBeGreaterThanOrEqual(1);
    expect(stored.some((s) => s.uniqueId === uniqueId)).toBe(true);
    expect(resubmitted.some((r) => r.includes(uniqueId))).toBe(false);
  });
});
