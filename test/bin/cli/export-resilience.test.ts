import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../bin/sfs-pipeline.js';
import { documentClient } from '../../../lambdas/core/tasks/dynamo-task-store.js';
import { ExportLineSchema, type ExportLine } from '../../../lambdas/core/tasks/export-line.js';
import { startLocalPipeline, type LocalPipeline } from '../../../local/pipeline.js';
import { cli, jsonLines } from '../../helpers/cli.js';
import { clientsFor, writeInfoFile } from '../../helpers/local-pipeline.js';

// Export and list against records that are hostile or broken the way a table can be: put there directly (the
// pipeline's own writes are tested elsewhere), so each shape is exactly the one under test.

const root = fileURLToPath(new URL('../../..', import.meta.url));
let workDir: string;
let pipeline: LocalPipeline;
let info: string;
let put: (item: Record<string, unknown>) => Promise<unknown>;

const id = (n: number) => `sfs-${n.toString(16).padStart(40, '0')}`;
const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();
const record = (n: number, key: string, extra: Record<string, unknown> = {}) => ({
  schemaVersion: 1,
  uniqueId: id(n),
  status: 'completed',
  bucket: 'scenes',
  key,
  sceneFormat: 'sensor_fusion',
  project: 'p',
  createdAt: at(0),
  updatedAt: at(n % 3000),
  responseJson: JSON.stringify({ n }),
  ...extra,
});
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const SINCE = '2025-12-31';

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'cli-export-resilience-'));
  pipeline = await startLocalPipeline({ workDir, logs: { write: () => true } as never, reconcileEveryMs: 3_600_000 });
  info = await writeInfoFile(pipeline, workDir);
  const { s3 } = clientsFor(pipeline);
  const { info: i } = pipeline;
  const doc = documentClient(new DynamoDBClient({ region: i.region, endpoint: i.dynamodbEndpoint, credentials: { accessKeyId: i.accessKeyId, secretAccessKey: i.secretAccessKey } }));
  put = (item) => doc.send(new PutCommand({ TableName: i.tasksTable, Item: item }));

  // deep/: responses too deep for JSON.stringify, archived (as the callback function stores them) and inline.
  await s3.send(new PutObjectCommand({ Bucket: i.resultsBucket, Key: 'callbacks/deep.json', Body: `{"response":${nested(5000)}}` }));
  await put(record(1, 'deep/a.sfs'));
  await put(record(2, 'deep/archived.sfs', { responseJson: undefined, responseRef: { bucket: i.resultsBucket, key: 'callbacks/deep.json' } }));
  await put(record(3, 'deep/inline.sfs', { responseJson: `{"r":${nested(5000)}}` }));
  await put(record(4, 'deep/d.sfs'));
  // bad/: an item that is not a task record, between valid ones.
  for (const n of [11, 13, 14]) await put(record(n, `bad/${n}.sfs`));
  await put(record(12, 'bad/12.sfs', { attempts: 'abc' }));
  // evil/: control characters in what the table holds.
  await put(record(21, 'evil/x\u001b[31m.sfs', { taskId: 't\u009b2J' }));
  // mass/: more output than a pipe holds, for a reader that goes away.
  const pad = JSON.stringify({ pad: 'p'.repeat(20_000) });
  for (let n = 100; n < 250; n += 25) await Promise.all(Array.from({ length: 25 }, (_, j) => put(record(n + j, `mass/${n + j}.sfs`, { responseJson: pad }))));
}, 60_000);
afterAll(async () => {
  await pipeline?.close();
  await rm(workDir, { recursive: true, force: true });
});

const lines = (text: string): ExportLine[] => jsonLines(text).map((line) => ExportLineSchema.parse(line));

