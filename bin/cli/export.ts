/** `sfs-pipeline export`: labels out for training, one JSON line per task, oldest first, resumable. */
import { GetObjectCommand, NoSuchKey, type S3Client } from '@aws-sdk/client-s3';
import { Presets, SingleBar } from 'cli-progress';
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
import { checkAgainst } from '../../lambdas/core/shared/validation.js';
import { exportLineOf, ExportLineSchema, exportLineText, type ArchivedResponse } from '../../lambdas/core/tasks/export-line.js';
import type { InvalidTaskItem, ListQuery } from '../../lambdas/core/tasks/task-reader.js';
import { TASK_STATUSES } from '../../lambdas/core/tasks/task-record.js';
import type { CliContext, RegisterCommand } from '../sfs-pipeline.js';
import { CliError, EXIT, printable, shellCommand, terminalSafeJson, type CliIo } from './io.js';
import { collectStatuses, cursorError, invalidItemNote, listingQuery, parseSince, type QueryOptions } from './list.js';
import { resolveTarget, withTarget, type PipelineTarget, type TargetOptions } from './target.js';

interface ExportOptions extends TargetOptions, QueryOptions {
  out?: string;
  force?: boolean;
}

export const registerExport: RegisterCommand = (program, context) => {
  withTarget(
    program
      .command('export')
      .description('Export tasks as JSON Lines (one line per task, oldest first): source-ref, ids, status, times, Scale\'s response and result files')
      .option('--since <time>', 'tasks updated since: an ISO time (2026-05-01T00:00:00Z) or a duration back from now (24h, 7d, 2w); required unless --cursor', (text: string) => parseSince(text))
      .option('--status <statuses>', `statuses to export, comma-separated or repeated (${TASK_STATUSES.join(', ')}, all); default completed`, collectStatuses)
      .option('--project <project>', 'only tasks of this Scale project')
      .option('--prefix <key-prefix>', 'only objects whose key starts with this')
      .option('--out <file>', 'write the lines to this file (default stdout); with --cursor, appended to it; an existing file only with --force')
      .option('--force', 'replace an existing --out (without --cursor)')
      .option('--cursor <cursor>', 'resume an export that stopped: the cursor it printed (same filters; --out is appended to)'),
  )
    .addHelpText(
      'after',
      `
Each line validates against ExportLineSchema (lambdas/core/tasks/export-line.ts): schemaVersion, source-ref
(s3://bucket/key), versionId, uniqueId, taskId, status, project, batch, createdAt/updatedAt/submittedAt/
completedAt, response (Scale's, parsed; large ones are read from the archived callback), responseSource,
responseError, resultFiles [{sourceUrl, s3Uri, bytes, sha256 | error}].
If the export stops (Ctrl-C, SIGTERM, an AWS error), it prints "resume with: … --cursor CURSOR" on stderr (the
arguments quoted for a POSIX shell): run that to append the rest, each task exactly once. A task that changes
while the export runs (a recall, an audit) gets a second, later line with its new state. A response that cannot
be read or written (missing, not JSON, nested over 1000 levels) is a line with a responseError instead; an item
of the table that is not a valid task record gets no line but a note on stderr naming its uniqueId. Either way
the export goes on, and ends with exit 4. A non-empty --out is only replaced with --force (or appended to with
--cursor). When the reader of stdout goes away (export … | head), it stops quietly with exit 141.

Examples:
  $ sfs-pipeline export --stack ScaleSfsPipeline --since 7d --out labels.jsonl
  $ sfs-pipeline export --local local-info.json --since 2026-05-01 --status completed,error --prefix drives/
  $ sfs-pipeline export --stack ScaleSfsPipeline --cursor eyJ2IjoxLCJvcmRlciI6Im9sZGVzdCIs… --out labels.jsonl`,
    )
    .action(async (options: ExportOptions) => {
      if (options.out !== undefined && options.out.trim() === '') throw new CliError('--out is empty: give the file to write, or leave --out out to write to stdout', EXIT.usage);
      if (options.since === undefined && options.cursor === undefined) {
        throw new CliError('say which tasks: --since TIME (e.g. --since 7d or --since 2026-05-01), or --cursor CURSOR to resume an export', EXIT.usage);
      }
      const query = listingQuery(options, 'oldest', { statuses: ['completed'] });
      if (options.out !== undefined && options.cursor === undefined && !options.force) await refuseToReplace(options.out);
      const target = await resolveTarget(options);
      try {
        await runExport(target, query, options, context);
      } finally {
        target.close();
      }
    });
};

