/**
 * `npm run local`: the whole pipeline on 127.0.0.1 until SIGINT/SIGTERM. Prints one line of JSON (endpoints,
 * credentials, names) to stdout when ready, and writes it to --info-file PATH too; everything else goes to stderr.
 * A requested stop (SIGINT, SIGTERM, also during start-up) closes every server and function instance, removes the
 * temporary work folder (a --work-dir is kept) and exits 0.
 */
import { writeFile } from 'node:fs/promises';
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

const pipeline = await starting.catch((err: unknown) => {
  // cdk.json's settings are the user's to fix: their message, not a stack trace.
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
if (stopping) await new Promise(() => undefined); // stop() exits once the pipeline is closed
const line = JSON.stringify(pipeline.info);
if (values['info-file']) await writeFile(values['info-file'], `${line}\n`);
process.stdout.write(`${line}\n`);
process.stderr.write('local pipeline ready; Ctrl-C stops it\n');
