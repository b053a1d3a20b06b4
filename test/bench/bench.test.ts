import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/bundling.js';
import { formatResults } from '../../bench/report.js';
import { mergeResults, ResultsSchema, type BurstEntry, type Results } from '../../bench/results.js';

const run = promisify(execFile);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bench-smoke-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** `npm run bench -- <args>`, as the script runs it (on this Node, with tsx), into a results file of the test's own. */
function bench(args: string[], out: string) {
  return run(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args, '--out', out], { cwd: PROJECT_ROOT, maxBuffer: 10 * 1024 * 1024 });
}

describe('npm run bench', () => {
  it('runs a small burst on the local pipeline, prints it and merges it into the results file, each figure with its parameters', async () => {
    const out = join(dir, 'burst.json');
    // An earlier figure of other parameters stays; one of the same parameters would be replaced.
    const earlier = { ...burstEntry(), parameters: { ...burstEntry().parameters, uploads: 7, rate: 3 } };
    await writeFile(out, JSON.stringify({ schemaVersion: 1, burst: [earlier], callbacks: null, latency: null, coldStart: null }));

    const { stdout } = await bench(['--burst', '20', '--rate', '50'], out);

    const results = ResultsSchema.parse(JSON.parse(await readFile(out, 'utf8')));
    expect(results.burst.map((b) => [b.parameters.uploads, b.parameters.rate])).toEqual([
      [7, 3],
      [20, 50],
    ]);
    const burst = results.burst[1]!;
    expect(burst).toMatchObject({ parameters: { uploads: 20, rate: 50, retryAfterSeconds: 1, flowControl: 'shared' }, boundSeconds: 0.4, lost: 0, duplicates: 0, deadLettered: 0 });
    expect(burst.run).toMatchObject({ cores: cpus().length, command: 'npm run bench --burst 20 --rate 50' });
    expect(burst.wallSeconds).toBeGreaterThan(0);
    expect(burst.ratio).toBeCloseTo(burst.wallSeconds / 0.4, 1);
    expect(burst.peakRssMb['create-task']!.length).toBeGreaterThan(0);
    expect(stdout).toMatch(/^20 +50 +shared /m);
  }, 120_000);

  it('measures callbacks, latency and cold starts, each into its own section', async () => {
    const out = join(dir, 'sections.json');
    const { stdout } = await bench(['--callbacks', '8', '--latency', '2', '--cold-start', '--runs', '1'], out);

    const results = ResultsSchema.parse(JSON.parse(await readFile(out, 'utf8')));
    expect(results.burst).toEqual([]);
    expect(results.callbacks).toMatchObject({ parameters: { callbacks: 8 } });
    expect(results.callbacks!.callbackPath.appliedPerSecond).toBeGreaterThan(0);
    // Every process the callbacks ran through has its CPU counted; the raw writes run through the emulators only.
    const cpu = results.callbacks!.cpuMsPerItem;
    expect(Object.keys(cpu.callbacks).sort()).toEqual(['callback', 'callback-auth', 'emulators + bench', 'task-events']);
    expect(cpu.callbacks.callback).toBeGreaterThan(0);
    expect(Object.keys(cpu.rawWrites)).toEqual(['emulators + bench']);
    expect(stdout).toMatch(/^callback applied( +[\d.]+){5}$/m);
    expect(stdout).toMatch(/^raw write +[\d.]+( +-){3} +[\d.]+$/m);
    expect(results.latency).toMatchObject({ parameters: { uploads: 2 } });
    expect(Object.keys(results.coldStart!.bundles).sort()).toEqual(['callback', 'callback-auth', 'create-task', 'empty handler', 'reconcile', 's3 client', 'task-events']);
    expect(results.coldStart!.bundles['empty handler']!.toEmpty).toBe(1);
    expect(stdout).toContain('Cold start');
  }, 180_000);
});

describe('results file', () => {
  it('keeps one burst figure per parameters, the newest, ordered by uploads then rate', () => {
    const at = (uploads: number, rate: number | null, wallSeconds: number) => ({ ...burstEntry(), parameters: { ...burstEntry().parameters, uploads, rate }, wallSeconds });
    const before: Results = { schemaVersion: 1, burst: [at(1000, 20, 60), at(1000, 5, 210)], callbacks: null, latency: null, coldStart: null };
    const merged = mergeResults(before, { burst: [at(1000, 20, 52), at(300, null, 9)] });
    expect(merged.burst.map((b) => [b.parameters.uploads, b.parameters.rate, b.wallSeconds])).toEqual([
      [300, null, 9],
      [1000, 5, 210],
      [1000, 20, 52],
    ]);
    expect(formatResults(merged)).toMatch(/^1000 +20 +shared +52\.0 +50\.0 +1\.040 +2\.0 % +0 +0 /m);
    // The same burst with the other flow control is another figure, kept beside it.
    const perInstance = { ...at(1000, 20, 57), parameters: { ...at(1000, 20, 57).parameters, flowControl: 'per instance' as const } };
    expect(mergeResults(merged, { burst: [perInstance] }).burst.map((b) => [b.parameters.rate, b.parameters.flowControl, b.wallSeconds])).toEqual([
      [null, 'shared', 9],
      [5, 'shared', 210],
      [20, 'shared', 52],
      [20, 'per instance', 57],
    ]);
  });

  it('reads figures from before the shared rate as per instance', () => {
    const { flowControl: _, ...older } = burstEntry().parameters;
    const results = ResultsSchema.parse({ schemaVersion: 1, burst: [{ ...burstEntry(), parameters: older }], callbacks: null, latency: null, coldStart: null });
    expect(results.burst[0]!.parameters.flowControl).toBe('per instance');
  });
});

function burstEntry(): BurstEntry {
  return {
    run: { at: '2026-01-01T00:00:00.000Z', cores: 2, cpu: 'test', node: 'v24.0.0', platform: 'linux x64', loadAverage: [1, 1, 1], command: 'npm run bench' },
    parameters: { uploads: 1000, rate: 20, retryAfterSeconds: 1, uploadConcurrency: 16, maxConcurrency: 5, scaleStartDelayMs: 600_000, flowControl: 'shared' },
    wallSeconds: 52,
    boundSeconds: 50,
    ratio: 1.04,
    tasksPerSecond: 19.2,
    scaleRequests: 1020,
    rateLimited: 20,
    share429: 0.0196,
    duplicates: 0,
    lost: 0,
    deadLettered: 0,
    uploadToTaskMs: { p50: 20_000, p99: 45_000 },
    deliveries: 1000,
    peakRssMb: { 'create-task': [130] },
  };
}
