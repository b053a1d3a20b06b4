import * as z from 'zod/mini';
import { checkAgainst } from './validation.js';
import { SCALE_LIMITS } from '../scale/schemas.js';

/** Scale task settings that a key prefix can override. */
const TaskSettings = {
  project: z.optional(z.string().check(z.minLength(1, 'must not be empty'))),
  batch: z.optional(z.string().check(z.minLength(1, 'must not be empty'))),
  instruction: z.optional(z.string()),
  taskBlueprintId: z.optional(z.string().check(z.minLength(1, 'must not be empty'))),
  priority: z.optional(z.union(SCALE_LIMITS.priorities.map((p) => z.literal(p)), { error: 'must be 10, 20 or 30' })),
  tags: z.optional(z.array(z.string()).check(z.maxLength(SCALE_LIMITS.maxTags, `must hold at most ${SCALE_LIMITS.maxTags} tags`))),
};

export const RouteSchema = z.strictObject({
  /** Keys that start with this prefix use the settings below over the defaults. Longest prefix wins. */
  prefix: z.string().check(
    z.minLength(1, 'must not be empty'),
    // S3 keys in events never start with '/': such a route would silently never match.
    z.refine((prefix) => !prefix.startsWith('/'), "must not start with '/': S3 keys have no leading slash, so this route would never match"),
  ),
  ...TaskSettings,
});

/** The suffix of .sfs scenes; frame manifests have their own (configurable) one. */
export const SCENE_SUFFIX = '.sfs';

/** How uploads become Scale tasks. Shared by the stack (CDK context) and the create-task handler (environment). */
export const RoutingSchema = z.strictObject({
  ...TaskSettings,
  project: z.string({ error: 'is required: the Scale project new tasks go to' }).check(z.minLength(1, 'must not be empty')),
  routes: z._default(z.array(RouteSchema), []),
  clearUniqueIdOnError: z._default(z.boolean(), true),
  /** Lifetime asked for the presigned attachment URL (SigV4 allows at most 7 days). */
  presignExpiresSeconds: z._default(z.int().check(z.gte(60, 'must be at least 60'), z.lte(604_800, 'must be at most 604800 (7 days)')), 6 * 3600),
  /** Largest .sfs header read during the preflight check. */
  maxHeaderBytes: z._default(z.int().check(z.gte(1024), z.lte(64 * 1024 * 1024)), 8 * 1024 * 1024),
  /** Uploads whose key ends with this are frame manifests ({"frames": [...]}) for a split_base64 task. */
  frameManifestSuffix: z._default(z.string().check(z.regex(/^\.[A-Za-z0-9._-]+$/, 'must be a file suffix such as .frames.json')), '.frames.json'),
  maxFrames: z._default(z.int().check(z.gte(1), z.lte(10_000)), 2_000),
  maxManifestBytes: z._default(z.int().check(z.gte(1024), z.lte(16 * 1024 * 1024)), 1024 * 1024),
  /** Where a manifest's frames may be: its own folder (default), or anywhere under the route prefix it matched. */
  frameScope: z._default(z.enum(['folder', 'route']), 'folder'),
}).check(z.superRefine((routing, ctx) => {
  const problem = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message, input: routing });
  const suffix = routing.frameManifestSuffix;
  // S3 refuses two notifications for one event type whose suffixes overlap (one ends with the other).
  if (suffix.endsWith(SCENE_SUFFIX) || SCENE_SUFFIX.endsWith(suffix)) {
    problem(['frameManifestSuffix'], `${JSON.stringify(suffix)} overlaps the scene suffix ${JSON.stringify(SCENE_SUFFIX)}: S3 refuses overlapping notification filters; pick one that does not end with it, such as .frames.json`);
  }
  const seen = new Map<string, number>();
  routing.routes.forEach((route, i) => {
    // A frame scope is a folder: "team-a" would also take in "team-ab/…" and "team-a-archive/…".
    if (routing.frameScope === 'route' && !route.prefix.endsWith('/')) {
      problem(['routes', i, 'prefix'], `must end with '/' when frameScope is "route" (the scope is a folder; ${JSON.stringify(route.prefix)} would also cover ${JSON.stringify(`${route.prefix}b/`)})`);
    }
    const first = seen.get(route.prefix);
    if (first !== undefined) problem(['routes', i, 'prefix'], `repeats routes[${first}].prefix ${JSON.stringify(route.prefix)}: each prefix may have one route`);
    seen.set(route.prefix, i);
  });
  const duplicateTags = (tags: string[] | undefined, path: PropertyKey[]) => {
    const repeated = tags?.filter((tag, i) => tags.indexOf(tag) !== i) ?? [];
    if (repeated.length > 0) problem(path, `repeats ${[...new Set(repeated)].map((t) => JSON.stringify(t)).join(', ')}`);
  };
  duplicateTags(routing.tags, ['tags']);
  routing.routes.forEach((route, i) => duplicateTags(route.tags, ['routes', i, 'tags']));
}));
export type Routing = z.infer<typeof RoutingSchema>;
export type Route = z.infer<typeof RouteSchema>;

