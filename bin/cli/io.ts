/**
 * What every subcommand writes to and how it ends: output streams (injectable, so tests run the CLI in-process),
 * the exit codes scripts can rely on, and the one error type that carries a message for the user.
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

export const processIo = (): CliIo => ({ out: process.stdout, err: process.stderr, isTTY: Boolean(process.stderr.isTTY) });

type Cell = string | number | boolean | undefined | null;

/** A plain text table: a header row, then one row per item, columns padded to their widest cell. */
export function formatTable(columns: string[], rows: Cell[][]): string {
  const text = rows.map((row) => columns.map((_, i) => (row[i] === undefined || row[i] === null ? '-' : String(row[i]))));
  const widths = columns.map((column, i) => Math.max(column.length, ...text.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns), ...text.map(line)].join('\n') + '\n';
}

/** One JSON document per line (`--json` output of commands that list). */
export const jsonLine = (value: unknown): string => `${JSON.stringify(value)}\n`;
