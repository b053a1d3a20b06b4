/**
 * `sfs-pipeline retry`: after the cause is fixed (a project created, a key restored, missing frames uploaded),
 * sends uploads through the ingest queue again, as S3 did. The decisions are the core's (lambdas/core/tasks/retry.ts);
 * this module selects the records, sends, and reports.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { InvalidArgumentError } from 'commander';
import { isRetryableStatus, RETRYABLE_STATUSES, retryUpload, type RetryOutcome } from '../../lambdas/core/tasks/retry.js';
import type { TaskRecord } from '../../lambdas/core/tasks/task-record.js';
import type { RetryableStatus } from '../../lambdas/core/tasks/task-store.js';
import type { CliContext, RegisterCommand } from '../sfs-pipeline.js';
import { CliError, EXIT, formatTable, jsonLine, printable } from './io.js';
import { parseSince } from './list.js';
import { findRecords, notFound, parseSelector, SELECTOR_HELP } from './records.js';
import { resolveTarget, withTarget, type PipelineTarget, type TargetOptions } from './target.js';

interface RetryOptions extends TargetOptions {
  status?: RetryableStatus[];
  since?: string;
  limit?: number;
  dryRun?: boolean;
  json?: boolean;
}

export const registerRetry: RegisterCommand = (program, context) => {
  withTarget(
    program
      .command('retry')
      .description('Submit uploads again through the ingest queue, as S3 did, once the cause is fixed: never a second Scale task for one upload')
      .argument('[selector...]', SELECTOR_HELP)
      .option('--status <status>', `only records in these statuses (comma list or repeated): ${RETRYABLE_STATUSES.join(', ')}; without a selector, every record in them`, collectStatuses)
      .option('--since <time>', 'without a selector: records updated since then, a duration back from now (30m, 24h, 7d, 2w) or an ISO time (default: 24h)')
      .option('--limit <n>', 'without a selector: at most this many records, oldest first (default: 100)', positiveInteger)
      .option('--dry-run', 'list what would be retried, change nothing')
      .option('--json', 'one JSON document per record'),
  )
    .addHelpText(
      'after',
      `
Statuses and how they are retried:
  create_failed  Scale refused the task (e.g. an unknown project): fix it at Scale, then retry
  failed         every delivery failed (Scale down, a revoked key); its message is also in the dead-letter queue (redrive)
  rejected       never sent (bad scene, missing frames): fix the objects, then retry (a deleted object is rejected again)
  error          Scale ended the task in error: a new task, the old one kept; only with the deployed routing.clearUniqueIdOnError (on by default)
Anything else (pending, completed, canceled, submitting) is reported and skipped. Exit 3: nothing matched;
exit 4: some records were skipped or failed.

Examples:
  $ sfs-pipeline retry --local /tmp/pipeline.json s3://scenes/drive/frames.frames.json
  $ sfs-pipeline retry --stack ScaleSfsPipeline --status create_failed --since 24h --dry-run
  $ sfs-pipeline retry --stack ScaleSfsPipeline --status failed,error --limit 500 --json`,
    )
    .action(async (selectors: string[], options: RetryOptions) => runRetry(selectors, options, context));
};

async function runRetry(selectorTexts: string[], options: RetryOptions, context: CliContext): Promise<void> {
  if (selectorTexts.length === 0 && !options.status) {
    throw new CliError(`say which uploads to retry: ${SELECTOR_HELP}, or --status ${RETRYABLE_STATUSES.join('|')} (with --since) for every record in a status`, EXIT.usage);
  }
  if (selectorTexts.length > 0 && (options.since !== undefined || options.limit !== undefined)) {
    throw new CliError('--since and --limit choose records by status when no upload is named: give either selectors or --status with --since/--limit', EXIT.usage);
  }
  const since = selectorTexts.length === 0 ? sinceTime(options.since ?? '24h') : undefined;
  const target = await resolveTarget(options);
  try {
    const statuses = options.status ?? RETRYABLE_STATUSES;
    const selected = since === undefined ? await selectUploads(selectorTexts, target, context) : await recordsInStatuses(statuses, since, options.limit ?? 100, target, context);
    if (selected.records.length === 0) {
      if (since !== undefined) throw new CliError(`no record in ${statuses.join(', ')} updated since ${since} in the ${target.label}: widen --since or check --status`, EXIT.notFound);
      return;
    }
    const { clearUniqueIdOnError } = target.routing;
    const send = async (notification: string) => void (await target.sqs.send(new SendMessageCommand({ QueueUrl: target.ingestQueueUrl, MessageBody: notification })));
    const outcomes: Array<{ record: TaskRecord; outcome: RetryOutcome }> = [];
    for (const record of selected.records) {
      outcomes.push({ record, outcome: await retryUpload(record, { statuses, clearUniqueIdOnError, dryRun: options.dryRun }, { store: target.store, send }) });
    }
    report(outcomes, options, context);
    if (selected.incomplete || outcomes.some(({ outcome }) => outcome.kind === 'skipped' || outcome.kind === 'failed')) context.exitCode = EXIT.partial;
  } finally {
    target.close();
  }
}

/**
 * The records the selectors name, each once, in the order given. A selector that names nothing is reported on
 * stderr (and makes the run partial); none matching at all is exit 3. Every selector is read before anything runs.
 */
