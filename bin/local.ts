/**
 * `npm run local`: the whole pipeline on 127.0.0.1 until SIGINT/SIGTERM. Prints one line of JSON (endpoints,
 * credentials, names) to stdout when ready, and writes it to --info-file PATH too; everything else goes to stderr.
 * Task events go to the info's eventsFile, and are also POSTed to --events-url URL when given.
 * The reconciler runs every --reconcile-every SECONDS (default: the stack's reconcileEveryMinutes) and on
 * `POST <controlUrl>/reconcile`.
 * A requested stop (SIGINT, SIGTERM, also during start-up) closes every server and function instance, exits 0.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startLocalPipeline } from '../local/pipeline.js';

const { values } = parseArgs({
  options: { 'info-file': { type: 'string' }, 'work-dir': { type: 'string' }, 'events-url': { type: 'string' }, 'reconcile-every': { type: 'string' } },
});
const reconcileEverySeconds = values['reconcile-every'] === undefined ? undefined : Number(values['reconcile-every']);
if (reconcileEverySeconds !== undefined && !(reconcileEverySeconds > 0)) {
  process.stderr.write(`--reconcile-every takes a positive number of seconds, not "${values['reconcile-every']}"\n`);
  process.exit(2);
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

const pipeline = await starting;
if (stopping) await new Promise(() => undefined); // stop() exits once the pipeline is closed
const line = JSON.stringify(pipeline.info);
if (values['info-file']) await writeFile(values['info-file'], `${line}\n`);
process.stdout.write(`${line}\n`);
process.stderr.write('local pipeline ready; Ctrl-C stops it\n');
