import * as z from 'zod/mini';
import { checkAgainst } from '../shared/validation.js';

/** Limits from Scale's API reference for POST /v1/task/multistage. */
export const SCALE_LIMITS = {
  maxTags: 5,
  /** "10 kb" in Scale's technical limits: the smaller reading (10,000 bytes), so Scale never refuses what passed here. */
  maxMetadataBytes: 10_000,
  priorities: [10, 20, 30] as const,
} as const;

const httpUrl = z.string().check(
  z.refine((value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'https:' || url.protocol === 'http:';
    } catch {
      return false;
    }
  }, 'must be a full http(s) URL'),
);

const emailAddress = z.string().check(z.regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/));

export const SceneFormatSchema = z.enum(['sensor_fusion', 'split_base64']);
export type SceneFormat = z.infer<typeof SceneFormatSchema>;

export const CreateMultistageTaskRequestSchema = z
  .strictObject({
    project: z.string().check(z.minLength(1, 'is required')),
    batch: z.optional(z.string().check(z.minLength(1, 'must not be empty'))),
    attachments: z.array(httpUrl).check(z.minLength(1, 'must hold at least one attachment URL')),
    scene_format: SceneFormatSchema,
    instruction: z.optional(z.string()),
    callback_url: z.optional(z.union([httpUrl, emailAddress], { error: 'must be a full http(s) URL or an email address' })),
    task_blueprint_id: z.optional(z.string().check(z.minLength(1, 'must not be empty'))),
    metadata: z.optional(z.record(z.string(), z.unknown())),
    unique_id: z.optional(z.string().check(z.minLength(1, 'must not be empty'))),
    priority: z.optional(z.union(SCALE_LIMITS.priorities.map((p) => z.literal(p)), { error: 'must be 10, 20 or 30' })),
    clear_unique_id_on_error: z.optional(z.boolean()),
    tags: z.optional(z.array(z.string()).check(z.maxLength(SCALE_LIMITS.maxTags, `must hold at most ${SCALE_LIMITS.maxTags} tags`))),
  })
  .check(
    z.superRefine((req, ctx) => {
      if (req.scene_format === 'sensor_fusion' && req.attachments.length !== 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['attachments'],
          message: `sensor_fusion takes exactly one .sfs URL, got ${req.attachments.length}`,
          input: req.attachments,
        });
      }
      if (req.metadata !== undefined) {
        const bytes = Buffer.byteLength(JSON.stringify(req.metadata), 'utf8');
        if (bytes > SCALE_LIMITS.maxMetadataBytes) {
          ctx.addIssue({
            code: 'custom',
            path: ['metadata'],
            message: `is ${bytes} bytes serialized; Scale allows at most ${SCALE_LIMITS.maxMetadataBytes}`,
            input: req.metadata,
          });
        }
      }
    }),
  );

export type CreateMultistageTaskRequest = z.infer<typeof CreateMultistageTaskRequestSchema>;

/** Problems with a create request, one line each naming the field; empty when the request is valid. */
export function checkCreateTaskRequest(request: unknown): string[] {
  const result = checkAgainst(CreateMultistageTaskRequestSchema, request);
  return result.ok ? [] : result.problems;
}

const timestamp = z.optional(z.nullable(z.string()));

/** The task object. Loose: Scale adds fields, and `response` is opaque (its shape depends on the blueprint). */
export const ScaleTaskSchema = z.looseObject({
  task_id: z.string().check(z.minLength(1)),
  status: z.string(),
  type: z.optional(z.string()),
  created_at: timestamp,
  updated_at: timestamp,
  completed_at: timestamp,
  callback_url: z.optional(z.nullable(z.string())),
  callback_succeeded: z.optional(z.nullable(z.boolean())),
  instruction: z.optional(z.nullable(z.string())),
  is_test: z.optional(z.boolean()),
  params: z.optional(z.record(z.string(), z.unknown())),
  response: z.optional(z.unknown()),
  metadata: z.optional(z.nullable(z.record(z.string(), z.unknown()))),
  unique_id: z.optional(z.nullable(z.string())),
  tags: z.optional(z.nullable(z.array(z.string()))),
  audits: z.optional(z.nullable(z.array(z.unknown()))),
});
export type ScaleTask = z.infer<typeof ScaleTaskSchema>;

export const TaskListSchema = z.looseObject({
  docs: z.array(ScaleTaskSchema),
  total: z.optional(z.number()),
  limit: z.optional(z.number()),
  offset: z.optional(z.number()),
  has_more: z.boolean(),
  next_token: z.optional(z.nullable(z.string())),
});
export type TaskList = z.infer<typeof TaskListSchema>;

/** Scale's error body: `{"status_code": 400, "error": "..."}`. */
export const ScaleErrorBodySchema = z.looseObject({
  status_code: z.optional(z.number()),
  error: z.optional(z.string()),
  message: z.optional(z.string()),
});