export async function selectUploads(texts: string[], target: PipelineTarget, context: CliContext): Promise<{ records: TaskRecord[]; incomplete: boolean }> {
  const selectors = texts.map((text) => parseSelector(text, target));
  const records = new Map<string, TaskRecord>();
  const unmatched: CliError[] = [];
  for (const selector of selectors) {
    const found = await findRecords(selector, target);
    if (found.length === 0) unmatched.push(notFound(selector, target));
    for (const record of found) if (!records.has(record.uniqueId)) records.set(record.uniqueId, record);
  }
  if (records.size === 0) {
    if (unmatched.length === 1) throw unmatched[0]!;
    throw new CliError(`nothing matched: ${unmatched.map((err) => err.message).join('; ')}`, EXIT.notFound);
  }
  for (const err of unmatched) context.io.err.write(`sfs-pipeline: ${err.message}\n`);
  return { records: [...records.values()], incomplete: unmatched.length > 0 };
}

/** Every record in the statuses updated since `since`, oldest first per status, at most `limit` in all. */
async function recordsInStatuses(statuses: readonly RetryableStatus[], since: string, limit: number, target: PipelineTarget, context: CliContext) {
  const records: TaskRecord[] = [];
  let more = false;
  for (const status of statuses) {
    let cursor: string | undefined;
    do {
      if (records.length >= limit) {
        more = true;
        break;
      }
      const page = await target.reader.listByStatus(status, since, { limit: Math.min(100, limit - records.length), cursor });
      records.push(...page.items);
      cursor = page.cursor;
    } while (cursor);
  }
  if (more) context.io.err.write(`sfs-pipeline: more records match than --limit ${limit}: only the first ${limit} were taken; run again (retried ones leave their status) or raise --limit\n`);
  return { records, incomplete: false };
}

const WORDS: Record<RetryOutcome['kind'], string> = { retried: 'retried', would_retry: 'would retry', skipped: 'skipped', failed: 'failed' };

function report(outcomes: Array<{ record: TaskRecord; outcome: RetryOutcome }>, options: RetryOptions, context: CliContext): void {
  const { out } = context.io;
  const detail = (outcome: RetryOutcome) => ('reason' in outcome ? outcome.reason : outcome.kind === 'retried' ? 'sent to the ingest queue: create-task submits it' : `would be sent to the ingest queue (${outcome.from})`);
  if (options.json) {
    for (const { record, outcome } of outcomes) {
      out.write(jsonLine({ uniqueId: record.uniqueId, bucket: record.bucket, key: record.key, versionId: record.versionId, status: record.status, outcome: outcome.kind, ...('reason' in outcome ? { reason: outcome.reason } : {}) }));
    }
    return;
  }
  const rows = outcomes.map(({ record, outcome }) => [`s3://${printable(record.bucket)}/${printable(record.key)}`, record.versionId, record.status, WORDS[outcome.kind], printable(detail(outcome))]);
  out.write(formatTable(['UPLOAD', 'VERSION', 'STATUS', 'RETRY', 'DETAIL'], rows));
  const counts = Object.entries(WORDS).map(([kind, word]) => [word, outcomes.filter(({ outcome }) => outcome.kind === kind).length] as const).filter(([, n]) => n > 0);
  out.write(`${counts.map(([word, n]) => `${n} ${word}`).join(', ')}${options.dryRun ? ' (dry run: nothing changed)' : ''}\n`);
}

function collectStatuses(value: string, previous: RetryableStatus[] = []): RetryableStatus[] {
  const given = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const wrong = given.filter((s) => !isRetryableStatus(s));
  if (wrong.length > 0 || given.length === 0) throw new InvalidArgumentError(`${JSON.stringify(value)}: retry takes ${RETRYABLE_STATUSES.join(', ')}`);
  return [...new Set([...previous, ...(given as RetryableStatus[])])];
}

function positiveInteger(value: string): number {
  if (!/^[1-9]\d{0,6}$/.test(value)) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a whole number from 1 to 9999999`);
  return Number(value);
}

/** --since as list and export take it (30m, 24h, 7d, 2w, or an ISO time); a bad one is a usage error. */
export function sinceTime(text: string, now = new Date()): string {
  try {
    return parseSince(text, now);
  } catch (err) {
    throw new CliError(`--since: ${(err as Error).message}`, EXIT.usage);
  }
}