/** Where lines go: a file (or stdout), written with backpressure; `written` runs once a line is handed over for good. */
interface Sink {
  write(text: string, written: () => void): Promise<void>;
  close(): Promise<void>;
}

/** Refuses to truncate a file that has lines in it (an earlier export): --force replaces it, --cursor appends. */
async function refuseToReplace(out: string): Promise<void> {
  const info = await stat(out).catch(() => undefined);
  if (info?.isDirectory()) throw new CliError(`--out ${printable(out)} is a folder; give the path of the file to write`, EXIT.usage);
  // Only a regular file with something in it: /dev/stdout, a FIFO or an empty file lose nothing.
  if (info?.isFile() && info.size > 0) {
    throw new CliError(`--out ${printable(out)} already exists (${info.size} bytes): add --force to replace it, or --cursor CURSOR to append the rest of an export that stopped`, EXIT.usage);
  }
}

/** The signals that stop an export with a resume line: Ctrl-C, and a polite kill (a scheduler's timeout, docker stop). */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

async function runExport(target: PipelineTarget, query: ListQuery, options: ExportOptions, context: CliContext): Promise<void> {
  const { io } = context;
  const sink = options.out ? await fileSink(options.out, options.cursor !== undefined) : outSink(io.out);
  let interrupted: string | undefined;
  const handlers = STOP_SIGNALS.map((signal) => [signal, () => void (interrupted ??= signal === 'SIGINT' ? 'interrupted' : `stopped by ${signal}`)] as const);
  for (const [signal, handler] of handlers) process.once(signal, handler);
  let bar: SingleBar | undefined;
  // The cursor after the last line that reached the output: where a resumed export starts.
  let resumeAt = options.cursor;
  let lines = 0;
  let unreadable = 0;
  let invalid = 0;
  // An item that is no task record: named on stderr, left out, and the export goes on.
  const skip = (item: InvalidTaskItem, what = 'exported') => {
    invalid++;
    io.err.write(invalidItemNote(item, what));
  };
  try {
    if (io.isTTY) bar = progressBar(io, await target.reader.count(query, { cursor: options.cursor }).catch((err: unknown) => Promise.reject(cursorError(err))));
    for await (const { record, cursor } of target.reader.iterate('oldest', query, { cursor: options.cursor, onInvalid: (item) => (skip(item), bar?.increment()) })) {
      const checked = checkAgainst(ExportLineSchema, await exportLineOf(record, (ref) => readArchivedResponse(target.s3, ref)));
      if (!checked.ok) {
        skip({ uniqueId: record.uniqueId, updatedAt: record.updatedAt, problems: checked.problems.slice(0, 5).join('; ') }, 'exported (its line would not match the export schema)');
      } else {
        // A response too deep to serialize is written as a line with a responseError, never a crash.
        const { text, line } = exportLineText(checked.value);
        await sink.write(`${terminalSafeJson(text)}\n`, () => {
          resumeAt = cursor;
          lines++;
        });
        if (line.responseError !== undefined) unreadable++;
      }
      bar?.increment();
      if (interrupted) break;
    }
    await sink.close();
  } catch (err) {
    await sink.close().catch(() => undefined);
    bar?.stop();
    throw stopped(cursorError(err), lines, resumeAt, options);
  } finally {
    for (const [signal, handler] of handlers) process.removeListener(signal, handler);
  }
  bar?.stop();
  if (interrupted) throw stopped(new Error(interrupted), lines, resumeAt, options);
  io.err.write(`exported ${lines} task${lines === 1 ? '' : 's'}${options.out ? ` to ${printable(options.out)}` : ''}\n`);
  if (unreadable > 0) io.err.write(`${unreadable} line(s) have a responseError: their response could not be read or written (see the lines)\n`);
  if (invalid > 0) io.err.write(`${invalid} item(s) of the table were not exported: they are not valid task records (named above)\n`);
  if (unreadable > 0 || invalid > 0) context.exitCode = EXIT.partial;
}

