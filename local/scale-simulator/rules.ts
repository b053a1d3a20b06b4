/**
 * Scale's rules for the body of POST /v1/task/multistage, written out for the simulator on their own: from Scale's
 * public API reference (create-multi-stage-task, sensor-fusion-tasks, callbacks, errors, technical limits) as
 * summarized in SCALE-API.md. Deliberately not the product's request schema: a limit the product gets wrong must
 * show up as a refusal here, not be mirrored.
 *
 * Where Scale documents a rule, it is followed, including where the product is stricter. Where it documents
 * nothing, the simulator refuses rather than guesses that Scale would accept (marked "not documented" below), so a
 * client cannot come to depend on leniency Scale may not have.
 */

/** The literal limits, as documented; kept apart so each is read once and cited once. */
export const SCALE_DOCUMENTED_LIMITS = {
  /** SCALE-API.md: tags, "array of strings, at most 5". */
  maxTags: 5,
  /**
   * Scale's technical limits: "Max Task Metadata JSON size: 10 kb" (SCALE-API.md: "at most 10 KB"), with no byte
   * count. The smaller reading, 10,000 bytes of UTF-8 JSON, so whatever the simulator accepts fits either reading.
   */
  maxMetadataBytes: 10_000,
  /** SCALE-API.md: priority "10, 20 or 30; higher first". */
  priorities: [10, 20, 30],
  /** SCALE-API.md: `sensor_fusion` for one .sfs URL, `split_base64` for one LiDAR JSON URL per frame. */
  sceneFormats: ['sensor_fusion', 'split_base64'],
  /** Attachments are URLs; SCALE-API.md: Scale's AWS integration also reads `s3://bucket/key`. */
  attachmentSchemes: ['http:', 'https:', 's3:'],
} as const;

/** Scale's one documented error text for this endpoint (scale.com/docs/api-reference/errors). */
export const MISSING_ATTACHMENTS = 'Please include an attachment or attachments parameter.';
export const UNIQUE_ID_IN_USE = 'The provided idempotency key or unique_id is already in use.';

/** The simulator's own view of an accepted create request; `project` is resolved from the batch when omitted. */
export interface TaskCreationRequest {
  project: string;
  batch?: string;
  attachments: string[];
  scene_format: (typeof SCALE_DOCUMENTED_LIMITS.sceneFormats)[number];
  instruction?: string;
  callback_url?: string;
  task_blueprint_id?: string;
  metadata?: Record<string, unknown>;
  unique_id?: string;
  priority?: number;
  clear_unique_id_on_error?: boolean;
  tags?: string[];
}

/** How Scale refuses a request: the status, and the body `{"status_code": …, "error": …}` (SCALE-API.md, Errors). */
export interface ScaleRefusal {
  status: 400 | 409;
  body: { status_code: 400 | 409; error: string };
}

export type TaskCreationCheck = { ok: true; request: TaskCreationRequest } | { ok: false; refusal: ScaleRefusal };

/** What exists for the key: projects, batches (each in one project), and unique_ids already taken. */
export interface AccountState {
  projects: readonly string[];
  batches: ReadonlyArray<{ name: string; project: string }>;
  uniqueIdInUse: (uniqueId: string) => boolean;
}

const KNOWN_PARAMETERS = new Set([
  'project', 'batch', 'attachments', 'scene_format', 'instruction', 'callback_url', 'task_blueprint_id',
  'metadata', 'unique_id', 'priority', 'clear_unique_id_on_error', 'tags',
]);

class Refused extends Error {
  constructor(readonly status: 400 | 409, message: string) {
    super(message);
  }
}

function refuse(message: string, status: 400 | 409 = 400): never {
  throw new Refused(status, message);
}

/** Checks a create body against Scale's rules, then against what exists for the key; the first broken rule is answered. */
export function checkTaskCreation(body: unknown, account: AccountState): TaskCreationCheck {
  try {
    const request = checkBody(body);
    return { ok: true, request: checkAccount(request, account) };
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    return { ok: false, refusal: { status: err.status, body: { status_code: err.status, error: err.message } } };
  }
}

