import { describe, expect, it } from 'vitest';
import {
  checkCreateTaskRequest,
  ScaleErrorBodySchema,
  ScaleTaskSchema,
  TaskListSchema,
  type CreateMultistageTaskRequest,
} from '../../../../lambdas/core/scale/schemas.js';

// Scale's documented limits for POST /v1/task/multistage (SCALE-API.md), each at its boundary: the limit
// accepted, one past it refused with a problem naming the field.

const SCENE = 'https://bucket.example.com/scene.sfs';
const valid = (overrides: Record<string, unknown> = {}) => ({ project: 'p', attachments: [SCENE], scene_format: 'sensor_fusion', ...overrides });
const problemsOf = (overrides: Record<string, unknown>) => checkCreateTaskRequest(valid(overrides));

/** Metadata whose JSON is exactly `bytes` bytes of UTF-8: {"k":"…"} is 8 bytes around the value. */
const metadataOf = (bytes: number, char = 'x') => ({ k: char.repeat((bytes - 8) / Buffer.byteLength(char)) });

describe('Scale’s limits on a create request', () => {
  it('accepts a minimal valid request with no problems at all', () => {
    expect(checkCreateTaskRequest(valid())).toEqual([]);
  });

  it('takes at most 5 tags: 5 pass, 6 are refused', () => {
    expect(problemsOf({ tags: ['1', '2', '3', '4', '5'] })).toEqual([]);
    expect(problemsOf({ tags: [] })).toEqual([]);
    expect(problemsOf({ tags: ['1', '2', '3', '4', '5', '6'] })).toEqual(['tags: must hold at most 5 tags']);
  });

  it('takes metadata up to 10,000 bytes serialized (the smaller reading of "10 kb"), counted in UTF-8 bytes', () => {
    expect(JSON.stringify(metadataOf(10_000))).toHaveLength(10_000);
    expect(problemsOf({ metadata: metadataOf(10_000) })).toEqual([]);
    expect(problemsOf({ metadata: metadataOf(10_001) })).toEqual(['metadata: is 10001 bytes serialized; Scale allows at most 10000']);
    // 'é' is two bytes: 4,996 of them are 9,992 bytes but only 4,996 characters.
    expect(problemsOf({ metadata: metadataOf(10_000, 'é') })).toEqual([]);
    expect(problemsOf({ metadata: metadataOf(10_002, 'é') })).toEqual(['metadata: is 10002 bytes serialized; Scale allows at most 10000']);
  });

  it('takes metadata only as an object', () => {
    expect(problemsOf({ metadata: {} })).toEqual([]);
    expect(problemsOf({ metadata: 'key=value' })).toEqual(['metadata: expected record']);
  });

  it.each([10, 20, 30])('takes priority %i', (priority) => {
    expect(problemsOf({ priority })).toEqual([]);
  });

  it.each([0, 15, 40, '10'])('refuses priority %j', (priority) => {
    expect(problemsOf({ priority })).toEqual(['priority: must be 10, 20 or 30']);
  });

  it('takes exactly one attachment for sensor_fusion, and one or more for split_base64', () => {
    expect(problemsOf({ attachments: [SCENE, SCENE] })).toEqual(['attachments: sensor_fusion takes exactly one .sfs URL, got 2']);
    expect(problemsOf({ scene_format: 'split_base64', attachments: [SCENE] })).toEqual([]);
    expect(problemsOf({ scene_format: 'split_base64', attachments: [SCENE, SCENE, SCENE] })).toEqual([]);
    expect(problemsOf({ scene_format: 'split_base64', attachments: [] })).toEqual(['attachments: must hold at least one attachment URL']);
  });

  it.each(['http://127.0.0.1:9/scene.sfs', 'https://bucket.example.com/a/b.sfs?X-Amz-Signature=abc'])('takes the attachment URL %s', (url) => {
    expect(problemsOf({ attachments: [url] })).toEqual([]);
  });

  it.each(['s3://bucket/scene.sfs', 'ftp://example.com/scene.sfs', 'scene.sfs', ''])('refuses the attachment %j', (url) => {
    expect(problemsOf({ attachments: [url] })).toEqual(['attachments[0]: must be a full http(s) URL']);
  });

  it.each(['https://hooks.example.com/scale?ref=1', 'http://127.0.0.1:8080/cb', 'labels@example.com', 'a@b.c'])('takes the callback %s', (callback_url) => {
    expect(problemsOf({ callback_url })).toEqual([]);
  });

  it.each([
    'ftp://example.com/cb',
    'labels@example', // no dot in the domain
    'labelsexample.com', // no @
    '@example.com', // nothing before the @
    'labels@.com',
    'labels@example.',
    'a@b@c.d',
    'lab els@example.com',
    'x labels@example.com', // an address must be the whole text, not somewhere in it
    'labels@example.com x',
    'labels@exa mple.com',
  ])('refuses the callback %j', (callback_url) => {
    expect(problemsOf({ callback_url })).toEqual(['callback_url: must be a full http(s) URL or an email address']);
  });

  it('requires a project and refuses empty optional names', () => {
    expect(problemsOf({ project: '' })).toEqual(['project: is required']);
    expect(problemsOf({ batch: '' })).toEqual(['batch: must not be empty']);
    expect(problemsOf({ task_blueprint_id: '' })).toEqual(['task_blueprint_id: must not be empty']);
    expect(problemsOf({ unique_id: '' })).toEqual(['unique_id: must not be empty']);
    expect(problemsOf({ batch: 'b', task_blueprint_id: 't', unique_id: 'u', instruction: '', clear_unique_id_on_error: true })).toEqual([]);
  });

  it('knows both scene formats and no other, and no unknown keys', () => {
    expect(problemsOf({ scene_format: 'split_base64' })).toEqual([]);
    expect(problemsOf({ scene_format: 'pointcloud' })).toEqual(['scene_format: expected one of "sensor_fusion", "split_base64"']);
    expect(problemsOf({ colour: 'red' })).toEqual(['(root): unknown key(s) colour']);
    expect(problemsOf({ clear_unique_id_on_error: 'yes' })).toEqual(['clear_unique_id_on_error: expected boolean']);
  });

  it('lists every problem of a request, each naming its field', () => {
    const request: Partial<CreateMultistageTaskRequest> = { project: '', attachments: [SCENE], scene_format: 'sensor_fusion', tags: ['1', '2', '3', '4', '5', '6'] };
    expect(checkCreateTaskRequest(request)).toEqual(['project: is required', 'tags: must hold at most 5 tags']);
    // The rules across fields (checked once every field is well formed) report together too.
    expect(problemsOf({ attachments: [SCENE, SCENE], metadata: metadataOf(10_001) })).toEqual([
      'attachments: sensor_fusion takes exactly one .sfs URL, got 2',
      'metadata: is 10001 bytes serialized; Scale allows at most 10000',
    ]);
  });
});

