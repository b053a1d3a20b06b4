import { readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { z } from 'zod';

/** The machine and moment of one measurement: every figure in the results file carries its own. */
export const RunInfoSchema = z.object({
  at: z.string(),
  cores: z.number().int().min(1),
  cpu: z.string(),
  node: z.string(),
  platform: z.string(),
  /** 1, 5 and 15 minute load averages when the run started: other work on the machine skews every figure. */
  loadAverage: z.array(z.number()).length(3),
  /** The command line that reproduces it. */
  command: z.string(),
});
export type RunInfo = z.infer<typeof RunInfoSchema>;

const Percentiles = z.object({ p50: z.number(), p99: z.number() });

export const BurstEntrySchema = z.object({
  run: RunInfoSchema,
  parameters: z.object({
    uploads: z.number().int().min(1),
    rate: z.number().int().min(1).nullable(),
    retryAfterSeconds: z.number().int().min(0),
    uploadConcurrency: z.number().int().min(1),
    maxConcurrency: z.number().int().min(1),
    scaleStartDelayMs: z.number().int().min(0),
    /** One rate shared by the create-task instances, or each its own (figures from before the shared rate). */
    flowControl: z.enum(['shared', 'per instance']).default('per instance'),
  }),
  wallSeconds: z.number().positive(),
  boundSeconds: z.number().positive().nullable(),
  ratio: z.number().positive().nullable(),
  tasksPerSecond: z.number(),
  scaleRequests: z.number().int().min(0),
  rateLimited: z.number().int().min(0),
  share429: z.number().min(0).max(1),
  duplicates: z.number().int().min(0),
  lost: z.number().int().min(0),
  deadLettered: z.number().int().min(0),
  uploadToTaskMs: Percentiles,
  deliveries: z.number().int().min(0),
  peakRssMb: z.record(z.string(), z.array(z.number())),
});

export const CallbacksEntrySchema = z.object({
  run: RunInfoSchema,
  parameters: z.object({ callbacks: z.number().int().min(1), postConcurrency: z.number().int(), rawConcurrency: z.number().int(), rawRuns: z.number().int() }),
  callbackPath: z.object({ appliedPerSecond: z.number().positive(), seconds: z.number().positive() }),
  rawWrites: z.object({ writesPerSecond: z.number().positive(), runs: z.array(z.number()) }),
  ratio: z.number().positive(),
  cpuMsPerItem: z.object({ callbacks: z.record(z.string(), z.number()), rawWrites: z.record(z.string(), z.number()) }),
  peakRssMb: z.record(z.string(), z.array(z.number())),
});

export const LatencyEntrySchema = z.object({
  run: RunInfoSchema,
  parameters: z.object({ uploads: z.number().int().min(1), uploadsPerSecond: z.number().positive() }),
  uploadToTaskMs: Percentiles,
  callbackToAppliedMs: Percentiles,
});

export const ColdStartEntrySchema = z.object({
  run: RunInfoSchema,
  parameters: z.object({ runs: z.number().int().min(1) }),
  node: z.string(),
  bundles: z.record(z.string(), z.object({ bytes: z.number().int().positive(), importMs: z.number().positive(), toEmpty: z.number().positive(), toS3Client: z.number().positive() })),
});

export const ResultsSchema = z.object({
  schemaVersion: z.literal(1),
  /** One entry per (uploads, rate, Retry-After, concurrency, flow control): a new run replaces the entry it repeats. */
  burst: z.array(BurstEntrySchema),
  callbacks: CallbacksEntrySchema.nullable(),
  latency: LatencyEntrySchema.nullable(),
  coldStart: ColdStartEntrySchema.nullable(),
});
export type Results = z.infer<typeof ResultsSchema>;
export type BurstEntry = z.infer<typeof BurstEntrySchema>;

export function runInfo(command: string): RunInfo {
  const [first] = cpus();
  return {
    at: new Date().toISOString(),
    cores: cpus().length,
    cpu: first?.model.trim() ?? 'unknown',
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    command,
  };
}

export async function readResults(path: string): Promise<Results> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return { schemaVersion: 1, burst: [], callbacks: null, latency: null, coldStart: null };
  return ResultsSchema.parse(JSON.parse(text));
}

/** Merges the new figures into the file's: sections measured now replace theirs, bursts replace the same parameters. */
export function mergeResults(previous: Results, now: Partial<Omit<Results, 'schemaVersion'>>): Results {
  const key = (b: BurstEntry) => JSON.stringify([b.parameters.uploads, b.parameters.rate, b.parameters.retryAfterSeconds, b.parameters.maxConcurrency, b.parameters.flowControl]);
  const replaced = new Set((now.burst ?? []).map(key));
  const burst = [...previous.burst.filter((b) => !replaced.has(key(b))), ...(now.burst ?? [])].sort(
    (a, b) => a.parameters.uploads - b.parameters.uploads || (a.parameters.rate ?? Infinity) - (b.parameters.rate ?? Infinity),
  );
  return {
    schemaVersion: 1,
    burst,
    callbacks: now.callbacks ?? previous.callbacks,
    latency: now.latency ?? previous.latency,
    coldStart: now.coldStart ?? previous.coldStart,
  };
}

export async function writeResults(path: string, results: Results): Promise<void> {
  await writeFile(path, `${JSON.stringify(ResultsSchema.parse(results), null, 2)}\n`);
}