/** Scale's response from the archived callback body; a missing or unreadable body is a line's responseError. */
async function readArchivedResponse(s3: S3Client, ref: { bucket: string; key: string }): Promise<ArchivedResponse> {
  let text: string;
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
    text = await object.Body!.transformToString('utf8');
  } catch (err) {
    if (err instanceof NoSuchKey || (err as Error).name === 'NoSuchKey') return { error: `the archived callback s3://${ref.bucket}/${ref.key} does not exist` };
    throw new Error(`cannot read the archived callback s3://${ref.bucket}/${ref.key}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const body = JSON.parse(text) as { response?: unknown };
    if (body === null || typeof body !== 'object' || !('response' in body)) return { error: `the archived callback s3://${ref.bucket}/${ref.key} has no response field` };
    return { response: body.response };
  } catch {
    return { error: `the archived callback s3://${ref.bucket}/${ref.key} is not JSON` };
  }
}

/**
 * The error to end with when the export stops early: how far it got, and the command that appends the rest, each
 * argument quoted for a POSIX shell (a path may hold spaces, quotes or ;).
 */
function stopped(err: unknown, lines: number, resumeAt: string | undefined, options: ExportOptions): unknown {
  if (err instanceof CliError && err.exitCode === EXIT.usage) return err;
  const why = (err as Error).message ?? String(err);
  if (resumeAt === undefined) return new CliError(`export stopped before writing anything (${why}); run the same command again`);
  const where = options.stack ? ['--stack', options.stack, ...(options.region ? ['--region', options.region] : [])] : ['--local', options.local ?? ''];
  const command = shellCommand(['sfs-pipeline', 'export', ...where, '--cursor', resumeAt, ...(options.out ? ['--out', options.out] : [])]);
  return new CliError(`export stopped after ${lines} line(s) (${why}); resume with: ${command}${options.out ? '' : ' >> FILE'}`);
}

async function fileSink(path: string, append: boolean): Promise<Sink> {
  const stream = createWriteStream(path, { flags: append ? 'a' : 'w' });
  try {
    await once(stream, 'open');
  } catch (err) {
    throw new CliError(`cannot write ${printable(path)}: ${(err as Error).message}`);
  }
  let failure: Error | undefined;
  stream.on('error', (err) => void (failure ??= err));
  return {
    async write(text, written) {
      if (failure) throw failure;
      // Counted only once the file has the line: a failed write leaves the cursor before it.
      if (!stream.write(text, (err) => void (err ? (failure ??= err) : written()))) await once(stream, 'drain');
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (stream.closed) return failure ? reject(failure) : resolve();
        stream.end(() => (failure ? reject(failure) : resolve()));
      }),
  };
}

function outSink(out: CliIo['out']): Sink {
  const stream = out as CliIo['out'] & { once?: (event: 'drain', listener: () => void) => unknown };
  return {
    async write(text, written) {
      const accepted = stream.write(text);
      written();
      if (accepted === false && typeof stream.once === 'function') await new Promise<void>((resolve) => stream.once!('drain', resolve));
    },
    close: async () => undefined,
  };
}

function progressBar(io: CliIo, total: number): SingleBar {
  // cli-progress draws with escape sequences written to its stream; io.err is where a terminal's stderr is.
  const stream = { isTTY: true, columns: process.stderr.columns, write: (text: string) => io.err.write(text) };
  const bar = new SingleBar({ stream: stream as unknown as NodeJS.WritableStream, format: 'exporting [{bar}] {value}/{total} tasks | {eta_formatted} left', hideCursor: true }, Presets.shades_classic);
  bar.start(total, 0);
  return bar;
}
