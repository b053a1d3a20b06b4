import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSfsToBuffer } from '../../../lambdas/core/scenes/sfs/writer.js';
import type { TaskRecord } from '../../../lambdas/core/tasks/task-record.js';
import type { LocalPipeline } from '../../../local/pipeline.js';
import { buildSampleFrame, buildSampleScene } from '../../../local/sample-scenes.js';
import { cli, jsonLines } from '../../helpers/cli.js';
import { eventually } from '../../helpers/http.js';
import { startCliPipeline, type clientsFor } from '../../helpers/local-pipeline.js';

// One local pipeline for the file. The reconciler runs only on demand (never here): what completes, a retry completed.
const scene = encodeSfsToBuffer(buildSampleScene());
let pipeline: LocalPipeline;
let c: ReturnType<typeof clientsFor>;
let info: string;
let close: (() => Promise<void>) | undefined;
beforeAll(async () => {
  ({ pipeline, c, info, close } = await startCliPipeline('cli-retry-'));
}, 60_000);
afterAll(() => close?.());

const retry = (...args: string[]) => cli('retry', '--local', info, ...args);
const completed = (uniqueId: string) =>
  eventually(async () => {
    const record = await c.reader.get(uniqueId);
    return record?.status === 'completed' ? record : undefined;
  }, 20_000, `${uniqueId} to complete`);
/** Gives the pipeline time to act on anything that was (wrongly) sent. */
const quietly = () => new Promise((resolve) => setTimeout(resolve, 1_000));