function checkBody(body: unknown): Omit<TaskCreationRequest, 'project'> & { project?: string } {
  if (!isPlainObject(body)) return refuse('The request body must be a JSON object.');
  const { attachments, scene_format: format } = body;
  // Required parameters first, as Scale names the missing one (its documented text for attachments).
  const project = optionalText(body, 'project');
  const batch = optionalText(body, 'batch');
  // create-multi-stage-task: "if a batch is specified, you need not specify the project".
  if (project === undefined && batch === undefined) refuse('Please include a project parameter (or a batch, which implies its project).');
  if (!Array.isArray(attachments) || attachments.length === 0) refuse(MISSING_ATTACHMENTS);
  const urls = attachments as unknown[];
  if (!SCALE_DOCUMENTED_LIMITS.sceneFormats.includes(format as never)) {
    refuse(`scene_format must be one of ${SCALE_DOCUMENTED_LIMITS.sceneFormats.map((f) => `"${f}"`).join(', ')}; got ${shown(format)}.`);
  }
  // sensor-fusion-tasks: "there must only be one url provided"; split_base64 takes one URL per frame.
  if (format === 'sensor_fusion' && urls.length !== 1) refuse(`scene_format "sensor_fusion" takes exactly one attachment (the .sfs URL); got ${urls.length}.`);
  urls.forEach((url, i) => {
    if (!hasScheme(url, SCALE_DOCUMENTED_LIMITS.attachmentSchemes)) refuse(`attachments[${i}] must be an http(s) or s3 URL; got ${shown(url)}.`);
  });
  // Not documented whether Scale ignores unknown parameters: refused, so a misspelt one is not silently lost.
  const unknown = Object.keys(body).find((key) => !KNOWN_PARAMETERS.has(key));
  if (unknown !== undefined) refuse(`Unknown parameter "${unknown.slice(0, 60)}".`);

  const callbackUrl = optionalText(body, 'callback_url');
  // callbacks: "a fully qualified URL", or an email address.
  if (callbackUrl !== undefined && !hasScheme(callbackUrl, ['http:', 'https:']) && !isEmailAddress(callbackUrl)) {
    refuse(`callback_url must be a full http(s) URL or an email address; got ${shown(callbackUrl)}.`);
  }
  const metadata = body.metadata;
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) refuse('metadata must be a JSON object.');
    const bytes = Buffer.byteLength(JSON.stringify(metadata), 'utf8');
    const max = SCALE_DOCUMENTED_LIMITS.maxMetadataBytes;
    if (bytes > max) refuse(`metadata is ${bytes} bytes as JSON; at most ${max} bytes (10 KB) are allowed.`);
  }
  const priority = body.priority;
  if (priority !== undefined && !SCALE_DOCUMENTED_LIMITS.priorities.includes(priority as never)) {
    refuse(`priority must be one of ${SCALE_DOCUMENTED_LIMITS.priorities.join(', ')}; got ${shown(priority)}.`);
  }
  const tags = body.tags;
  if (tags !== undefined) {
    if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === 'string')) refuse('tags must be an array of strings.');
    const max = SCALE_DOCUMENTED_LIMITS.maxTags;
    if ((tags as string[]).length > max) refuse(`tags holds ${(tags as string[]).length} tags; at most ${max} are allowed.`);
  }
  const clear = body.clear_unique_id_on_error;
  if (clear !== undefined && typeof clear !== 'boolean') refuse('clear_unique_id_on_error must be true or false.');
  const instruction = body.instruction;
  if (instruction !== undefined && typeof instruction !== 'string') refuse('instruction must be a string.');
  const blueprint = optionalText(body, 'task_blueprint_id');
  const uniqueId = optionalText(body, 'unique_id');

  return {
    ...(project !== undefined ? { project } : {}),
    ...(batch !== undefined ? { batch } : {}),
    attachments: urls as string[],
    scene_format: format as TaskCreationRequest['scene_format'],
    ...(instruction !== undefined ? { instruction: instruction as string } : {}),
    ...(callbackUrl !== undefined ? { callback_url: callbackUrl } : {}),
    ...(blueprint !== undefined ? { task_blueprint_id: blueprint } : {}),
    ...(metadata !== undefined ? { metadata: metadata as Record<string, unknown> } : {}),
    ...(uniqueId !== undefined ? { unique_id: uniqueId } : {}),
    ...(priority !== undefined ? { priority: priority as number } : {}),
    ...(clear !== undefined ? { clear_unique_id_on_error: clear as boolean } : {}),
    ...(tags !== undefined ? { tags: tags as string[] } : {}),
  };
}

/** The project (or the batch's), the batch within it, and the unique_id, checked against what exists. */
function checkAccount(request: ReturnType<typeof checkBody>, account: AccountState): TaskCreationRequest {
  const batch = request.batch === undefined ? undefined : account.batches.find((b) => b.name === request.batch);
  if (request.project === undefined && batch === undefined) refuse(`Batch "${request.batch}" was not found.`);
  const project = request.project ?? batch!.project;
  if (!account.projects.includes(project)) refuse(`Project "${project}" was not found.`);
  if (request.batch !== undefined && batch?.project !== project) refuse(`Batch "${request.batch}" was not found in project "${project}".`);
  if (request.unique_id !== undefined && account.uniqueIdInUse(request.unique_id)) refuse(UNIQUE_ID_IN_USE, 409);
  return { ...request, project };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * A string parameter that, when given, must not be empty. Not documented for an empty project, batch,
 * unique_id or blueprint id: refused rather than read as "not given".
 */
function optionalText(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') refuse(`${key} must be a non-empty string; got ${shown(value)}.`);
  return value as string;
}

function hasScheme(value: unknown, schemes: readonly string[]): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return schemes.includes(url.protocol) && url.host !== '';
  } catch {
    return false;
  }
}

/** One @, something before it, a dotted domain after it, no spaces: what an address needs to be deliverable at all. */
function isEmailAddress(value: string): boolean {
  const at = value.indexOf('@');
  if (at <= 0 || at !== value.lastIndexOf('@') || /\s/.test(value)) return false;
  const domain = value.slice(at + 1);
  return domain.includes('.') && !domain.startsWith('.') && !domain.endsWith('.');
}

/** A value quoted into an error text, short whatever was sent. */
function shown(value: unknown): string {
  const text = value === undefined ? 'nothing' : (JSON.stringify(value) ?? String(value));
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}
