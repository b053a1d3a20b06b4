import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FunctionPool, FunctionTimeoutError } from '../../local/function-pool.js';
import { eventually } from '../helpers/http.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A function of our own: reports what the runtime tells it, sleeps or crashes when asked. */
const HANDLER = `
import v8 from 'node:v8';
// Like a real bundle's clients (keep-alive sockets, caches), something keeps the event loop busy between calls.
setInterval(() => undefined, 60_000);
export async function handler(event, context) {
  const atStart = context.getRemainingTimeInMillis();
  if (event.sleepMs) await new Promise((resolve) => setTimeout(resolve, event.sleepMs));
  if (event.crash) process.exit(3);
  return {
    pid: process.pid,
    atStart,
    afterSleep: context.getRemainingTimeInMillis(),
    memoryLimitInMB: context.memoryLimitInMB,
    functionName: context.functionName,
    heapLimitMb: v8.getHeapStatistics().heap_size_limit / 1024 / 1024,
    nodeVersion: process.version,
  };
}
`;
type Report = { pid: number; atStart: number; afterSleep: number; memoryLimitInMB: string; functionName: string; heapLimitMb: number; nodeVersion: string };

let dir: string;
let bundle: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'function-pool-'));
  bundle = join(dir, 'handler.mjs');
  await writeFile(bundle, HANDLER);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const logs: string[] = [];
const logSink = () => new Writable({ write: (chunk, _encoding, done) => (logs.push(String(chunk)), done()) });
const pools: FunctionPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.close()));
});

function poolOf(options: { timeoutSeconds?: number; memoryMb?: number; size?: number } = {}) {
  const pool = new FunctionPool('probe', bundle, { PATH: process.env.PATH, AWS_REGION: 'us-east-1' }, options.size ?? 1, logSink(), {
    timeoutSeconds: options.timeoutSeconds ?? 5,
    memoryMb: options.memoryMb,
  });
  pools.push(pool);
  return pool;
}

/** Whether a process runs (a zombie, dead but not yet reaped, counts as gone). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = `/proc/${pid}/stat`;
  return !existsSync(stat) || readFileSync(stat, 'utf8').split(') ')[1]?.[0] !== 'Z';
}

describe('FunctionPool runtime', () => {
  it('runs functions on Node 24, the major of the Lambda runtime the stack deploys (nodejs24.x), as the tests themselves run', async () => {
    const report = await poolOf().invoke<Report>({});
    expect(report.nodeVersion).toMatch(/^v24\./);
    expect(process.version).toMatch(/^v24\./);
  });
});

describe('FunctionPool timeouts', () => {
  it('fails an invocation that runs past the timeout with Lambda\'s message, kills its instance, and starts a fresh one', async () => {
    const pool = poolOf({ timeoutSeconds: 1 });
    const warm = await pool.invoke<Report>({});
    const started = Date.now();
    const error = await pool.invoke({ sleepMs: 5_000 }).catch((err: unknown) => err);
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(FunctionTimeoutError);
    expect((error as Error).message).toBe('probe: Task timed out after 1.00 seconds');
    expect(elapsed).toBeGreaterThanOrEqual(1_000);
    expect(elapsed).toBeLessThan(2_500);
    await eventually(() => (running(warm.pid) ? undefined : true), 2_000, 'the timed-out instance to be killed');

    const next = await pool.invoke<Report>({});
    expect(next.pid).not.toBe(warm.pid);
    expect(pool.pids()).toEqual([next.pid]);
  });

  it('gives getRemainingTimeInMillis the invocation\'s true deadline, anew for each invocation', async () => {
    const pool = poolOf({ timeoutSeconds: 2 });
    const first = await pool.invoke<Report>({ sleepMs: 300 });
    expect(first.atStart).toBeLessThanOrEqual(2_000);
    expect(first.atStart).toBeGreaterThan(1_800);
    expect(first.afterSleep).toBeLessThanOrEqual(first.atStart - 290);
    expect(first.afterSleep).toBeGreaterThan(first.atStart - 500);

    await new Promise((resolve) => setTimeout(resolve, 400));
    const second = await pool.invoke<Report>({});
    expect(second.pid).toBe(first.pid); // the same warm instance
    expect(second.atStart).toBeGreaterThan(1_800);
  });

  it("defaults to the stack's timeouts, and refuses a function it knows no timeout for", () => {
    const sink = logSink();
    expect(new FunctionPool('create-task', bundle, {}, 1, sink).timeoutSeconds).toBe(60);
    expect(new FunctionPool('callback', bundle, {}, 1, sink).timeoutSeconds).toBe(300);
    expect(new FunctionPool('callback-auth', bundle, {}, 1, sink).timeoutSeconds).toBe(10);
    expect(new FunctionPool('callback', bundle, {}, 1, sink, { timeoutSeconds: 3 }).timeoutSeconds).toBe(3);
    expect(() => new FunctionPool('probe', bundle, {}, 1, sink)).toThrow(/timeoutSeconds/);
  });
});

describe('FunctionPool instances', () => {
  it('reports the memory size in the context and bounds the heap by it', async () => {
    const report = await poolOf({ memoryMb: 256 }).invoke<Report>({});
    expect(report).toMatchObject({ memoryLimitInMB: '256', functionName: 'probe' });
    expect(report.heapLimitMb).toBeLessThan(300);
    expect((await poolOf().invoke<Report>({})).memoryLimitInMB).toBe('512');
  });

  it('fails an invocation whose instance crashes, and serves the next one from a new instance', async () => {
    const pool = poolOf();
    const before = await pool.invoke<Report>({});
    await expect(pool.invoke({ crash: true })).rejects.toThrow(/probe: the instance exited \(3\) during an invocation/);
    const after = await pool.invoke<Report>({});
    expect(after.pid).not.toBe(before.pid);
  });

  it('keeps running through a SIGINT (a terminal sends it to the whole process group)', async () => {
    const pool = poolOf();
    const before = await pool.invoke<Report>({});
    process.kill(before.pid, 'SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await pool.invoke<Report>({})).pid).toBe(before.pid);
  });

  it('leaves no instance behind when its parent process is killed outright', async () => {
    // A parent of our own that starts an instance, reports its pid, and waits to be killed.
    const parentScript = join(dir, 'parent.mts'); // .mts: an ES module wherever it lies
    const poolModule = pathToFileURL(join(root, 'local/function-pool.ts')).href;
    await writeFile(
      parentScript,
      `import { Writable } from 'node:stream';
       import { FunctionPool } from ${JSON.stringify(poolModule)};
       const pool = new FunctionPool('probe', ${JSON.stringify(bundle)}, { PATH: process.env.PATH }, 1, new Writable({ write: (c, e, done) => done() }), { timeoutSeconds: 5 });
       const report = await pool.invoke({});
       process.stdout.write(JSON.stringify({ runner: report.pid }) + '\\n');
       setInterval(() => undefined, 1000);`,
    );
    const parent = spawn(process.execPath, ['--import', 'tsx', parentScript], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => parent.once('exit', resolve));
    let out = '';
    parent.stdout.on('data', (chunk) => (out += chunk));
    const { runner } = await eventually(() => (out.includes('\n') ? (JSON.parse(out) as { runner: number }) : undefined), 15_000, 'the runner pid');
    expect(running(runner)).toBe(true);

    try {
      parent.kill('SIGKILL');
      await exited;
      await eventually(() => (running(runner) ? undefined : true), 5_000, 'the orphaned instance to exit');
    } finally {
      if (running(runner)) process.kill(runner, 'SIGKILL');
    }
  });
});
