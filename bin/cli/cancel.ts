/**
 * `sfs-pipeline cancel`: cancels uploads' pending tasks at Scale and records it, exactly as a delete of the object
 * does (cancelOpenTask): Scale cancels only tasks whose work has not started, and its refusal is kept on the record.
 */
import { CANCELED_BY_OPERATOR, cancelOpenTask, type CancelOutcome } from '../../lambdas/core/scenes/cancel-on-delete.js';
import type { TaskRecord } from '../../lambdas/core/tasks/task-record.js';
import type { CliContext, RegisterCommand } from '../sfs-pipeline.js';
import { EXIT, formatTable, jsonLine, printable } from './io.js';
import { SELECTOR_HELP } from './records.js';
import { selectUploads } from './retry.js';
import { resolveTarget, withTarget, type TargetOptions } from './target.js';

interface CancelOptions extends TargetOptions {
  json?: boolean;
}

type Outcome = CancelOutcome | { kind: 'skipped' | 'failed'; uniqueId: string; reason: string };

export const registerCancel: RegisterCommand = (program, context) => {
  withTarget(
    program
      .command('cancel')
      .description("Cancel uploads' pending Scale tasks (work not started) and record them as canceled")
      .argument('<selector...>', SELECTOR_HELP)
      .option('--json', 'one JSON document per record'),
  )
    .addHelpText(
      'after',
      `
Only a pending task can be canceled (Scale's rule). Uploads in any other status are reported and skipped; a task
Scale refuses to cancel (it started or finished meanwhile) keeps Scale's answer on its record (cancelError).
Exit 3: nothing matched; exit 4: some records were skipped, refused or failed.

Examples:
  $ sfs-pipeline cancel --local /tmp/pipeline.json s3://scenes/drive/scene.sfs
  $ sfs-pipeline cancel --stack ScaleSfsPipeline 5f2b9c0e1d4a7b3c8e6f0a12 --json`,
    )
    .action(async (selectors: string[], options: CancelOptions) => runCancel(selectors, options, context));
};

async function runCancel(selectorTexts: string[], options: CancelOptions, context: CliContext): Promise<void> {
  const target = await resolveTarget(options);
  try {
    const selected = await selectUploads(selectorTexts, target, context);
    const outcomes: Array<{ record: TaskRecord; outcome: Outcome }> = [];
    for (const record of selected.records) {
      const { uniqueId, status, taskId } = record;
      if (status !== 'pending' || !taskId) {
        outcomes.push({ record, outcome: { kind: 'skipped', uniqueId, reason: whyNot(record) } });
        continue;
      }
      try {
        const outcome = await cancelOpenTask(uniqueId, taskId, CANCELED_BY_OPERATOR, { store: target.store, scale: await target.scale() });
        outcomes.push({ record, outcome });
      } catch (err) {
        // Scale unreachable or the key refused: nothing was recorded; the others are still tried.
        outcomes.push({ record, outcome: { kind: 'failed', uniqueId, reason: (err as Error).message } });
      }
    }
    report(outcomes, options, context);
    if (selected.incomplete || outcomes.some(({ outcome }) => outcome.kind !== 'canceled' && outcome.kind !== 'already_newer')) context.exitCode = EXIT.partial;
  } finally {
    target.close();
  }
}

function whyNot(record: TaskRecord): string {
  switch (record.status) {
    case 'pending':
      return 'it is pending but names no task';
    case 'submitting':
      return 'it has no task yet (being submitted): cancel it once it is pending, or delete the object (a delete before the task exists rejects the upload)';
    case 'canceled':
      return record.taskId ? `its task ${record.taskId} is already canceled` : 'it is already canceled';
    default:
      return `it is ${record.status}: Scale cancels only pending tasks`;
  }
}

const WORDS: Record<Outcome['kind'], string> = { canceled: 'canceled', already_newer: 'canceled', cancel_refused: 'refused', skipped: 'skipped', failed: 'failed' };

function detail(outcome: Outcome): string {
  switch (outcome.kind) {
    case 'canceled':
      return 'canceled at Scale and recorded';
    case 'already_newer':
      return 'canceled at Scale; the record keeps a newer state Scale reported';
    case 'cancel_refused':
      return `Scale refused (${outcome.scaleStatus ?? '?'}): ${outcome.scaleMessage}; kept on the record as cancelError`;
    default:
      return outcome.reason;
  }
}

function report(outcomes: Array<{ record: TaskRecord; outcome: Outcome }>, options: CancelOptions, context: CliContext): void {
  const { out } = context.io;
  if (options.json) {
    for (const { record, outcome } of outcomes) {
      const extra = outcome.kind === 'cancel_refused' ? { scaleStatus: outcome.scaleStatus, scaleMessage: outcome.scaleMessage } : 'reason' in outcome ? { reason: outcome.reason } : {};
      out.write(jsonLine({ uniqueId: record.uniqueId, bucket: record.bucket, key: record.key, versionId: record.versionId, taskId: record.taskId, status: record.status, outcome: outcome.kind, ...extra }));
    }
    return;
  }
  const rows = outcomes.map(({ record, outcome }) => [`s3://${printable(record.bucket)}/${printable(record.key)}`, record.taskId, record.status, WORDS[outcome.kind], printable(detail(outcome))]);
  out.write(formatTable(['UPLOAD', 'TASK', 'STATUS', 'CANCEL', 'DETAIL'], rows));
}
