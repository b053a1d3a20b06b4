import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../bin/sfs-pipeline.js';
import { INLINE_RESPONSE_LIMIT_BYTES } from '../../../lambdas/core/callbacks/apply-callback.js';
import { encodeSfsToBuffer } from '../../../lambdas/core/scenes/sfs/writer.js';
import { ExportLineSchema, type ExportLine } from '../../../lambdas/core/tasks/export-line.js';
import type { TaskRecord } from '../../../lambdas/core/tasks/task-record.js';
import { readCdkJsonConfig, startLocalPipeline, type LocalPipeline } from '../../../local/pipeline.js';
import { buildSampleScene } from '../../../local/sample-scenes.js';
import { cli, jsonLines } from '../../helpers/cli.js';
import { clientsFor, writeInfoFile } from '../../helpers/local-pipeline.js';

const scene = encodeSfsToBuffer(buildSampleScene());
let workDir: string;
let pipeline: LocalPipeline;
let c: ReturnType<typeof clientsFor>;
let info: string;
type Upload = Awaited<ReturnType<ReturnType<typeof clientsFor>['put']>>;
/** The 50 uploads, by kind: what the listings and the export must show. */
const uploads = { city: [] as Upload[], highway: [] as Upload[], large: [] as Upload[], rejected: [] as Upload[] };
const all = () => [...uploads.city, ...uploads.highway, ...uploads.large, ...uploads.rejected];
const completed = () => [...uploads.city, ...uploads.highway, ...uploads.large];

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'cli-list-export-'));
  const routing = { ...readCdkJsonConfig().routing, routes: [{ prefix: 'highway/', project: 'scenes-highway' }] };
  pipeline = await startLocalPipeline({ workDir, logs: { write: () => true } as never, config: { routing }, simulator: { completionDelayMs: 10, callbackRetryDelayMs: 20, downloadTimeoutMs: 30_000 }, reconcileEveryMs: 3_600_000 });
  c = clientsFor(pipeline);
  info = await writeInfoFile(pipeline, workDir);
  // In bursts of ten, as a producer would: the point here is the listing, not the ingest's flow control.
  const putAll = async (count: number, key: (i: number) => string, body: (i: number) => Buffer | string) => {
    const done: Upload[] = [];
    for (let i = 0; i < count; i += 10) done.push(...(await Promise.all(Array.from({ length: Math.min(10, count - i) }, (_, j) => c.put(key(i + j), body(i + j))))));
    return done;
  };
  uploads.city = await putAll(34, (i) => `city/${i}.sfs`, () => scene);
  uploads.highway = await putAll(10, (i) => `highway/${i}.sfs`, () => scene);
  uploads.rejected = await putAll(3, (i) => `city/broken-${i}.sfs`, (i) => `not a scene ${i}`);
  const outcomes = await Promise.all(all().map((u) => c.settled(u.uniqueId, 60_000)));
  const unexpected = outcomes.filter((r) => r.status !== (r.key.includes('broken') ? 'rejected' : 'completed'));
  if (unexpected.length > 0) throw new Error(`uploads ended otherwise than planned: ${JSON.stringify(unexpected.map((r) => [r.key, r.status, r.reason, r.lastError]))}`);
  // Responses past the inline limit: the record keeps a reference to the archived callback instead.
  pipeline.scale.configure({ responsePaddingBytes: INLINE_RESPONSE_LIMIT_BYTES + 10_000 });
  uploads.large = await putAll(3, (i) => `city/large-${i}.sfs`, () => scene);
  for (const u of uploads.large) expect(await c.settled(u.uniqueId, 60_000)).toMatchObject({ status: 'completed' });
  pipeline.scale.configure({ responsePaddingBytes: 0 });
}, 120_000);
afterAll(async () => {
  await pipeline?.close();
  await rm(workDir, { recursive: true, force: true });
});

const NEXT_CURSOR = /^next cursor: (\S+)$/m;

/** Every page of `list --json` with these options, following the cursors printed on stderr. */
async function listAll(...options: string[]): Promise<TaskRecord[][]> {
  const pages: TaskRecord[][] = [];
  let cursor: string | undefined;
  do {
    const run = await cli('list', '--local', info, '--json', ...options, ...(cursor ? ['--cursor', cursor] : []));
    expect(run.code, run.stderr).toBe(0);
    pages.push(jsonLines<TaskRecord>(run.stdout));
    cursor = NEXT_CURSOR.exec(run.stderr)?.[1];
  } while (cursor && pages.length < 60);
  return pages;
}

/** The OBJECT column of a human `list` table. */
const objectsIn = (table: string) =>
  table
    .split('\n')
    .filter((line) => /^\d{4}-/.test(line))
    .map((line) => line.split(/ +/)[2]);