describe('export goes on past a record it cannot write as it is', () => {
  it('writes a response too deep to serialize as a line with a bounded responseError (exit 4)', async () => {
    const run = await cli('export', '--local', info, '--since', SINCE, '--prefix', 'deep/');
    expect(run.code).toBe(4);
    const written = lines(run.stdout);
    expect(written.map((l) => l['source-ref'])).toEqual(['s3://scenes/deep/a.sfs', 's3://scenes/deep/archived.sfs', 's3://scenes/deep/inline.sfs', 's3://scenes/deep/d.sfs']);
    const [ok, archived, inline, last] = written;
    expect([ok!.response, last!.response]).toEqual([{ n: 1 }, { n: 4 }]);
    for (const line of [archived!, inline!]) {
      expect(line.response).toBeUndefined();
      expect(line.responseError).toMatch(/more than 1000 levels deep/);
      expect(Buffer.byteLength(line.responseError!)).toBeLessThanOrEqual(1024);
    }
    expect([archived!.responseSource, inline!.responseSource]).toEqual(['archive', 'inline']);
    expect(run.stderr).toContain('2 line(s) have a responseError');
  });

  it('names an item that is not a valid task record on stderr, and exports and lists the rest (exit 4)', async () => {
    const exported = await cli('export', '--local', info, '--since', SINCE, '--prefix', 'bad/');
    expect(exported.code).toBe(4);
    expect(lines(exported.stdout).map((l) => l.uniqueId)).toEqual([id(11), id(13), id(14)]);
    expect(exported.stderr).toContain(`sfs-pipeline: ${id(12)} (updated ${at(12)}) is not a valid task record, so it is not exported: attempts: expected number`);

    // Page by page: every valid record once, the invalid one named once, the listing never stuck on it.
    const seen: string[] = [];
    let notes = '';
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const run = await cli('list', '--local', info, '--prefix', 'bad/', '--json', '--limit', '1', ...(cursor ? ['--cursor', cursor] : []));
      seen.push(...jsonLines<{ uniqueId: string }>(run.stdout).map((r) => r.uniqueId));
      notes += run.stderr.split('\n').filter((line) => line.includes('not a valid task record')).join('\n');
      cursor = /^next cursor: (\S+)$/m.exec(run.stderr)?.[1];
      if (!cursor) break;
    }
    expect(seen).toEqual([id(14), id(13), id(11)]);
    expect(notes.match(/not a valid task record/g)).toHaveLength(1);
  });

  it('escapes control characters in list tables, and writes C1 controls in JSON lines as \\u escapes', async () => {
    const listed = await cli('list', '--local', info, '--prefix', 'evil/');
    expect(listed.stdout).toContain('s3://scenes/evil/x\\u001b[31m.sfs');
    expect(listed.stdout).toContain('t\\u009b2J');
    const exported = await cli('export', '--local', info, '--since', SINCE, '--prefix', 'evil/');
    expect(exported.stdout).toContain('"taskId":"t\\u009b2J"');
    expect(lines(exported.stdout)[0]).toMatchObject({ 'source-ref': 's3://scenes/evil/x\u001b[31m.sfs', taskId: 't\u009b2J' });
    // eslint-disable-next-line no-control-regex
    for (const text of [listed.stdout, exported.stdout]) expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });
});

