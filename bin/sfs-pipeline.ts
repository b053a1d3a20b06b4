/**
 * `sfs-pipeline`: operate the pipeline — what happened to an upload, the labels out for training, retries, the
 * dead-letter queue, and scenes in and out — against a deployed stack (`--stack NAME`) or the local pipeline
 * (`--local INFO_FILE`). `sfs-pipeline <command> --help` explains each command.
 */
import { Command, CommanderError } from 'commander';
import { registerCancel } from './cli/cancel.js';
import { CliError, EXIT, printableLines, type CliIo } from './cli/io.js';
import { registerExport } from './cli/export.js';
import { registerInspect } from './cli/inspect.js';
import { registerList } from './cli/list.js';
import { registerPack } from './cli/pack.js';
import { registerRedrive } from './cli/redrive.js';
import { registerRetry } from './cli/retry.js';
import { registerStatus } from './cli/status.js';
import { registerUpload } from './cli/upload.js';

/** What a command gets: where to write, and the exit code the run ends with (a command raises it, e.g. on partial success). */
export interface CliContext {
  io: CliIo;
  exitCode: number;
}

/** A subcommand: adds itself (with its options, help and action) to the program. */
export type RegisterCommand = (program: Command, context: CliContext) => void;

/** Every subcommand, in the order `--help` lists them. */
const COMMANDS: RegisterCommand[] = [registerStatus, registerList, registerExport, registerRetry, registerCancel, registerRedrive, registerUpload, registerPack, registerInspect];

/** The program, writing to `context.io`: the bin gives it the process's streams, tests their own. */
export function buildProgram(context: CliContext): Command {
  const { io } = context;
  const program = new Command('sfs-pipeline')
    .description('Operate the Scale SFS pipeline: uploads, task records, exports, retries, dead letters, scenes')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    // Commander's errors echo what was typed (an unknown option, a bad value): control characters escaped.
    .configureOutput({ writeOut: (text) => void io.out.write(text), writeErr: (text) => void io.err.write(printableLines(text)) });
  for (const register of COMMANDS) register(program, context);
  return program;
}

/** Runs one command line; resolves with the exit code (never exits the process itself). */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const context: CliContext = { io, exitCode: EXIT.ok };
  const program = buildProgram(context);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return context.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    // Messages quote keys, files, records and AWS errors: whatever slipped through unescaped cannot drive the terminal.
    if (err instanceof CliError) {
      io.err.write(`sfs-pipeline: ${printableLines(err.message)}\n`);
      return err.exitCode;
    }
    io.err.write(`sfs-pipeline: ${printableLines((err as Error).message ?? String(err))}\n`);
    return EXIT.failure;
  }
}
