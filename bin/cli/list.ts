/** `sfs-pipeline list`: task records, newest first, a page at a time. */
import { InvalidArgumentError } from 'commander';
import { decodeCursor, InvalidCursorError, type InvalidTaskItem, type ListOrder, type ListQuery } from '../../lambdas/core/tasks/task-reader.js';
import { TASK_STATUSES, type TaskRecord, type TaskStatus } from '../../lambdas/core/tasks/task-record.js';
import type { RegisterCommand } from '../sfs-pipeline.js';
import { CliError, EXIT, formatTable, jsonLine, printable } from './io.js';
import { resolveTarget, withTarget, type TargetOptions } from './target.js';

/** The filters list and export share. */
export interface QueryOptions {
  status?: TaskStatus[];
  since?: string;
  project?: string;
  prefix?: string;
  cursor?: string;
}

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * `--since` of every command that takes it: an ISO 8601 time (2026-05-01, 2026-05-01T12:00:00Z) or a duration back
 * from now (30m, 24h, 7d, 2w). A date that does not exist (2026-02-30, hour 24) is refused, not rolled over.
 */
export function parseSince(text: string, now = new Date()): string {
  const given = text.trim();
  const duration = /^(\d{1,6})([mhdw])$/.exec(given);
  if (duration) return new Date(now.getTime() - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]).toISOString();
  const parts = ISO_TIME.exec(given);
  const time = parts ? Date.parse(given) : NaN;
  if (Number.isNaN(time)) throw new InvalidArgumentError(`${printable(JSON.stringify(text))} is neither an ISO time (2026-05-01T12:00:00Z) nor a duration back from now (30m, 24h, 7d, 2w)`);
  const [, year, month, day, hour = '0', minute = '0', second = '0'] = parts!;
  // Date.parse rolls an impossible day over (2026-02-30 is March 2): the fields must be a real calendar time.
  const calendar = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  if (calendar.getUTCMonth() !== Number(month) - 1 || calendar.getUTCDate() !== Number(day) || Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) {
    throw new InvalidArgumentError(`${printable(JSON.stringify(text))} is not a time that exists (check the day of the month and the hour)`);
  }
  return new Date(time).toISOString();
}

/** `--status`: statuses separated by commas (or the option repeated); `all` for every status. */
export function collectStatuses(text: string, previous: TaskStatus[] = []): TaskStatus[] {
  const given = text.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = given.filter((s) => s !== 'all' && !(TASK_STATUSES as readonly string[]).includes(s));
  if (unknown.length > 0 || given.length === 0) throw new InvalidArgumentError(`unknown status ${printable(JSON.stringify(unknown.join(',') || text))}: use ${TASK_STATUSES.join(', ')} or all`);
  if (given.includes('all')) return [...TASK_STATUSES];
  return [...new Set([...previous, ...(given as TaskStatus[])])];
}

/** A note on stderr for each item of a listing that is not a valid task record (it is left out). */
export function invalidItemNote(item: InvalidTaskItem, what: string): string {
  return `sfs-pipeline: ${printable(item.uniqueId)} (updated ${printable(item.updatedAt)}) is not a valid task record, so it is not ${what}: ${printable(item.problems)}; fix the item in the table or delete it\n`;
}

/**
 * The listing to run. With --cursor it is the cursor's own (a relative --since like 24h was fixed when the first
 * page was made); filters given with it must be the ones it was made with.
 */
export function listingQuery(options: QueryOptions, order: ListOrder, defaults: ListQuery = {}): ListQuery {
  const given: ListQuery = {
    statuses: options.status ?? defaults.statuses,
    since: options.since ?? defaults.since,
    ...(options.project !== undefined ? { project: options.project } : {}),
    ...(options.prefix !== undefined ? { keyPrefix: options.prefix } : {}),
  };
  if (options.cursor === undefined) return given;
  let fromCursor;
  try {
    fromCursor = decodeCursor(options.cursor);
  } catch (err) {
    throw cursorError(err);
  }
  const { query } = fromCursor;
  if (fromCursor.order !== order) throw new CliError(`this cursor continues a listing ${fromCursor.order} first (from ${order === 'newest' ? 'export' : 'list'}), not this one`, EXIT.usage);
  const differs = (name: string, mine: unknown, theirs: unknown) => {
    if (mine !== undefined && JSON.stringify(mine) !== JSON.stringify(theirs)) {
      throw new CliError(`--${name} differs from the listing this cursor continues (${JSON.stringify(theirs ?? null)}): repeat the first command's filters or leave them out`, EXIT.usage);
    }
  };
  differs('status', options.status && TASK_STATUSES.filter((s) => options.status!.includes(s)), query.statuses ?? [...TASK_STATUSES]);
  differs('project', options.project, query.project);
  differs('prefix', options.prefix, query.keyPrefix);
  return query;
}

