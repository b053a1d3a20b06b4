import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { LocalInfo } from '../../local/pipeline.js';
import { eventually } from '../helpers/http.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'local-process-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const listening = (url: string) =>
  new Promise<boolean>((resolve) => {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname, () => (socket.destroy(), resolve(true)));
    socket.on('error', () => resolve(false));
  });

describe('npm run local', () => {
  it('explains its options with --help and exits 0 without starting anything', async () => {
    const { stdout } = await run('npm', ['run', '-s', 'local', '--', '--help'], { cwd: root, timeout: 30_000 });
    expect(stdout).toMatch(/^Usage: npm run -s local -- \[options\]/);
    for (const option of ['--info-file PATH', '--work-dir DIR', '--events-url URL', '--reconcile-every SECONDS', '-h, --help']) expect(stdout).toContain(`  ${option}`);
  }, 30_000);

  it('refuses an unknown option with exit 2, pointing at --help', async () => {
    const failed = await run('npm', ['run', '-s', 'local', '--', '--info'], { cwd: root, timeout: 30_000 }).catch((err: { code: number; stderr: string }) => err);
    expect(failed).toMatchObject({ code: 2 });
    expect((failed as { stderr: string }).stderr).toContain('npm run local -- --help lists the options.');
  }, 30_000);

  it('refuses, before starting anything, an --info-file it could not write: one line, exit 2, no temporary folder left', async () => {
    const temp = await mkdtemp(join(dir, 'tmp-'));
    const infoFile = join(dir, 'no-such-folder', 'x.json');
    const started = Date.now();
    const failed = await run('npm', ['run', '-s', 'local', '--', '--info-file', infoFile], { cwd: root, timeout: 30_000, env: { ...process.env, TMPDIR: temp } }).catch(
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(failed).toMatchObject({ code: 2, stdout: '' });
    expect((failed as { stderr: string }).stderr).toBe(`--info-file ${JSON.stringify(infoFile)}: its folder ${join(dir, 'no-such-folder')} does not exist\nnpm run local -- --help lists the options.\n`);
    // Refused up front, not found out after the half minute a start takes.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(readdirSync(temp).filter((name) => name.startsWith('scale-sfs-local-'))).toEqual([]);
  }, 30_000);

  it('prints only the JSON line on stdout (npm run -s), writes it to --info-file, and on SIGTERM stops every server and removes its temporary folder', async () => {
    const infoFile = join(dir, 'info.json');
    const child = spawn('npm', ['run', '-s', 'local', '--', '--info-file', infoFile], {
      cwd: root,
      env: { ...process.env, LOCAL_LOG_LEVEL: 'ERROR' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

    await eventually(() => (stdout.includes('\n') ? true : undefined), 60_000, 'the ready line');
    const info = JSON.parse(stdout) as LocalInfo;
    expect(JSON.parse(await readFile(infoFile, 'utf8'))).toEqual(info);
    for (const key of ['region', 'accessKeyId', 'secretAccessKey', 's3Endpoint', 'bucket', 'dynamodbEndpoint', 'tasksTable', 'callbackUrl', 'scaleApiUrl', 'scaleApiKey', 'deadLetterFile', 'callbackDeadLetterFile', 'eventsFile', 'controlUrl']) {
      expect(info, key).toHaveProperty(key);
    }
    const endpoints = [info.s3Endpoint, info.dynamodbEndpoint, info.callbackUrl, info.scaleApiUrl, info.secretsManagerEndpoint, info.controlUrl];
    for (const url of endpoints) {
      expect(new URL(url).hostname).toBe('127.0.0.1');
      expect(await listening(url), url).toBe(true);
    }
    // Without --work-dir: a fresh temporary folder, named in the info by the files it holds.
    const workDir = dirname(info.deadLetterFile);
    expect(dirname(workDir)).toBe(tmpdir());
    expect(basename(workDir)).toMatch(/^scale-sfs-local-/);
    expect(existsSync(workDir)).toBe(true);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout.endsWith('\n')).toBe(true);
    expect(stdout.trimEnd().split('\n')).toHaveLength(1);
    for (const url of endpoints) expect(await listening(url), url).toBe(false);
    expect(existsSync(workDir)).toBe(false);
  }, 90_000);
});

interface ProcessEntry {
  pid: number;
  ppid: number;
  state: string;
  cmdline: string;
}

/** Every process on the machine, from /proc (Linux). */
function processes(): ProcessEntry[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => {
      try {
        // The command name in /proc/PID/stat is in parentheses and may hold spaces: split after the last ')'.
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
        return [{ pid: Number(name), ppid: Number(ppid), state: state!, cmdline }];
      } catch {
        return []; // gone meanwhile
      }
    });
}

/** `pid` and everything it started, still running (a zombie, dead but not yet reaped, does not run). */
function processTree(pid: number): ProcessEntry[] {
  const all = processes().filter((p) => p.state !== 'Z');
  const tree = all.filter((p) => p.pid === pid);
  for (let i = 0; i < tree.length; i++) tree.push(...all.filter((p) => p.ppid === tree[i]!.pid));
  return tree;
}

const stillRunning = (pids: number[]) => processes().filter((p) => pids.includes(p.pid) && p.state !== 'Z');

describe('npm run local, stopped through npm', () => {
  it.each([['SIGTERM'], ['SIGINT']] as const)('exits 0 within 15 s on %s to npm alone, leaving no process or port behind', async (signal) => {
    const infoFile = join(dir, `npm-${signal}.json`);
    const workDir = join(dir, `npm-work-${signal}`);
    // Its own process group: the signal goes to npm's pid alone (as `kill <pid>` from docker or systemd does),
    // and a failing test can still clean up the whole group.
    const npm = spawn('npm', ['run', 'local', '--', '--info-file', infoFile, '--work-dir', workDir], {
      cwd: root,
      env: { ...process.env, LOCAL_LOG_LEVEL: 'ERROR' },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    let stderr = '';
    npm.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
    let started: ProcessEntry[] = [];
    try {
      const info = await eventually(
        async () => {
          const text = await readFile(infoFile, 'utf8').catch(() => '');
          return text.endsWith('\n') ? (JSON.parse(text) as LocalInfo) : undefined;
        },
        60_000,
        'the info file',
      );
      // An upload, so that create-task runs in an instance process of its own.
      const credentials = { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey };
      const s3 = new S3Client({ region: info.region, endpoint: info.s3Endpoint, forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED' });
      await s3.send(new PutObjectCommand({ Bucket: info.bucket, Key: 'signals/scene.sfs', Body: 'not really a scene' }));
      started = await eventually(() => {
        const tree = processTree(npm.pid!);
        return tree.some((p) => p.cmdline.includes('lambda-runner.mjs')) ? tree : undefined;
      }, 30_000, 'a function instance');
      expect(started.some((p) => p.cmdline.includes('bin/local.ts'))).toBe(true);
      const endpoints = [info.s3Endpoint, info.dynamodbEndpoint, info.callbackUrl, info.scaleApiUrl, info.secretsManagerEndpoint, info.controlUrl];
      for (const url of endpoints) expect(await listening(url), url).toBe(true);

      const stopAsked = Date.now();
      process.kill(npm.pid!, signal);
      const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running after 15 s'), 15_000))]);
      expect(code, stderr).toBe(0);
      expect(Date.now() - stopAsked).toBeLessThan(15_000);
      for (const url of endpoints) expect(await listening(url), url).toBe(false);
      // A work folder the user named is theirs: it stays, with what the pipeline wrote there.
      expect(readdirSync(workDir)).toContain('dead-letters.jsonl');
      // Child processes that leave when their parent does (esbuild's service, function instances) get a moment to do so.
      const left = () => [...stillRunning(started.map((p) => p.pid)), ...processes().filter((p) => p.state !== 'Z' && p.cmdline.includes(workDir))];
      await eventually(() => (left().length === 0 ? true : undefined), 3_000, 'every started process to exit').catch(() => undefined);
      expect(left()).toEqual([]);
    } finally {
      if (npm.exitCode === null && npm.signalCode === null) process.kill(-npm.pid!, 'SIGKILL');
      for (const p of stillRunning(started.map((p) => p.pid))) process.kill(p.pid, 'SIGKILL');
    }
  }, 120_000);
});
