import { build } from 'esbuild';
import { execFile } from 'node:child_process';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { PROJECT_ROOT, type FunctionName } from '../lib/bundling.js';
import { esbuildOptions } from '../local/build-bundles.js';
import { startBenchPipeline, type Bundles } from './pipeline-kit.js';
import { median, round } from './stats.js';

const run = promisify(execFile);

export interface ColdStartParameters {
  /** Fresh processes per bundle; the figure is their median. */
  runs: number;
}

export interface BundleColdStart {
  bytes: number;
  importMs: number;
  /** To the empty handler and to the bundle of one S3 client, built and timed in the same run. */
  toEmpty: number;
  toS3Client: number;
}

export interface ColdStartFigures {
  parameters: ColdStartParameters;
  /** The Node that ran the imports: the Lambda runtime's major (the project pins it; `npm run` runs on it). */
  node: string;
  bundles: Record<string, BundleColdStart>;
}

/** Two reference bundles, built exactly as the functions are. */
const REFERENCES = {
  'empty handler': 'export const handler = async () => ({});\n',
  's3 client': "import { S3Client } from '@aws-sdk/client-s3';\nconst s3 = new S3Client({});\nexport const handler = async () => s3.config.region();\n",
};

/** What the child measures: one import() of the bundle in a fresh process, in ms. */
const IMPORTER = "const started = performance.now();\nawait import(process.argv[2]);\nprocess.stdout.write(String(performance.now() - started));\n";

/**
 * import() time of every shipped bundle in a fresh Node process each time (on this Node: the Lambda runtime's
 * major), with the environment the local pipeline gives it, against two references built in the same run.
 * The bundles are timed in turns, run after run, so that a slow spell of the machine hits all of them alike.
 */
export async function runColdStart(parameters: ColdStartParameters, bundles: Bundles, workDir: string): Promise<ColdStartFigures> {
  await mkdir(workDir, { recursive: true });
  const importer = join(workDir, 'import-once.mjs');
  await writeFile(importer, IMPORTER);
  const targets: Array<{ name: string; path: string; env: NodeJS.ProcessEnv }> = [];
  for (const [name, source] of Object.entries(REFERENCES)) {
    const outfile = join(workDir, name.replace(/ /g, '-'), 'index.mjs');
    // Bundled from the project's folder, so that the project's own SDK is what goes in, as in the functions.
    const { entryPoints: _none, ...options } = esbuildOptions('', outfile);
    await build({ ...options, stdin: { contents: source, resolveDir: PROJECT_ROOT, sourcefile: `${name}.ts`, loader: 'ts' } });
    targets.push({ name, path: outfile, env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1' } });
  }
  // The functions read their configuration at import: take each one's environment from a local pipeline.
  const bench = await startBenchPipeline(join(workDir, 'pipeline'), bundles);
  try {
    const pools = bench.pipeline.pools;
    const byName: Record<FunctionName, { pids(): number[] }> = { 'create-task': pools.createTask, callback: pools.callback, 'callback-auth': pools.callbackAuth, 'task-events': pools.taskEvents, reconcile: pools.reconcile };
    for (const name of Object.keys(byName) as FunctionName[]) {
      // The pool's environment is what the function gets; it is private to the pool, so read by name.
      const env = (byName[name] as unknown as { env: NodeJS.ProcessEnv }).env;
      targets.push({ name, path: bundles[name].path, env });
    }
    const times = new Map<string, number[]>(targets.map((t) => [t.name, []]));
    for (let i = 0; i < parameters.runs; i++) {
      for (const target of targets) {
        const { stdout } = await run(process.execPath, [importer, pathToFileURL(target.path).href], { env: target.env });
        times.get(target.name)!.push(Number(stdout));
      }
    }
    const medianOf = (name: string) => median(times.get(name)!)!;
    const empty = medianOf('empty handler');
    const s3Client = medianOf('s3 client');
    const figures: Record<string, BundleColdStart> = {};
    for (const target of targets) {
      const ms = medianOf(target.name);
      figures[target.name] = { bytes: (await stat(target.path)).size, importMs: round(ms, 1), toEmpty: round(ms / empty), toS3Client: round(ms / s3Client) };
    }
    return { parameters, node: process.version, bundles: figures };
  } finally {
    await bench.close();
  }
}
