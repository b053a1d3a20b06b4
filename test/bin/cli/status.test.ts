import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSfsToBuffer } from '../../../lambdas/core/scenes/sfs/writer.js';
import type { TaskRecord } from '../../../lambdas/core/tasks/task-record.js';
import { startLocalPipeline, type LocalPipeline } from '../../../local/pipeline.js';
import { buildSampleScene } from '../../../local/sample-scenes.js';
import { cli, jsonLines } from '../../helpers/cli.js';
import { eventually } from '../../helpers/http.js';
import { clientsFor, writeInfoFile } from '../../helpers/local-pipeline.js';

const scene = encodeSfsToBuffer(buildSampleScene());
let workDir: string;
let pipeline: LocalPipeline;
let c: ReturnType<typeof clientsFor>;
let info: string;
let bucket: string;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'cli-status-'));
  pipeline = await startLocalPipeline({
    workDir,
    logs: { write: () => true } as never,
    // Short, so an upload Scale keeps refusing reaches the dead-letter queue after cdk.json's maxReceiveCount quickly.
    visibilityTimeoutMs: 200,
    simulator: { completionDelayMs: 20, callbackRetryDelayMs: 20 },
    reconcileEveryMs: 3_600_000,
  });
  c = clientsFor(pipeline);
  info = await writeInfoFile(pipeline, workDir);
  bucket = pipeline.info.bucket;
}, 60_000);
afterAll(async () => {
  await pipeline?.close();
  await rm(workDir, { recursive: true, force: true });
});

const status = (...args: string[]) => cli('status', ...args, '--local', info);