/** Everything the stack reads from CDK context. */
export const PipelineConfigSchema = z.strictObject({
  routing: RoutingSchema,
  scaleApiUrl: z._default(
    z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).check(
      // The key goes in the Authorization header; credentials in the URL would only end up in logs and errors.
      z.refine((url) => !/^[a-z]+:\/\/[^/]*@/i.test(url), 'must not hold credentials (user:password@): the API key goes in its secret'),
    ),
    'https://api.scale.com/v1',
  ),
  /** Concurrent create-task invocations, i.e. the pressure put on Scale's rate limit. */
  maxConcurrency: z._default(z.int().check(z.gte(2, 'must be at least 2 (SQS event source minimum)'), z.lte(1000)), 5),
  /**
   * create-task instances keep to one Scale rate shared through a small table of its own (false: each instance
   * finds its own share of the limit, which splits it unequally between them).
   */
  sharedRateLimit: z._default(z.boolean(), true),
  /** Receives of one message before it moves to the dead-letter queue. */
  maxReceiveCount: z._default(z.int().check(z.gte(1), z.lte(1000)), 5),
  removalPolicy: z._default(z.enum(['retain', 'destroy']), 'retain'),
  /** Optional WAF rule: requests per 5 minutes one IP may send to the callback API (WAF has a monthly cost). */
  callbackWafRateLimit: z.optional(z.int().check(z.gte(10, 'must be at least 10 (WAF minimum)'), z.lte(2_000_000_000))),
  /** Hosts result files may be copied from: Scale's results bucket and API (Secure Result URLs), nothing else. */
  resultFileHosts: z._default(z.array(z.string().check(z.regex(/^[a-z0-9.-]+$/i, 'must be a host name'))), [
    'scaleapi-results.s3.amazonaws.com',
    'scaleapi-results.s3.us-west-2.amazonaws.com',
    'api.scale.com',
  ]),
  /** Plain http for result files: only for a local stand-in; https otherwise. */
  resultFilesAllowHttp: z._default(z.boolean(), false),
  /** The largest result file copied (bigger ones are listed with the reason). */
  // Held in memory while hashed and stored (twice, briefly): the callback function's 1 GB bounds it.
  maxResultFileBytes: z._default(z.int().check(z.gte(1024), z.lte(384 * 1024 * 1024, 'must be at most 402653184 (384 MiB): the file is held in the 1 GB function')), 100 * 1024 * 1024),
  /** How often the reconciler asks Scale what changed. */
  reconcileEveryMinutes: z._default(z.int().check(z.gte(1), z.lte(1440)), 15),
  /** Uploads still `submitting` after this long are looked up at Scale (and resubmitted when it has no task). */
  reconcileAfterMinutes: z._default(z.int().check(z.gte(5, 'must be at least 5 (longer than a create-task run, and than a wait in the queue)'), z.lte(10_080)), 30),
  /** How far back the reconciler asks Scale for updated tasks: more than Scale's 24 hours of callback retries. */
  reconcileLookBackHours: z._default(z.int().check(z.gte(25, "must be at least 25 (Scale's callback retries last 24 hours)"), z.lte(24 * 30)), 25),
  /** Times an upload whose task could not download its attachment is submitted again (needs clearUniqueIdOnError). */
  errorResubmissions: z._default(z.int().check(z.gte(0), z.lte(10)), 2),
  /** States the reconciler finds missing in one run before the alarm fires (the callback path is broken). */
  missingStatesAlarmThreshold: z._default(z.int().check(z.gte(1)), 5),
  /** How long the task bus's archive keeps events for replay (0: forever). */
  eventArchiveRetentionDays: z._default(z.int().check(z.gte(0), z.lte(36_500)), 365),
  /** An existing SNS topic the alarms notify. */
  alarmTopicArn: z.optional(z.string().check(z.regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$/, 'must be an SNS topic ARN'))),
  /** Cancel the open Scale task of an upload when its object is deleted (the removal notification drives it). */
  cancelOnDelete: z._default(z.boolean(), true),
  /** Watch this existing bucket instead of creating one. */
  existingScenesBucketName: z.optional(z.string().check(z.regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name'))),
});
export type PipelineConfig = z.infer<typeof PipelineConfigSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses config or throws one error listing every problem, each naming its key under `where`. */
export function parseConfig<T>(schema: z.ZodMiniType<T>, data: unknown, where: string): T {
  const result = checkAgainst(schema, data);
  if (result.ok) return result.value;
  throw new ConfigError(`invalid ${where}:\n  - ${result.problems.join('\n  - ')}`);
}

/** Reads a required environment variable; a missing one is a deployment error worth a clear message. */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (!value) throw new ConfigError(`environment variable ${name} is not set; the stack sets it on every function`);
  return value;
}
