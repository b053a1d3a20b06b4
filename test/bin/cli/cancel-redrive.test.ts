import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSfsToBuffer } from '../../../lambdas/core/scenes/sfs/writer.js';
import type { TaskRecord } from '../../../lambdas/core/tasks/task-record.js';
import type { LocalPipeline } from '../../../local/pipeline.js';
import { buildSampleScene } from '../../../local/sample-scenes.js';
import { cli, jsonLines } from '../../helpers/cli.js';
import { eventually } from '../../helpers/http.js';
import { startCliPipeline, type clientsFor } from '../../helpers/local-pipeline.js';

// One local pipeline for the file; the reconciler never runs on its own, so only these commands change the records.
const scene = encodeSfsToBuffer(buildSampleScene());
let pipeline: LocalPipeline;
let c: ReturnType<typeof clientsFor>;
let info: string;
let close: (() => Promise<void>) | undefined;
beforeAll(async () => {
  ({ pipeline, c, info, close } = await startCliPipeline('cli-cancel-redrive-'));
}, 60_000);
afterAll(() => close?.());

const inStatus = (uniqueId: string, status: TaskRecord['status']) =>
  eventually(async () => {
    const record = await c.reader.get(uniqueId);
    return record?.status === status ? record : undefined;
  }, 20_000, `${uniqueId} to be ${status}`);
const deadLetters = async () => (await readFile(pipeline.info.deadLetterFile, 'utf8')).split('\n').filter((line) => line.trim() !== '');

describe('sfs-pipeline cancel', () => {
  it('cancels a pending task at Scale and records it', async () => {
    // Scale has not started the work: the task stays pending (cancellable) for a minute.
    pipeline.scale.configure({ startDelayMs: 60_000 });
    const upload = await c.put('cancel/pending scene.sfs', scene);
    const pending = await inStatus(upload.uniqueId, 'pending');
    pipeline.scale.configure({ startDelayMs: 0 });

    const run = await cli('cancel', '--local', info, 's3://scenes/cancel/pending scene.sfs', '--json');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(jsonLines(run.stdout)).toEqual([{ uniqueId: upload.uniqueId, bucket: 'scenes', key: 'cancel/pending scene.sfs', versionId: upload.versionId, taskId: pending.taskId, status: 'pending', outcome: 'canceled' }]);
    expect(c.tasksFor(upload.uniqueId).map((t) => t.status)).toEqual(['canceled']);
    expect(await c.reader.get(upload.uniqueId)).toMatchObject({ status: 'canceled', taskId: pending.taskId, reason: 'canceled by an operator (sfs-pipeline cancel)' });
  }, 60_000);

  it('skips an upload whose task is completed (exit 4) and leaves it as it is', async () => {
    const upload = await c.put('cancel/done.sfs', scene);
    const done = await inStatus(upload.uniqueId, 'completed');
    const run = await cli('cancel', '--local', info, done.taskId!);
    expect(run.code).toBe(4);
    expect(run.stdout).toMatch(/cancel\/done\.sfs +[0-9a-f]+ +completed +skipped +it is completed: Scale cancels only pending tasks/);
    expect(c.tasksFor(upload.uniqueId).map((t) => t.status)).toEqual(['completed']);
    expect(await c.reader.get(upload.uniqueId)).toEqual(done);
  }, 60_000);

  it("shows and records Scale's refusal when the task finished before its callback arrived", async () => {
    // Scale completes the task but its callback never comes: the record still says pending.
    pipeline.scale.configure({ dropCallbacks: 1 });
    const upload = await c.put('cancel/finished at scale.sfs', scene);
    const pending = await inStatus(upload.uniqueId, 'pending');
    await eventually(() => (c.tasksFor(upload.uniqueId)[0]?.status === 'completed' ? true : undefined), 20_000, 'Scale to complete the task');
    pipeline.scale.configure({ dropCallbacks: 0 });

    const run = await cli('cancel', '--local', info, upload.uniqueId, '--json');
    expect(run.code).toBe(4);
    const message = `Task ${pending.taskId} is completed and can no longer be canceled; only pending tasks can be.`;
    expect(jsonLines(run.stdout)).toEqual([expect.objectContaining({ uniqueId: upload.uniqueId, outcome: 'cancel_refused', scaleStatus: 400, scaleMessage: message })]);
    expect(await c.reader.get(upload.uniqueId)).toMatchObject({ status: 'pending', cancelError: { status: 400, message } });
    expect(c.tasksFor(upload.uniqueId).map((t) => t.status)).toEqual(['completed']);
  }, 60_000);

  it('exits 3 when nothing matches', async () => {
    expect(await cli('cancel', '--local', info, 's3://scenes/cancel/never uploaded.sfs')).toMatchObject({ code: 3, stderr: expect.stringContaining('no task record for s3://scenes/cancel/never uploaded.sfs') });
  });
});

describe('sfs-pipeline redrive', () => {
  it('sends a dead-lettered upload back once the cause is fixed, and it completes with one task', async () => {
    // Every delivery meets a revoked key: the upload fails and its message is dead-lettered.
    pipeline.scale.configure({ refuseApiKey: 401 });
    const upload = await c.put('redrive/key revoked.sfs', scene);
    const failed = await inStatus(upload.uniqueId, 'failed');
    expect(failed.lastError).toContain('401');
    await eventually(async () => ((await deadLetters()).length === 1 ? true : undefined), 20_000, 'the message to be dead-lettered');
    expect(c.tasksFor(upload.uniqueId)).toEqual([]);
    pipeline.scale.configure({ refuseApiKey: null });

    const run = await cli('redrive', '--local', info, '--json');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(jsonLines(run.stdout)).toEqual([{ moved: 1 }]);
    await inStatus(upload.uniqueId, 'completed');
    expect(c.tasksFor(upload.uniqueId).map((t) => t.status)).toEqual(['completed']);
    expect(await deadLetters()).toEqual([]);

    // Nothing left: said in words, exit 0.
    expect(await cli('redrive', '--local', info)).toMatchObject({ code: 0, stdout: expect.stringContaining('is empty: nothing to redrive') });
  }, 60_000);

  it('moves the good dead letters past a garbage line, leaves that line in the file and names it (exit 4)', async () => {
    pipeline.scale.configure({ refuseApiKey: 401 });
    const upload = await c.put('redrive/behind garbage.sfs', scene);
    await inStatus(upload.uniqueId, 'failed');
    await eventually(async () => ((await deadLetters()).length === 1 ? true : undefined), 20_000, 'the message to be dead-lettered');
    pipeline.scale.configure({ refuseApiKey: null });
    const [message] = await deadLetters();
    await writeFile(pipeline.info.deadLetterFile, `garbage, not a dead letter\n${message}\n`);

    const run = await cli('redrive', '--local', info);
    expect(run).toMatchObject({ code: 4, stdout: 'moved 1 message back to the ingest queue\n' });
    expect(run.stderr).toBe(`sfs-pipeline: line 1 of the dead-letter file ${pipeline.info.deadLetterFile} is not a message: it was left there (look, then fix or delete it)\n`);
    await inStatus(upload.uniqueId, 'completed');
    expect(await deadLetters()).toEqual(['garbage, not a dead letter']);
    expect(jsonLines((await cli('redrive', '--local', info, '--json')).stdout)).toEqual([{ moved: 0, unreadableLines: [1], deadLetterFile: pipeline.info.deadLetterFile }]);
  }, 60_000);
});