describe('where an export writes', () => {
  it('refuses to replace a non-empty --out unless --force, and an empty --out', async () => {
    const out = join(workDir, 'labels.jsonl');
    await writeFile(out, 'yesterday\'s export\n');
    const refused = await cli('export', '--local', info, '--since', SINCE, '--prefix', 'bad/', '--out', out);
    expect(refused).toMatchObject({ code: 2, stderr: expect.stringContaining('already exists (19 bytes): add --force to replace it, or --cursor CURSOR to append') });
    expect(await readFile(out, 'utf8')).toBe('yesterday\'s export\n');
    const forced = await cli('export', '--local', info, '--since', SINCE, '--prefix', 'deep/', '--out', out, '--force');
    expect(forced.code).toBe(4);
    expect(lines(await readFile(out, 'utf8'))).toHaveLength(4);
    expect(await cli('export', '--local', info, '--since', SINCE, '--out', '')).toMatchObject({ code: 2, stderr: expect.stringContaining('--out is empty') });
  });

  it('stops on SIGTERM as on Ctrl-C, printing a resume command a shell reads back exactly, even for a path with spaces and ;', async () => {
    const folder = join(workDir, 'my dir');
    await mkdir(folder);
    const out = join(folder, 'labels;rm -rf x.jsonl');
    const before = process.listeners('SIGTERM');
    let stderr = '';
    // On a terminal the progress bar is drawn first: the signal arrives as the export starts.
    const io = {
      out: { write: () => true },
      err: {
        write: (text: string) => {
          if (stderr === '') for (const listener of process.listeners('SIGTERM').filter((l) => !before.includes(l))) listener('SIGTERM');
          stderr += text;
        },
      },
      isTTY: true,
    };
    expect(await runCli(['export', '--local', info, '--since', SINCE, '--prefix', 'bad/', '--out', out], io)).toBe(1);
    expect(process.listeners('SIGTERM')).toEqual(before);
    const command = /resume with: (sfs-pipeline export .*)$/m.exec(stderr)?.[1];
    expect(stderr).toContain('export stopped after 1 line(s) (stopped by SIGTERM)');
    expect(command).toContain(`--out '${out}'`);

    // Pasted into a shell (here printf shows what the shell hands over), in a folder where `rm -rf x.jsonl` would bite.
    const cwd = await mkdtemp(join(workDir, 'shell-'));
    await writeFile(join(cwd, 'x.jsonl'), 'canary');
    const args = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${command}`], { cwd }).toString('utf8').split('\0').slice(0, -1);
    expect(existsSync(join(cwd, 'x.jsonl'))).toBe(true);
    expect(args.slice(0, 2)).toEqual(['sfs-pipeline', 'export']);
    expect(args.slice(args.indexOf('--out'))).toEqual(['--out', out]);
    const resumed = await cli(...args.slice(1));
    expect(resumed.code).toBe(4);
    expect(lines(await readFile(out, 'utf8')).map((l) => l.uniqueId)).toEqual([id(11), id(13), id(14)]);
  });
});

describe('a reader that stops reading (… | head -1)', () => {
  /** The real command in its own process: stdout is closed after the first chunk, as `head -c` does. */
  async function cutShort(...args: string[]) {
    const child = spawn(process.execPath, [join(root, 'bin/sfs-pipeline.mjs'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('exit', (exit) => resolve(exit)));
    return { code, stderr };
  }

  it('ends export and list quietly with exit 141, as a shell reports SIGPIPE', async () => {
    for (const run of [await cutShort('export', '--local', info, '--since', SINCE, '--prefix', 'mass/'), await cutShort('list', '--local', info, '--prefix', 'mass/', '--limit', '150', '--json')]) {
      expect(run.code).toBe(141);
      expect(run.stderr).not.toMatch(/EPIPE|at .*\(|node:/);
    }
  }, 60_000);
});

describe('listing arguments', () => {
  it('refuses a cursor of an empty status list, impossible dates, all mixed with unknown statuses, and a non-decimal --limit', async () => {
    const empty = Buffer.from(JSON.stringify({ v: 1, order: 'newest', statuses: [], at: at(1), id: id(1) })).toString('base64url');
    expect(await cli('list', '--local', info, '--cursor', empty)).toMatchObject({ code: 2, stderr: expect.stringContaining('--cursor: this is not a cursor') });
    expect(await cli('list', '--local', info, '--since', '2026-02-30')).toMatchObject({ code: 2, stderr: expect.stringContaining('is not a time that exists') });
    expect(await cli('export', '--local', info, '--since', '2026-01-01T24:00:00Z')).toMatchObject({ code: 2 });
    expect(await cli('list', '--local', info, '--status', 'all,bogus')).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown status "bogus"') });
    expect((await cli('list', '--local', info, '--limit', '0x10')).code).toBe(2);
    expect((await cli('list', '--local', info, '--limit', '1e2')).code).toBe(2);
    expect((await cli('list', '--local', info, '--since', '2024-02-29', '--prefix', 'bad/')).code).toBe(4);
  });
});