describe('sfs-pipeline retry', () => {
  it('resubmits a create_failed upload once Scale has the project: one task, a dry run changes nothing, a second retry is skipped', async () => {
    const { project } = pipeline.config.routing;
    pipeline.scale.setProjects([]);
    const upload = await c.put('retry/refused scene.sfs', scene);
    const refused = await c.settled(upload.uniqueId);
    expect(refused).toMatchObject({ status: 'create_failed', scaleError: { status: 400, message: `Project "${project}" was not found.` } });
    pipeline.scale.setProjects([project]);

    const sentBefore = pipeline.sqs.sent.length;
    const dry = await retry('s3://scenes/retry/refused scene.sfs', '--dry-run');
    expect(dry).toMatchObject({ code: 0, stderr: '' });
    expect(dry.stdout).toMatch(/retry\/refused scene\.sfs .* create_failed +would retry/);
    expect(dry.stdout).toContain('1 would retry (dry run: nothing changed)');
    await quietly();
    expect(pipeline.sqs.sent.length).toBe(sentBefore);
    expect(await c.reader.get(upload.uniqueId)).toEqual(refused);
    expect(c.tasksFor(upload.uniqueId)).toEqual([]);

    const run = await retry(upload.uniqueId, '--json');
    expect(run.code).toBe(0);
    expect(jsonLines(run.stdout)).toEqual([{ uniqueId: upload.uniqueId, bucket: 'scenes', key: 'retry/refused scene.sfs', versionId: upload.versionId, status: 'create_failed', outcome: 'retried' }]);
    const done = await completed(upload.uniqueId);
    expect(c.tasksFor(upload.uniqueId)).toHaveLength(1);
    expect(done.taskId).toBe(c.tasksFor(upload.uniqueId)[0]!.task.task_id);
    expect(done.scaleError).toBeUndefined();

    const again = await retry(upload.uniqueId);
    expect(again.code).toBe(4);
    expect(again.stdout).toMatch(/completed +skipped +it is completed: its task is completed/);
    await quietly();
    expect(c.tasksFor(upload.uniqueId)).toHaveLength(1);
    expect((await c.reader.get(upload.uniqueId))?.updatedAt).toBe(done.updatedAt);
  }, 60_000);

  it('resubmits a manifest rejected for missing frames once they are uploaded', async () => {
    await c.put('retry frames/lidar/0.json', JSON.stringify(buildSampleFrame(0)));
    const manifest = await c.put('retry frames/drive.frames.json', JSON.stringify({ frames: ['lidar/0.json', 'lidar/1.json'] }));
    const rejected = await c.settled(manifest.uniqueId);
    expect(rejected).toMatchObject({ status: 'rejected', reason: expect.stringContaining('lidar/1.json') });
    await c.put('retry frames/lidar/1.json', JSON.stringify(buildSampleFrame(1)));

    const run = await retry('s3://scenes/retry frames/drive.frames.json', '--status', 'rejected');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain('1 retried');
    expect(await completed(manifest.uniqueId)).toMatchObject({ sceneFormat: 'split_base64', frameCount: 2 });
    expect(c.tasksFor(manifest.uniqueId).map((t) => t.status)).toEqual(['completed']);
  }, 60_000);

  it('resubmits an upload whose task ended in error as a new task, keeping the old one', async () => {
    pipeline.scale.configure({ failNextDownloads: 1 });
    const upload = await c.put('retry/expired url.sfs', scene);
    const errored = await c.settled(upload.uniqueId);
    expect(errored.status).toBe('error');
    // Not taken unless asked for: this run takes only create_failed.
    expect((await retry(upload.uniqueId, '--status', 'create_failed')).code).toBe(4);
    const run = await retry(upload.uniqueId, '--status', 'error');
    expect(run.code).toBe(0);
    const done = await completed(upload.uniqueId);
    expect(c.tasksFor(upload.uniqueId).map((t) => t.status)).toEqual(['error', 'completed']);
    expect(done).toMatchObject({ previousTaskIds: [errored.taskId], taskId: c.tasksFor(upload.uniqueId)[1]!.task.task_id });
  }, 60_000);

  it('selects by status alone, updated since a time', async () => {
    const { project } = pipeline.config.routing;
    pipeline.scale.setProjects([]);
    const uploads = [await c.put('retry/by status/a.sfs', scene), await c.put('retry/by status/b.sfs', scene)];
    for (const u of uploads) expect((await c.settled(u.uniqueId)).status).toBe('create_failed');
    pipeline.scale.setProjects([project]);

    const run = await retry('--status', 'create_failed', '--since', '10m', '--json');
    expect(run.code).toBe(0);
    const lines = jsonLines<{ uniqueId: string; outcome: string }>(run.stdout);
    expect(lines.map((l) => l.uniqueId).sort()).toEqual(uploads.map((u) => u.uniqueId).sort());
    expect(lines.every((l) => l.outcome === 'retried')).toBe(true);
    const records: TaskRecord[] = [];
    for (const u of uploads) records.push(await completed(u.uniqueId));
    for (const u of uploads) expect(c.tasksFor(u.uniqueId)).toHaveLength(1);
    // Nothing left in that status: exit 3.
    expect(await retry('--status', 'create_failed', '--since', '10m')).toMatchObject({ code: 3, stderr: expect.stringContaining('no record in create_failed') });
    // --since reads as list and export read it: weeks too.
    const weekAgo = Date.now() - 7 * 86_400_000;
    const since = /updated since (\S+) in the local pipeline/.exec((await retry('--status', 'create_failed', '--since', '1w')).stderr)?.[1];
    expect(Math.abs(Date.parse(since!) - weekAgo)).toBeLessThan(60_000);
  }, 60_000);

  it('explains wrong command lines, and exits 3 when no upload matches', async () => {
    expect(await retry()).toMatchObject({ code: 2, stderr: expect.stringContaining('say which uploads to retry') });
    expect(await retry('--status', 'pending')).toMatchObject({ code: 2, stderr: expect.stringContaining('retry takes rejected, create_failed, error, failed') });
    expect(await retry('s3://other-bucket/a.sfs')).toMatchObject({ code: 2, stderr: expect.stringContaining('not the scenes bucket') });
    expect(await retry('s3://scenes/a.sfs', '--since', '1h')).toMatchObject({ code: 2, stderr: expect.stringContaining('--since and --limit') });
    expect(await retry('--status', 'failed', '--since', 'yesterday')).toMatchObject({ code: 2, stderr: expect.stringContaining('--since: "yesterday" is neither an ISO time') });
    expect(await retry('--status', 'failed', '--since', '2026-02-30')).toMatchObject({ code: 2, stderr: expect.stringContaining('is not a time that exists') });
    expect(await retry(`sfs-${'0'.repeat(40)}`)).toMatchObject({ code: 3, stderr: expect.stringContaining('no task record') });
  });
});
