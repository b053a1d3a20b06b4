// npm run bench [-- options]: measures the local pipeline and merges the figures into bench/results.json.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../lib/bundling.js';
import { buildBundles } from '../local/build-bundles.js';
import { readCdkJsonConfig } from '../local/pipeline.js';
import { burstDir, runBurst, type BurstParameters } from './burst.js';
import { runCallbacks } from './callbacks.js';
import { runColdStart } from './cold-start.js';
import { runLatency } from './latency.js';
import { formatResults } from './report.js';
import { mergeResults, readResults, runInfo, writeResults, type Results } from './results.js';

const USAGE = `npm run bench [-- options]   (no section option: every section with its defaults)
  --burst N             uploads per burst (default 300)
  --rate R              Scale's rate limit, requests/s; repeat for several; "none" for no limit (default 20, 50, none)
  --retry-after S       Retry-After of the simulator's 429s, seconds (default 1)
  --per-instance        each create-task instance finds its own share of the limit (default: cdk.json's
                        sharedRateLimit, on unless set false: one rate shared through the rate table)
  --callbacks M         callback throughput with M callbacks (default 300)
  --latency N           latency over N uploads, one at a time at 4/s (default 40)
  --cold-start          import() time and size of every bundle
  --runs K              fresh processes per bundle for the cold start (default 7)
  --out FILE            results file to merge into (default bench/results.json)
  --keep                keep the pipelines' data and function logs (the folder is printed)`;

const { values } = parseArgs({
  options: {
    burst: { type: 'string' },
    rate: { type: 'string', multiple: true },
    'retry-after': { type: 'string', default: '1' },
    'per-instance': { type: 'boolean', default: false },
    callbacks: { type: 'string' },
    latency: { type: 'string' },
    'cold-start': { type: 'boolean', default: false },
    runs: { type: 'string', default: '7' },
    out: { type: 'string', default: join(PROJECT_ROOT, 'bench', 'results.json') },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const count = (value: string | undefined, fallback: number, what: string): number => {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a whole number of at least 1, not ${value}`);
  return n;
};
const all = values.burst === undefined && values.rate === undefined && values.callbacks === undefined && values.latency === undefined && !values['cold-start'];
const rates = (values.rate ?? ['20', '50', 'none']).map((r) => (r === 'none' ? null : count(r, 0, '--rate')));
const command = ['npm run bench', ...process.argv.slice(2)].join(' ').replace(/ (--out|--keep)( \S+)?/g, '');
const log = (line: string) => process.stderr.write(`${line}\n`);

const workDir = await mkdtemp(join(tmpdir(), 'sfs-bench-'));
const measured: Partial<Omit<Results, 'schemaVersion'>> = {};
try {
  log(`building the function bundles (work in ${workDir})`);
  const bundles = await buildBundles(join(workDir, 'bundles'));
  if (all || values.burst !== undefined || values.rate !== undefined) {
    measured.burst = [];
    for (const rate of rates) {
      const parameters: BurstParameters = {
        uploads: count(values.burst, 300, '--burst'),
        rate,
        retryAfterSeconds: Number(values['retry-after']),
        uploadConcurrency: 16,
        maxConcurrency: readCdkJsonConfig().maxConcurrency,
        scaleStartDelayMs: 600_000,
        flowControl: values['per-instance'] || !readCdkJsonConfig().sharedRateLimit ? 'per instance' : 'shared',
      };
      log(`burst: ${parameters.uploads} uploads, rate limit ${rate ?? 'none'}, flow control ${parameters.flowControl}`);
      const run = runInfo(command);
      measured.burst.push({ run, ...(await runBurst(parameters, bundles, burstDir(workDir, parameters), log)) });
    }
  }
  if (all || values.callbacks !== undefined) {
    const parameters = { callbacks: count(values.callbacks, 300, '--callbacks'), postConcurrency: 16, rawConcurrency: 4, rawRuns: 3 };
    log(`callbacks: ${parameters.callbacks}`);
    const run = runInfo(command);
    measured.callbacks = { run, ...(await runCallbacks(parameters, bundles, join(workDir, 'callbacks'), log)) };
  }
  if (all || values.latency !== undefined) {
    const parameters = { uploads: count(values.latency, 40, '--latency'), uploadsPerSecond: 4 };
    log(`latency: ${parameters.uploads} uploads`);
    const run = runInfo(command);
    measured.latency = { run, ...(await runLatency(parameters, bundles, join(workDir, 'latency'))) };
  }
  if (all || values['cold-start']) {
    const parameters = { runs: count(values.runs, 7, '--runs') };
    log(`cold start: ${parameters.runs} runs`);
    const run = runInfo(command);
    measured.coldStart = { run, ...(await runColdStart(parameters, bundles, join(workDir, 'cold-start'))) };
  }
  const results = mergeResults(await readResults(values.out), measured);
  await writeResults(values.out, results);
  console.log(formatResults({ schemaVersion: 1, burst: measured.burst ?? [], callbacks: measured.callbacks ?? null, latency: measured.latency ?? null, coldStart: measured.coldStart ?? null }));
  log(`figures merged into ${values.out}`);
  // Wrong is worse than slow: a lost or duplicated upload fails the run (its figures are kept, to look at).
  const broken = (measured.burst ?? []).filter((b) => b.lost > 0 || b.duplicates > 0);
  if (broken.length > 0) {
    log(`FAILED: ${broken.map((b) => `rate ${b.parameters.rate ?? 'none'}: ${b.lost} lost, ${b.duplicates} duplicated`).join('; ')}`);
    process.exitCode = 1;
  }
} finally {
  if (values.keep) log(`kept ${workDir}`);
  else await rm(workDir, { recursive: true, force: true });
}