describe('sfs-pipeline status', () => {
  it('shows a rejected upload by key with its reason, then every version of the key, newest first', async () => {
    const bad = await c.put('status/scene.sfs', 'this is not an SFS scene');
    expect(await c.settled(bad.uniqueId)).toMatchObject({ status: 'rejected' });

    const human = await status(`s3://${bucket}/status/scene.sfs`);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`s3://${bucket}/status/scene.sfs`);
    expect(human.stdout).toMatch(/ status +rejected\n/);
    expect(human.stdout).toMatch(/ reason +not an \.sfs scene: /);
    expect(human.stdout).toContain(bad.uniqueId);

    const [json] = jsonLines<TaskRecord>((await status(`s3://${bucket}/status/scene.sfs`, '--json')).stdout);
    expect(json).toMatchObject({ uniqueId: bad.uniqueId, status: 'rejected', key: 'status/scene.sfs', versionId: bad.versionId, reason: expect.stringContaining('not an .sfs scene') });
    expect(json!.taskId).toBeUndefined();

    // A good upload of the same key: a second version, its own record, shown first.
    const good = await c.put('status/scene.sfs', scene);
    expect(await c.settled(good.uniqueId)).toMatchObject({ status: 'completed' });
    const both = jsonLines<TaskRecord>((await status(`s3://${bucket}/status/scene.sfs`, '--json')).stdout);
    expect(both.map((r) => [r.uniqueId, r.versionId, r.status])).toEqual([
      [good.uniqueId, good.versionId, 'completed'],
      [bad.uniqueId, bad.versionId, 'rejected'],
    ]);
    const blocks = (await status(`s3://${bucket}/status/scene.sfs`)).stdout;
    expect(blocks.indexOf(good.uniqueId)).toBeLessThan(blocks.indexOf(bad.uniqueId));
  }, 30_000);

  it('shows a completed upload by key, by uniqueId and by Scale task id: task, times, response and result files', async () => {
    const upload = await c.put('status/done.sfs', scene);
    await c.settled(upload.uniqueId);
    // The oracle is Scale's side: the simulator's own task for this upload.
    const [simulated] = c.tasksFor(upload.uniqueId);
    const taskId = simulated!.task.task_id;
    expect(simulated!.task.status).toBe('completed');

    const human = await status(`s3://${bucket}/status/done.sfs`);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/ status +completed\n/);
    expect(human.stdout).toMatch(new RegExp(` task +${taskId}\\n`));
    for (const label of ['created', 'updated', 'submitted', 'completed']) expect(human.stdout).toMatch(new RegExp(` ${label} +20\\d\\d-\\d\\d-\\d\\dT`));
    expect(human.stdout).toMatch(/ response +inline \(\d+ bytes\)/);
    expect(human.stdout).toMatch(new RegExp(` result files +s3://${pipeline.info.resultsBucket}/\\S+  \\(\\d+ bytes, sha256 [0-9a-f]{64}\\)`));

    for (const selector of [upload.uniqueId, taskId]) {
      const run = await status(selector, '--json');
      expect(run.code).toBe(0);
      const lines = jsonLines<TaskRecord>(run.stdout);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ uniqueId: upload.uniqueId, taskId, status: 'completed', completedAt: simulated!.task.completed_at });
      expect(JSON.parse(lines[0]!.responseJson!)).toEqual(simulated!.task.response);
      expect(lines[0]!.resultFiles).toEqual([expect.objectContaining({ bucket: pipeline.info.resultsBucket, bytes: simulated!.resultFiles!['annotations.json']!.length })]);
    }
  }, 30_000);

  it('shows an upload Scale refused the key for until the deliveries gave up: failed, with its attempts and last error', async () => {
    pipeline.scale.configure({ refuseApiKey: 401 });
    try {
      const upload = await c.put('status/refused.sfs', scene);
      const record = await eventually(async () => {
        const current = await c.reader.get(upload.uniqueId);
        return current?.status === 'failed' ? current : undefined;
      }, 30_000, 'the upload to fail');
      expect(record.attempts).toBe(pipeline.config.maxReceiveCount);

      const [json] = jsonLines<TaskRecord>((await status(`s3://${bucket}/status/refused.sfs`, '--json')).stdout);
      expect(json).toMatchObject({ uniqueId: upload.uniqueId, status: 'failed', attempts: pipeline.config.maxReceiveCount, lastError: expect.stringContaining('401') });
      const human = await status(upload.uniqueId);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/ status +failed\n/);
      expect(human.stdout).toMatch(new RegExp(` attempts +${pipeline.config.maxReceiveCount}\\n`));
      expect(human.stdout).toMatch(/ last error +.*401/);
      expect(human.stdout).not.toMatch(/\n {2}task +/);
    } finally {
      pipeline.scale.configure({ refuseApiKey: null });
    }
  }, 45_000);

  it('exits 3 when nothing matches, and 2 for a selector that is wrong, saying what to do', async () => {
    const unknownKey = await status(`s3://${bucket}/status/never-uploaded.sfs`);
    expect(unknownKey).toMatchObject({ code: 3, stdout: '' });
    expect(unknownKey.stderr).toContain(`no task record for s3://${bucket}/status/never-uploaded.sfs`);
    expect((await status(`sfs-${'0'.repeat(40)}`)).code).toBe(3);
    expect((await status('0123456789abcdef01234567', '--json')).code).toBe(3);

    const otherBucket = await status('s3://someone-elses-bucket/status/scene.sfs');
    expect(otherBucket.code).toBe(2);
    expect(otherBucket.stderr).toContain(`its uploads are in s3://${bucket}/`);
    expect((await status(`s3://${bucket}/`)).code).toBe(2);
    expect((await status('sfs-not-hex')).stderr).toContain('40 lowercase hex digits');
    expect((await status('two words')).code).toBe(2);
  });

  it('escapes control characters of a key in human output', async () => {
    const key = 'status/evil\u001b[2Jname.sfs';
    const upload = await c.put(key, 'not a scene either');
    await c.settled(upload.uniqueId);
    const human = await status(`s3://${bucket}/${key}`);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('status/evil\\u001b[2Jname.sfs');
    expect(human.stdout).not.toContain('\u001b');
  }, 30_000);

  it('escapes control characters of a selector it echoes when nothing matches', async () => {
    const run = await status(`s3://${bucket}/status/no\u001b]0;PWNED\u0007\u009b2Jpe.sfs`);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`no task record for s3://${bucket}/status/no\\u001b]0;PWNED\\u0007\\u009b2Jpe.sfs in the local pipeline`);
    // eslint-disable-next-line no-control-regex
    expect(run.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });
});
