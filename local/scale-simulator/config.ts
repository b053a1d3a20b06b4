import { z } from 'zod';

/** How the simulator behaves and misbehaves; every field can be changed at run time via POST /_simulator/config. */
export const SimulatorConfigSchema = z
  .object({
    /** Time a new task waits, pending with no work started (so it can still be canceled), before its downloads. */
    startDelayMs: z.number().int().min(0).default(0),
    /** Delay between a successful download and completion. */
    completionDelayMs: z.number().int().min(0).default(50),
    downloadTimeoutMs: z.number().int().min(1).default(5_000),
    callbackTimeoutMs: z.number().int().min(1).default(5_000),
    /** First wait between callback attempts; doubles per attempt up to 2 s. Scale spreads 20 tries over 24 h. */
    callbackRetryDelayMs: z.number().int().min(0).default(100),
    callbackMaxAttempts: z.number().int().min(1).max(100).default(20),
    /** Extra latency before every API answer. */
    latencyMs: z.number().int().min(0).default(0),
    /** 429 past this many API requests in any one-second window; Retry-After sent when retryAfterSeconds is set. */
    rateLimit: z
      .object({ requestsPerSecond: z.number().int().min(1), retryAfterSeconds: z.number().int().min(0).nullable().default(null) })
      .nullable()
      .default(null),
    /** Share (0..1) of API requests answered with serverErrorStatus before being processed. */
    serverErrorRate: z.number().min(0).max(1).default(0),
    serverErrorStatus: z.number().int().min(500).max(599).default(503),
    /** Share (0..1) of API requests processed and then cut off mid-answer (the socket is destroyed). */
    dropConnectionRate: z.number().min(0).max(1).default(0),
    /** Deterministic faults for tests: the next N API requests get a 5xx / are dropped mid-answer. */
    failNextRequests: z.number().int().min(0).default(0),
    dropNextRequests: z.number().int().min(0).default(0),
    /** Which API requests the rate-based faults above apply to. */
    faultScope: z.enum(['all', 'create']).default('all'),
    /**
     * Share (0..1) of callbacks never delivered at all, as when Scale gives up on one: recorded in the task's
     * callbacks with `dropped: true` and no attempts. Only asking Scale (GET /v1/tasks) finds the new state.
     */
    dropCallbacks: z.number().min(0).max(1).default(0),
    /** The next N attachment downloads fail with 403, as an expired presigned URL does: the task ends in `error`. */
    failNextDownloads: z.number().int().min(0).default(0),
    /** Send every callback twice. */
    duplicateCallbacks: z.boolean().default(false),
    /** After completing, audit the task and deliver the audit callback before the completion callback. */
    auditBeforeCompletion: z.boolean().default(false),
    /** After the completion callback, recall the task (completed -> pending) and call back again. */
    recallAfterCompletion: z.boolean().default(false),
    /** Give an audit (auditBeforeCompletion) or recall (recallAfterCompletion) exactly the completion's updated_at. */
    equalTimestamps: z.boolean().default(false),
    /**
     * Answer every API request with this status, as Scale does once the key is revoked or rotated; null serves
     * normally. The control surface (/_simulator/...) is not affected.
     */
    refuseApiKey: z.union([z.literal(401), z.literal(403)]).nullable().default(null),
    /**
     * Bytes of filler (a `padding` string field) added to every completed task's response, so it can outgrow what
     * the receiver keeps in its table (INLINE_RESPONSE_LIMIT_BYTES) and must be read from the archived callback;
     * at most 8 MiB, well inside API Gateway's 10 MB body limit.
     */
    responsePaddingBytes: z.number().int().min(0).max(8 * 1024 * 1024).default(0),
    /**
     * A careless server: every error answer (401, 403, other 4xx, 5xx) echoes the request's Authorization header and
     * the API key decoded from it, at the front of `error` and as fields of its own. Scale does not do this; a proxy
     * or a misconfigured gateway in front of it might, and a client must keep the key out of its errors anyway.
     */
    echoAuthorization: z.boolean().default(false),
    /** Seed of the random faults, so a run can be repeated. */
    seed: z.number().int().default(1),
  })
  .strict();

export type SimulatorConfig = z.infer<typeof SimulatorConfigSchema>;
export const SimulatorConfigPatchSchema = SimulatorConfigSchema.partial();
export type SimulatorConfigPatch = z.input<typeof SimulatorConfigPatchSchema>;

/** What a careless server answers (echoAuthorization): the credentials as sent and the key in them, up front. */
export function echoCredentials(body: { status_code: number; error: string }, authorization: string | undefined) {
  const encoded = /^Basic\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  const apiKey = encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8').split(':')[0];
  const echo = authorization === undefined ? 'no Authorization header' : `Authorization "${authorization}", API key "${apiKey ?? '(unreadable)'}"`;
  return { ...body, error: `Request with ${echo}: ${body.error}`, authorization: authorization ?? null, api_key: apiKey ?? null };
}
