/**
 * Naming uploads on the command line and showing their records: shared by the commands that act on one upload
 * (status, retry, cancel).
 */
import type { TaskRecord } from '../../lambdas/core/tasks/task-record.js';
import { CliError, EXIT, jsonLine, printable } from './io.js';
import type { PipelineTarget } from './target.js';

/** Which records a selector names: every version of one object, one upload, or the upload of one Scale task. */
export type Selector = { kind: 'key'; bucket: string; key: string } | { kind: 'uniqueId'; uniqueId: string } | { kind: 'taskId'; taskId: string };

/** How a selector is written, for help texts. */
export const SELECTOR_HELP = 's3://BUCKET/KEY (every upload of that object), a uniqueId (sfs- and 40 hex digits) or a Scale task id';

const UNIQUE_ID = /^sfs-[0-9a-f]{40}$/;
/** Scale's task ids are 24 hex digits; any id-like token is accepted, so a change of format does not lock anyone out. */
const TASK_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** Reads a selector; a bucket other than the target's scenes bucket, or text that is none of the three, is a usage error. */
export function parseSelector(text: string, target: Pick<PipelineTarget, 'scenesBucket' | 'label'>): Selector {
  const given = text.trim();
  if (given.startsWith('s3://')) {
    const rest = given.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const [bucket, key] = slash < 0 ? [rest, ''] : [rest.slice(0, slash), rest.slice(slash + 1)];
    if (!bucket || !key) throw new CliError(`${quoted(given)} names no object: write s3://BUCKET/KEY, e.g. s3://${target.scenesBucket}/drive/scene.sfs`, EXIT.usage);
    if (bucket !== target.scenesBucket) {
      throw new CliError(`s3://${printable(bucket)} is not the scenes bucket of the ${target.label}: its uploads are in s3://${target.scenesBucket}/ (check --stack / --local)`, EXIT.usage);
    }
    return { kind: 'key', bucket, key };
  }
  if (UNIQUE_ID.test(given)) return { kind: 'uniqueId', uniqueId: given };
  if (given.startsWith('sfs-')) throw new CliError(`${quoted(given)} is not a uniqueId: those are sfs- followed by 40 lowercase hex digits`, EXIT.usage);
  if (TASK_ID.test(given)) return { kind: 'taskId', taskId: given };
  throw new CliError(`${quoted(given)} is not an upload: give ${SELECTOR_HELP}`, EXIT.usage);
}

/** The records a selector names, newest first (an object's every version; one record otherwise); none: []. */
export async function findRecords(selector: Selector, target: Pick<PipelineTarget, 'reader'>): Promise<TaskRecord[]> {
  switch (selector.kind) {
    case 'key':
      return target.reader.findByKey(selector.bucket, selector.key);
    case 'uniqueId': {
      const record = await target.reader.get(selector.uniqueId);
      return record ? [record] : [];
    }
    case 'taskId': {
      const record = await target.reader.getByTaskId(selector.taskId);
      return record ? [record] : [];
    }
  }
}

/** What a selector is, in words, for "nothing found" messages (control characters of a key escaped). */
export function describeSelector(selector: Selector): string {
  if (selector.kind === 'key') return `s3://${printable(selector.bucket)}/${printable(selector.key)}`;
  return selector.kind === 'uniqueId' ? `uniqueId ${selector.uniqueId}` : `Scale task ${selector.taskId}`;
}

/** The user-facing message for a selector nothing matched (exit 3). */
export function notFound(selector: Selector, target: Pick<PipelineTarget, 'label'>): CliError {
  const hint =
    selector.kind === 'key'
      ? 'check the key (exact, case-sensitive; the upload may not have been processed yet, or its name does not end in a scene suffix)'
      : 'check the id and that it belongs to this pipeline';
  return new CliError(`no task record for ${describeSelector(selector)} in the ${target.label}: ${hint}`, EXIT.notFound);
}

/**
 * Records for people (a block per record, newest first) or, with `json`, one record per line as stored. Text
 * from the input (reasons, errors, keys) is shown with control characters escaped: a hostile key cannot drive
 * the terminal.
 */
export function formatRecords(records: TaskRecord[], options: { json?: boolean } = {}): string {
  if (options.json) return records.map((record) => jsonLine(record)).join('');
  return records.map(formatRecord).join('\n');
}

function formatRecord(record: TaskRecord): string {
  const rows: Array<[string, string | number | undefined]> = [
    ['uniqueId', record.uniqueId],
    ['version', record.versionId],
    ['status', record.status],
    ['reason', record.reason],
    ['scale error', record.scaleError && `${record.scaleError.status ?? ''} ${record.scaleError.message}`.trim()],
    ['last error', record.lastError],
    ['cancel error', record.cancelError && `${record.cancelError.status ?? ''} ${record.cancelError.message}`.trim()],
    ['cancel owed', record.cancelOwed],
    ['attempts', record.attempts],
    ['project', record.project],
    ['task', record.taskId],
    ['earlier tasks', record.previousTaskIds?.join(', ')],
    ['created', record.createdAt],
    ['updated', record.updatedAt],
    ['submitted', record.submittedAt],
    ['completed', record.completedAt],
    ['response', responseWhere(record)],
  ];
  const width = Math.max(...rows.map(([label]) => label.length), 'result files'.length);
  const lines = [`s3://${printable(record.bucket)}/${printable(record.key)}`];
  for (const [label, value] of rows) if (value !== undefined && value !== '') lines.push(`  ${label.padEnd(width)}  ${printable(String(value))}`);
  const files = record.resultFiles ?? [];
  files.forEach((file, i) => lines.push(`  ${(i === 0 ? 'result files' : '').padEnd(width)}  ${printable(resultFile(file))}`));
  return `${lines.join('\n')}\n`;
}

/** Where Scale's response is: in the record, or in the archived callback body (its `response` field). */
export function responseWhere(record: TaskRecord): string | undefined {
  if (record.responseJson !== undefined) return `inline (${Buffer.byteLength(record.responseJson, 'utf8')} bytes)`;
  if (record.responseRef) return `s3://${record.responseRef.bucket}/${record.responseRef.key} (archived callback body, field "response")`;
  return undefined;
}

function resultFile(file: NonNullable<TaskRecord['resultFiles']>[number]): string {
  if (file.error !== undefined || !file.bucket || !file.key) return `${file.sourceUrl}  not copied: ${file.error ?? 'no location recorded'}`;
  const facts = [file.bytes !== undefined ? `${file.bytes} bytes` : undefined, file.sha256 ? `sha256 ${file.sha256}` : undefined].filter(Boolean).join(', ');
  return `s3://${file.bucket}/${file.key}${facts ? `  (${facts})` : ''}`;
}

/** A selector as given, cut to a phrase, quoted, control characters escaped. */
function quoted(text: string): string {
  return printable(JSON.stringify(text.length > 80 ? `${text.slice(0, 79)}…` : text));
}
