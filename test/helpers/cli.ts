import { runCli } from '../../bin/sfs-pipeline.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one `sfs-pipeline` command line in this process, capturing what it writes and its exit code. */
export async function cli(...argv: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { out: { write: (text: string) => (stdout += text) }, err: { write: (text: string) => (stderr += text) }, isTTY: false });
  return { code, stdout, stderr };
}

/** The JSON lines a `--json` command printed. */
export const jsonLines = <T = Record<string, unknown>>(stdout: string): T[] =>
  stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
