/**
 * `sfs-pipeline redrive`: moves the ingest dead-letter queue's messages back to the ingest queue once the cause is
 * fixed (Scale back, the API key restored, the secrets set). Safe to repeat: a `failed` upload resumes, and one that
 * already has a task is not submitted again.
 */
import type { CliContext, RegisterCommand } from '../sfs-pipeline.js';
import { EXIT, jsonLine, printable } from './io.js';
import { resolveTarget, withTarget, type TargetOptions } from './target.js';

interface RedriveOptions extends TargetOptions {
  json?: boolean;
}

export const registerRedrive: RegisterCommand = (program, context) => {
  withTarget(
    program
      .command('redrive')
      .description("Move the ingest dead-letter queue's messages back to the ingest queue, after fixing why they failed")
      .option('--json', 'the report as one JSON document: {"moved": N} (and "taskHandle" on a stack)'),
  )
    .addHelpText(
      'after',
      `
On a stack this starts SQS's message move task (StartMessageMoveTask) from the dead-letter queue back to the queue
it came from; SQS moves the messages in the background. Locally the dead-letter file is moved at once; lines of
it that are not messages stay there and are named by line number (exit 4; --json: "unreadableLines").
See which uploads are waiting first: sfs-pipeline retry --status failed --dry-run (then redrive, or retry them).

Examples:
  $ sfs-pipeline redrive --local /tmp/pipeline.json
  $ sfs-pipeline redrive --stack ScaleSfsPipeline --json`,
    )
    .action(async (options: RedriveOptions) => runRedrive(options, context));
};

async function runRedrive(options: RedriveOptions, context: CliContext): Promise<void> {
  const target = await resolveTarget(options);
  try {
    const report = await target.redrive();
    const { out, err } = context.io;
    const unreadable = report.unreadableLines ?? [];
    if (unreadable.length > 0) {
      context.exitCode = EXIT.partial;
      const lines = `${unreadable.slice(0, 20).join(', ')}${unreadable.length > 20 ? `, … (${unreadable.length} in all)` : ''}`;
      const one = unreadable.length === 1;
      err.write(
        `sfs-pipeline: line${one ? '' : 's'} ${lines} of the dead-letter file ${printable(report.deadLetterFile ?? '')} ${one ? 'is not a message: it was' : 'are not messages: they were'} left there (look, then fix or delete ${one ? 'it' : 'them'})\n`,
      );
    }
    if (options.json) return void out.write(jsonLine(report));
    if (report.moved === 0) return void out.write(unreadable.length > 0 ? 'no message was moved\n' : `the dead-letter queue of the ${target.label} is empty: nothing to redrive\n`);
    const messages = `${report.moved} message${report.moved === 1 ? '' : 's'}`;
    if (report.taskHandle) out.write(`SQS is moving ${messages} back to the ingest queue (move task ${report.taskHandle})\n`);
    else out.write(`moved ${messages} back to the ingest queue\n`);
  } finally {
    target.close();
  }
}
