/**
 * `npm run local`: the whole pipeline on 127.0.0.1 until SIGINT/SIGTERM. Prints one line of JSON (endpoints,
 * credentials, names) to stdout when ready, and writes it to --info-file PATH too; everything else goes to stderr.
 * A requested stop (SIGINT, SIGTERM, also during start-up) closes every server and function instance, removes the
 * temporary work folder (a --work-dir is kept) and exits 0. A start that fails (an --info-file that cannot be
 * written is found before anything starts) closes what it started, removes the folder and says why in one line.
 */
import { constants } from 'node:fs';
import { access, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../lambdas/core/shared/config.js';
import { startLocalPipeline } from '../local/pipeline.js';

const HELP = `Usage: npm run -s local -- [options]

Runs the whole pipeline offline, on 127.0.0.1 and free ports, until Ctrl-C or SIGTERM: stand-ins for S3, SQS,
DynamoDB and its stream, Secrets Manager, API Gateway, EventBridge and Scale, and the very function bundles
\`cdk deploy\` ships. When ready it prints one line of JSON to stdout (endpoints, credentials, bucket and table
names, the Scale simulator's URL and key); the functions' logs go to stderr. Nothing reaches AWS or Scale.

Options:
  --info-file PATH           also write the JSON line to PATH (what \`sfs-pipeline --local PATH\` reads)
  --work-dir DIR             keep bundles, emulator data, dead letters and task events in DIR, and leave them
                             there at exit (default: a temporary folder, removed at exit)
  --events-url URL           also POST each task event to URL (they always go to the eventsFile the JSON names)
  --reconcile-every SECONDS  run the reconciler this often (default: cdk.json's reconcileEveryMinutes);
                             POST <controlUrl>/reconcile runs it at once
  -h, --help                 show this help and exit

Example:
  npm run -s local -- --info-file /tmp/pipeline.json &
  npx sfs-pipeline upload scene.sfs --local /tmp/pipeline.json --wait
`;

const usageError = (message: string) => {
  process.stderr.write(`${message}\nnpm run local -- --help lists the options.\n`);
  process.exit(2);
};

let values: { 'info-file'?: string; 'work-dir'?: string; 'events-url'?: string; 'reconcile-every'?: string; help?: boolean } = {};
try {
  ({ values } = parseArgs({
    options: {
      'info-file': { type: 'string' },
      'work-dir': { type: 'string' },
      'events-url': { type: 'string' },
      'reconcile-every': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  usageError((err as Error).message);
}
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const reconcileEverySeconds = values['reconcile-every'] === undefined ? undefined : Number(values['reconcile-every']);
if (reconcileEverySeconds !== undefined && !(reconcileEverySeconds > 0)) {
  usageError(`--reconcile-every takes a positive number of seconds, not "${values['reconcile-every']}"`);
}
const infoFile = values['info-file'];
if (infoFile !== undefined) {
  // Checked before the start (half a minute of bundling and servers), not found out after it.
  const problem = await infoFileProblem(infoFile);
  if (problem) usageError(`--info-file ${JSON.stringify(infoFile)}: ${problem}`);
}

/** Why the info file cannot be written there, or undefined when it can (its folder exists and is writable). */
async function infoFileProblem(path: string): Promise<string | undefined> {
  if (path.trim() === '') return 'give the path of the file to write';
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) return 'is a folder; give the path of a file';
  const folder = dirname(resolve(path));
  const info = await stat(folder).catch(() => undefined);
  if (!info?.isDirectory()) return `its folder ${folder} does not exist`;
  const writable = await access(existing ? path : folder, constants.W_OK).then(() => true, () => false);
  return writable ? undefined : `${existing ? 'the file' : `its folder ${folder}`} is not writable`;
}

/** A start that failed: one line for the user (the pipeline has already closed what it started), exit 1. */
function startFailed(err: unknown): never {
  // cdk.json's settings are the user's to fix: their message alone.
  const message = err instanceof ConfigError ? err.message : `the local pipeline could not start: ${(err as Error).message ?? String(err)}`;
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

const starting = startLocalPipeline({
  workDir: values['work-dir'],
  eventsUrl: values['events-url'],
  reconcileEveryMs: reconcileEverySeconds === undefined ? undefined : reconcileEverySeconds * 1000,
});

// Listening from the very start: a stop during start-up waits for the start to finish, then closes what it started.
let stopping = false;
async function stop(signal: NodeJS.Signals) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`${signal}: stopping every server\n`);
  // A stop must not hang; what is left then goes with this process (function instances leave when it does).
  setTimeout(() => (process.stderr.write('could not stop within 10 s\n'), process.exit(1)), 10_000).unref();
  const pipeline = await starting.catch(() => undefined);
  await pipeline?.close();
  process.exit(0);
}
process.on('SIGINT', (signal) => void stop(signal));
process.on('SIGTERM', (signal) => void stop(signal));

// startLocalPipeline closes what it started when it fails; what fails after it is closed here.
const pipeline = await starting.catch((err: unknown) => (stopping ? new Promise<never>(() => undefined) : startFailed(err)));
if (stopping) await new Promise(() => undefined); // stop() exits once the pipeline is closed
const line = JSON.stringify(pipeline.info);
if (infoFile !== undefined) {
  await writeFile(infoFile, `${line}\n`).catch(async (err: NodeJS.ErrnoException) => {
    stopping = true;
    await pipeline.close();
    startFailed(new Error(`cannot write --info-file ${infoFile} (${err.code ?? err.message})`));
  });
}
process.stdout.write(`${line}\n`);
process.stderr.write('local pipeline ready; Ctrl-C stops it\n');