const ids = (items: Array<{ uniqueId: string }>) => items.map((i) => i.uniqueId);
const sorted = (values: string[]) => [...values].sort();

describe('sfs-pipeline list', () => {
  it('pages through all 50 records of every status, newest first, each exactly once', async () => {
    const pages = await listAll('--limit', '7');
    expect(pages.map((p) => p.length)).toEqual([7, 7, 7, 7, 7, 7, 7, 1]);
    const records = pages.flat();
    expect(sorted(ids(records))).toEqual(sorted(ids(all())));
    for (let i = 1; i < records.length; i++) {
      const [newer, older] = [records[i - 1]!, records[i]!];
      expect(newer.updatedAt > older.updatedAt || (newer.updatedAt === older.updatedAt && newer.uniqueId > older.uniqueId), `${i}`).toBe(true);
    }
    expect(new Set(records.map((r) => r.status))).toEqual(new Set(['completed', 'rejected']));
  }, 30_000);

  it('tells people how to get the next page, and that cursor continues the listing', async () => {
    const first = await cli('list', '--local', info, '--limit', '5');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^UPDATED +STATUS +OBJECT +PROJECT +TASK +WHY\n/);
    const cursor = /^next page: add --cursor (\S+)$/m.exec(first.stdout)?.[1];
    expect(cursor).toBeDefined();
    const json = await listAll('--limit', '5');
    const second = await cli('list', '--local', info, '--limit', '5', '--cursor', cursor!);
    expect(objectsIn(second.stdout)).toEqual(json[1]!.map((r) => `s3://${r.bucket}/${r.key}`));
    // Exactly five left after 45: the page that ends the listing says nothing of a next one.
    const last = await cli('list', '--local', info, '--limit', '5', '--cursor', NEXT_CURSOR.exec((await cli('list', '--local', info, '--json', '--limit', '45')).stderr)![1]!);
    expect(objectsIn(last.stdout)).toHaveLength(5);
    expect(last.stdout).not.toContain('next page');
  }, 30_000);

  it('filters by status, project, prefix and since, with full pages', async () => {
    expect(sorted(ids((await listAll('--status', 'rejected')).flat()))).toEqual(sorted(ids(uploads.rejected)));
    const highway = await listAll('--project', 'scenes-highway', '--limit', '4');
    expect(highway.map((p) => p.length)).toEqual([4, 4, 2]);
    expect(sorted(ids(highway.flat()))).toEqual(sorted(ids(uploads.highway)));
    expect(sorted(ids((await listAll('--prefix', 'city/large-', '--status', 'completed,error')).flat()))).toEqual(sorted(ids(uploads.large)));
    expect((await listAll('--since', '1h', '--limit', '1000')).flat()).toHaveLength(50);
    const future = await cli('list', '--local', info, '--since', '2999-01-01');
    expect(future).toMatchObject({ code: 0, stdout: expect.stringContaining('no task records updated since 2999-01-01T00:00:00.000Z') });
  }, 30_000);

  it('refuses a bad --since, --status or --limit, and a cursor used with other filters', async () => {
    expect((await cli('list', '--local', info, '--since', 'yesterday')).stderr).toContain('neither an ISO time');
    expect((await cli('list', '--local', info, '--status', 'done')).code).toBe(2);
    expect((await cli('list', '--local', info, '--limit', '0')).code).toBe(2);
    const cursor = NEXT_CURSOR.exec((await cli('list', '--local', info, '--json', '--limit', '2', '--status', 'completed')).stderr)![1]!;
    const mismatch = await cli('list', '--local', info, '--cursor', cursor, '--status', 'rejected');
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain('--status differs from the listing this cursor continues');
    expect((await cli('list', '--local', info, '--cursor', 'garbage')).code).toBe(2);
  });
});

/** Export lines, each checked against the published schema. */
const lines = (text: string): ExportLine[] =>
  jsonLines(text).map((line) => {
    const parsed = ExportLineSchema.safeParse(line);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    return parsed.data!;
  });

/** Scale's side of a completed upload: the simulator's own task, the independent oracle of what was exported. */
const simulated = (uniqueId: string) => c.tasksFor(uniqueId)[0]!.task;

