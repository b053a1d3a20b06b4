/**
 * What every subcommand writes to and how it ends: output streams (injectable, so tests run the CLI in-process),
 * the exit codes scripts can rely on, the one error type that carries a message for the user, and the escaping
 * that keeps text from files, records and command lines from driving the terminal.
 */
export interface CliIo {
  out: { write(text: string): unknown };
  err: { write(text: string): unknown };
  /** Progress bars and colours only on a terminal. */
  isTTY: boolean;
}

/** Exit codes, stable for scripts. */
export const EXIT = {
  ok: 0,
  /** Something failed (an AWS or Scale error, a rejected scene, a task that ended badly). */
  failure: 1,
  /** The command line was wrong (unknown option, missing argument, bad value). */
  usage: 2,
  /** Nothing matched the selector. */
  notFound: 3,
  /** Some items succeeded and some did not. */
  partial: 4,
  /** Whoever read stdout stopped reading (`… | head -1`): what a shell reports for a command SIGPIPE ended (128 + 13). */
  brokenPipe: 141,
} as const;

/** A failure with a message for the user (what went wrong, what to do) and the exit code to end with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * The process's streams. A reader that goes away (`sfs-pipeline list … | head -1`) makes the next write fail with
 * EPIPE: the command ends at once, quietly, with exit 141 as a shell reports a command SIGPIPE stopped, so a
 * pipeline with `set -o pipefail` still sees that the output was cut short.
 */
export function processIo(): CliIo {
  const quit = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(EXIT.brokenPipe);
  };
  process.stdout.on('error', quit);
  process.stderr.on('error', quit);
  return { out: process.stdout, err: process.stderr, isTTY: Boolean(process.stderr.isTTY) };
}

type Cell = string | number | boolean | undefined | null;

/** A plain text table: a header row, then one row per item, columns padded to their widest cell; control characters escaped. */
export function formatTable(columns: string[], rows: Cell[][]): string {
  const text = rows.map((row) => columns.map((_, i) => (row[i] === undefined || row[i] === null ? '-' : printable(String(row[i])))));
  const widths = columns.map((column, i) => Math.max(column.length, ...text.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns), ...text.map(line)].join('\n') + '\n';
}

/**
 * One JSON document per line (`--json` output of commands that list). JSON.stringify escapes C0 controls but not
 * DEL, the C1 range (U+0080–U+009F, which some terminals obey) or the line separators: those are escaped here too.
 */
export const jsonLine = (value: unknown): string => `${jsonText(value)}\n`;

/** JSON with every character a terminal could act on written as a \u escape (the same value once parsed). */
export const jsonText = (value: unknown): string => terminalSafeJson(JSON.stringify(value));

/** JSON text (from JSON.stringify) with DEL, C1 controls and line separators escaped as well. */
export function terminalSafeJson(json: string): string {
  return json.replace(/[\u007f-\u009f\u2028\u2029]/g, unicodeEscape);
}

/** Text from outside (keys, file names, record fields, selectors) with control characters shown as \uXXXX. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, unicodeEscape);
}

/** The same, keeping line breaks: for whole messages whose lines are the CLI's own. */
export function printableLines(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, unicodeEscape);
}

const unicodeEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** Words a POSIX shell reads as themselves, unquoted. */
const SHELL_SAFE = /^[A-Za-z0-9_@+:,./-]+$/;

/**
 * One argument as a POSIX shell reads it back: as it is when it holds only safe characters (so commands stay
 * readable), else in single quotes, with each ' written as '\'' (nothing is special inside single quotes).
 */
export function shellQuote(arg: string): string {
  if (SHELL_SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A command line to print for pasting: every argument quoted as needed. */
export const shellCommand = (args: readonly string[]): string => args.map(shellQuote).join(' ');
