import { LogLevel, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..');

/** The project's functions: name → handler entry. The stack and the local pipeline both build from this list. */
export const FUNCTION_ENTRIES = {
  'create-task': join(PROJECT_ROOT, 'lambdas/create-task/handler.ts'),
  callback: join(PROJECT_ROOT, 'lambdas/callback/handler.ts'),
  'callback-auth': join(PROJECT_ROOT, 'lambdas/callback-auth/handler.ts'),
  'task-events': join(PROJECT_ROOT, 'lambdas/task-events/handler.ts'),
  reconcile: join(PROJECT_ROOT, 'lambdas/reconcile/handler.ts'),
} as const;
export type FunctionName = keyof typeof FUNCTION_ENTRIES;

/**
 * Each function's timeout in seconds: the stack deploys with it and the local function runner enforces it.
 * create-task: Scale calls get a 30 s retry budget; S3, DynamoDB and the secrets need a little on top.
 * callback: reads a stored callback (up to 10 MB), copies its result files (60 s each), updates the record, off
 *   Scale's request; 1 GB holds one result file of up to maxResultFileBytes (≤ 384 MiB) twice while it is hashed
 *   and stored (result files are copied one at a time per instance).
 * callback-auth: checks a header and a signature while Scale waits (its timeout is not documented).
 * task-events: turns a batch of stream records into events; pure computation.
 * reconcile: pages through Scale's tasks of the look-back and the stuck uploads; bounded by its own deadline.
 */
export const FUNCTION_TIMEOUT_SECONDS: Record<FunctionName, number> = { 'create-task': 60, callback: 300, 'callback-auth': 10, 'task-events': 30, reconcile: 300 };

/**
 * Each function's memory in MB (Lambda gives CPU in proportion). create-task parses .sfs headers of up to
 * `maxHeaderBytes` (8 MiB): a hostile one of millions of tiny objects needs ~300 MB and a second or two of CPU.
 */
export const FUNCTION_MEMORY_MB: Record<FunctionName, number> = { 'create-task': 1024, callback: 1024, 'callback-auth': 512, 'task-events': 512, reconcile: 512 };

/**
 * How every function is bundled: ESM, minified, with source maps, the SDK bundled in (pinned, not the runtime's).
 * `target` is the Lambda runtime's Node (24), which the project pins and runs everything locally on too.
 */
export const BUNDLING: BundlingOptions = {
  format: OutputFormat.ESM,
  minify: true,
  sourceMap: true,
  target: 'node24',
  mainFields: ['module', 'main'],
  externalModules: [],
  // Some bundled CommonJS code calls require(); give ESM one.
  banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
  // Sizes and timings of every bundle on each synth are noise; esbuild's warnings and errors still show.
  logLevel: LogLevel.WARNING,
  // Bundling runs esbuild from node_modules; never Docker.
  forceDockerBundling: false,
};