describe('sfs-pipeline export', () => {
  let full: ExportLine[];

  it('writes one valid line per completed task, oldest first, with Scale\'s response (read from the archive when large)', async () => {
    const out = join(workDir, 'all.jsonl');
    const run = await cli('export', '--local', info, '--since', '1h', '--out', out);
    expect(run).toMatchObject({ code: 0, stdout: '', stderr: `exported 47 tasks to ${out}\n` });
    full = lines(await readFile(out, 'utf8'));
    expect(sorted(ids(full))).toEqual(sorted(ids(completed())));
    for (let i = 1; i < full.length; i++) expect(full[i - 1]!.updatedAt <= full[i]!.updatedAt).toBe(true);

    for (const upload of completed()) {
      const line = full.find((l) => l.uniqueId === upload.uniqueId)!;
      const task = simulated(upload.uniqueId);
      expect(line).toMatchObject({ 'source-ref': `s3://${pipeline.info.bucket}/${upload.key}`, versionId: upload.versionId, taskId: task.task_id, status: 'completed', completedAt: task.completed_at });
      expect(line.response).toEqual(task.response);
      expect(line.resultFiles).toEqual([expect.objectContaining({ s3Uri: expect.stringMatching(new RegExp(`^s3://${pipeline.info.resultsBucket}/`)), bytes: expect.any(Number), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) })]);
    }
    for (const upload of uploads.large) {
      const line = full.find((l) => l.uniqueId === upload.uniqueId)!;
      expect(line.responseSource).toBe('archive');
      expect((line.response as { padding: string }).padding).toHaveLength(INLINE_RESPONSE_LIMIT_BYTES + 10_000);
      // Not in the table: the record holds only the reference.
      const [record] = jsonLines<TaskRecord>((await cli('status', upload.uniqueId, '--local', info, '--json')).stdout);
      expect(record!.responseJson).toBeUndefined();
      expect(record!.responseRef).toMatchObject({ bucket: pipeline.info.resultsBucket });
    }
    expect(full.filter((l) => l.responseSource === 'inline')).toHaveLength(44);
  }, 30_000);

  it('stops on Ctrl-C with a cursor that appends the rest, each task exactly once', async () => {
    let stdout = '';
    let stderr = '';
    let written = 0;
    const io = {
      out: {
        write: (text: string) => {
          stdout += text;
          // Interrupt after the 20th line, as Ctrl-C would.
          if (++written === 20) process.emit('SIGINT');
          return true;
        },
      },
      err: { write: (text: string) => (stderr += text) },
      isTTY: false,
    };
    const code = await runCli(['export', '--local', info, '--since', '1h'], io);
    expect(code).toBe(1);
    expect(lines(stdout)).toHaveLength(20);
    expect(stderr).toContain('export stopped after 20 line(s) (interrupted); resume with: sfs-pipeline export --local');
    const cursor = /--cursor (\S+) >> FILE/.exec(stderr)![1]!;

    const out = join(workDir, 'resumed.jsonl');
    await writeFile(out, stdout);
    const resumed = await cli('export', '--local', info, '--since', '1h', '--cursor', cursor, '--out', out);
    expect(resumed).toMatchObject({ code: 0, stderr: `exported 27 tasks to ${out}\n` });
    expect(ids(lines(await readFile(out, 'utf8')))).toEqual(ids(full));
    expect(process.listenerCount('SIGINT')).toBe(0);

    const otherFilters = await cli('export', '--local', info, '--cursor', cursor, '--status', 'rejected');
    expect(otherFilters.code).toBe(2);
    expect((await cli('export', '--local', info)).stderr).toContain('--since TIME');
  }, 30_000);

  it('draws a progress bar on stderr only on a terminal', async () => {
    let stderr = '';
    const io = { out: { write: () => true }, err: { write: (text: string) => (stderr += text) }, isTTY: true };
    expect(await runCli(['export', '--local', info, '--since', '1h', '--prefix', 'highway/', '--out', join(workDir, 'tty.jsonl')], io)).toBe(0);
    expect(stderr).toContain('exporting [');
    expect(stderr).toContain('10/10 tasks');
    // Without a terminal (every other test here), only the summary.
    expect((await cli('export', '--local', info, '--since', '1h', '--prefix', 'highway/', '--out', join(workDir, 'plain.jsonl'))).stderr).toBe(`exported 10 tasks to ${join(workDir, 'plain.jsonl')}\n`);
  });

  it('writes a line whose archived response is gone with a responseError, and ends with exit 4', async () => {
    const [record] = jsonLines<TaskRecord>((await cli('status', uploads.large[0]!.uniqueId, '--local', info, '--json')).stdout);
    await c.s3.send(new DeleteObjectCommand({ Bucket: record!.responseRef!.bucket, Key: record!.responseRef!.key }));
    const run = await cli('export', '--local', info, '--since', '1h', '--prefix', 'city/large-');
    expect(run.code).toBe(4);
    const exported = lines(run.stdout);
    expect(exported).toHaveLength(3);
    const broken = exported.find((l) => l.uniqueId === record!.uniqueId)!;
    expect(broken.response).toBeUndefined();
    expect(broken.responseError).toContain('does not exist');
    expect(exported.filter((l) => l.response !== undefined)).toHaveLength(2);
  }, 30_000);
});