describe('Scale’s answers', () => {
  it('reads a task with the fields Scale leaves null or adds, keeping the added ones', () => {
    const answer = { task_id: 't1', status: 'pending', completed_at: null, metadata: null, tags: null, audits: null, callback_url: null, new_field: 7 };
    const parsed = ScaleTaskSchema.safeParse(answer);
    expect(parsed.success && parsed.data).toEqual(answer);
  });

  it('refuses a task without an id or a status', () => {
    expect(ScaleTaskSchema.safeParse({ task_id: '', status: 'pending' }).success).toBe(false);
    expect(ScaleTaskSchema.safeParse({ task_id: 't1' }).success).toBe(false);
  });

  it('reads a task list only with its docs and has_more', () => {
    expect(TaskListSchema.safeParse({ docs: [{ task_id: 't1', status: 'completed' }], has_more: false, next_token: null }).success).toBe(true);
    expect(TaskListSchema.safeParse({ docs: [], total: 0 }).success).toBe(false);
    expect(TaskListSchema.safeParse({ docs: [{ task_id: 't1' }], has_more: false }).success).toBe(false);
  });

  it('reads Scale’s error body and tolerates more fields', () => {
    expect(ScaleErrorBodySchema.safeParse({ status_code: 400, error: 'Bad', extra: 1 }).success).toBe(true);
    expect(ScaleErrorBodySchema.safeParse({ error: 400 }).success).toBe(false);
  });
});