/** A cursor the reader refused: a usage error with its reason. */
export function cursorError(err: unknown): unknown {
  return err instanceof InvalidCursorError ? new CliError(`--cursor: ${err.message}`, EXIT.usage) : err;
}

interface ListOptions extends TargetOptions, QueryOptions {
  limit: number;
  json?: boolean;
}

export const registerList: RegisterCommand = (program, context) => {
  withTarget(
    program
      .command('list')
      .description('List task records, newest first (by last update), a page at a time; every status unless --status says')
      .option('--status <statuses>', `only these statuses, comma-separated or repeated (${TASK_STATUSES.join(', ')}, all)`, collectStatuses)
      .option('--since <time>', 'only records updated since: an ISO time (2026-05-01T00:00:00Z) or a duration back from now (30m, 24h, 7d, 2w)', (text: string) => parseSince(text))
      .option('--project <project>', 'only tasks of this Scale project')
      .option('--prefix <key-prefix>', 'only objects whose key starts with this (e.g. drives/2026-05/)')
      .option('--limit <n>', 'records per page, 1 to 1000', parseLimit, 50)
      .option('--cursor <cursor>', 'continue a listing: the cursor printed under the previous page (it keeps that listing\'s filters and --since)')
      .option('--json', 'one JSON record per line on stdout; the next page\'s cursor on stderr as "next cursor: CURSOR"'),
  )
    .addHelpText(
      'after',
      `
Pages never miss or repeat a record: each page ends with the cursor of the next one (human output: a line
"next page: … --cursor CURSOR" on stdout; --json: stdout holds only records, and stderr has a line
"next cursor: CURSOR"). No such line: this was the last page. A record updated while you page moves to the
top of a fresh listing. Reads the byStatus index per status, never scans the table.

Examples:
  $ sfs-pipeline list --stack ScaleSfsPipeline --since 24h
  $ sfs-pipeline list --local local-info.json --status failed,create_failed --prefix drives/2026-05/ --json
  $ sfs-pipeline list --stack ScaleSfsPipeline --since 24h --cursor eyJ2IjoxLCJvcmRlciI6Im5ld2VzdCIs…`,
    )
    .action(async (options: ListOptions) => {
      const query = listingQuery(options, 'newest');
      const target = await resolveTarget(options);
      try {
        const page = await target.reader.listNewest(query, { limit: options.limit, cursor: options.cursor }).catch((err: unknown) => {
          throw cursorError(err);
        });
        const { io } = context;
        for (const item of page.invalid ?? []) io.err.write(invalidItemNote(item, 'listed'));
        if (page.invalid) context.exitCode = EXIT.partial;
        if (options.json) {
          io.out.write(page.items.map((record) => jsonLine(record)).join(''));
          if (page.cursor) io.err.write(`next cursor: ${page.cursor}\n`);
          return;
        }
        if (page.items.length === 0) {
          io.out.write(`no task records${describe(query)} in the ${target.label}\n`);
          return;
        }
        io.out.write(formatTable(['UPDATED', 'STATUS', 'OBJECT', 'PROJECT', 'TASK', 'WHY'], page.items.map(row)));
        if (page.cursor) io.out.write(`\nnext page: add --cursor ${page.cursor}\n`);
      } finally {
        target.close();
      }
    });
};

function parseLimit(text: string): number {
  // Digits only: Number() would also take 0x10, 1e3 or " 7 ".
  const n = /^\d{1,4}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 1000)) throw new InvalidArgumentError('must be a whole number from 1 to 1000');
  return n;
}

function row(record: TaskRecord): Array<string | undefined> {
  const why = record.reason ?? record.scaleError?.message ?? record.lastError;
  // formatTable escapes every cell's control characters.
  return [record.updatedAt, record.status, `s3://${record.bucket}/${record.key}`, record.project, record.taskId, why && (why.length > 80 ? `${why.slice(0, 79)}…` : why)];
}

function describe(query: ListQuery): string {
  const parts = [
    query.statuses?.length ? `in ${query.statuses.join(', ')}` : undefined,
    query.since ? `updated since ${printable(query.since)}` : undefined,
    query.project !== undefined ? `of project ${printable(JSON.stringify(query.project))}` : undefined,
    query.keyPrefix !== undefined ? `under ${printable(JSON.stringify(query.keyPrefix))}` : undefined,
  ].filter(Boolean);
  return parts.length > 0 ? ` ${parts.join(' ')}` : '';
}
