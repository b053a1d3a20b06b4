/**
 * `npm run local`: the whole pipeline on 127.0.0.1 until SIGINT/SIGTERM. Prints one line of JSON (endpoints,
 * credentials, names) to stdout when ready, and writes it to --info-file PATH too; everything else goes to stderr.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startLocalPipeline } from '../local/pipeline.js';

const { values } = parseArgs({ options: { 'info-file': { type: 'string' }, 'work-dir': { type: 'string' } } });

const pipeline = await startLocalPipeline({ workDir: values['work-dir'] });
const line = JSON.stringify(pipeline.info);
if (values['info-file']) await writeFile(values['info-file'], `${line}\n`);
process.stdout.write(`${line}\n`);
process.stderr.write('local pipeline ready; Ctrl-C stops it\n');

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`${signal}: stopping every server\n`);
  await pipeline.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
