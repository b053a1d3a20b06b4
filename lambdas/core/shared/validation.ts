import type { core, ZodMiniType } from 'zod/mini';

/** Reasons and errors stored on a record or logged stay about this size, whatever the input. */
export const MAX_REASON_BYTES = 1024;

/** A summary of problems leaves room within MAX_REASON_BYTES for the sentence around it. */
const SUMMARY_BYTES = 800;

/** A problem list never names more than this many problems before counting the rest. */
const NAMED_PROBLEMS = 20;

/** Renders a JSON path the way a person writes it: `sensors[2].id`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path.slice(0, 12)) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${clip(String(part), 64)}` : clip(String(part), 64);
  }
  if (path.length > 12) out += '…';
  return out || '(root)';
}

/** Cuts `text` to at most `max` UTF-16 units, marking the cut. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${dropHalfCharacter(text.slice(0, Math.max(0, max - 1)))}…`;
}

/** A cut between the two halves of a surrogate pair leaves half a character (written out as U+FFFD): drop it. */
function dropHalfCharacter(cut: string): string {
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

/** A value from the input, quoted for a message and never longer than a short phrase. */
export function quote(value: unknown, max = 60): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(clip(value, max)) : String(JSON.stringify(value) ?? value);
  } catch {
    text = String(value);
  }
  return clip(text, max + 2);
}

/** Cuts a message to at most `maxBytes` of UTF-8 (never splitting a character), marking the cut. */
export function boundText(text: string, maxBytes = MAX_REASON_BYTES): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let cut = text.slice(0, maxBytes);
  while (Buffer.byteLength(cut, 'utf8') > maxBytes - 3) cut = cut.slice(0, -1);
  return `${dropHalfCharacter(cut)}…`;
}

/**
 * Joins problems into one bounded line: "a; b; c … and 4,998 more problems". The count is exact; the text stays
 * within `maxBytes` however many problems the input had.
 */
export function summarizeProblems(problems: readonly string[], maxBytes = SUMMARY_BYTES, total = problems.length): string {
  const named: string[] = [];
  let bytes = 0;
  for (const problem of problems.slice(0, NAMED_PROBLEMS)) {
    const line = boundText(problem, 300);
    const cost = Buffer.byteLength(line, 'utf8') + 2;
    if (bytes + cost > maxBytes - 40) break;
    named.push(line);
    bytes += cost;
  }
  const rest = total - named.length;
  return rest > 0 ? `${named.join('; ')} … and ${rest} more problem${rest === 1 ? '' : 's'}` : named.join('; ');
}

/**
 * Default wording for issues whose schema gives no message of its own. Passed per parse, so it is the same
 * whether or not some other module loaded zod's locale (zod/mini alone ships none, to stay small).
 */
const defaultMessages: core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => quote(v)).join(', ')}`;
    case 'too_small':
      return `must be at least ${String(issue.minimum)}${issue.origin === 'array' ? ' items' : ''}`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)}${issue.origin === 'array' ? ' items' : ''}`;
    case 'invalid_format':
      return `must be a valid ${issue.format}`;
    case 'unrecognized_keys':
      return `unknown key(s) ${issue.keys.slice(0, 5).map((k) => clip(k, 40)).join(', ')}${issue.keys.length > 5 ? ` and ${issue.keys.length - 5} more` : ''}`;
    default:
      return 'is invalid';
  }
};

export type Checked<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/**
 * Parses `data`, or lists its problems, each naming the field: "sensors[2].id: has no id". Input too large or too
 * deeply nested for the parser is a problem of the input, not a crash.
 */
export function checkAgainst<T>(schema: ZodMiniType<T>, data: unknown): Checked<T> {
  let result: ReturnType<typeof schema.safeParse>;
  try {
    result = schema.safeParse(data, { error: defaultMessages });
  } catch (err) {
    if (err instanceof RangeError) return { ok: false, problems: ['(root): too large or too deeply nested to check'] };
    throw err;
  }
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: result.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`) };
}

/**
 * Checks every element of a (possibly huge) array against `schema`, one at a time, stopping after a handful of
 * problems: one schema over the whole array would collect an issue per element, which for hostile input is
 * slow, unbounded and can overflow the stack.
 */
export function checkEach<T>(schema: ZodMiniType<T>, items: readonly unknown[], path: string, maxNamed = NAMED_PROBLEMS): Checked<T[]> & { failed?: number } {
  const values: T[] = [];
  const problems: string[] = [];
  let failed = 0;
  for (const [i, item] of items.entries()) {
    const checked = checkAgainst(schema, item);
    if (checked.ok) {
      values.push(checked.value);
      continue;
    }
    failed++;
    // One entry per failing element, so the count of what is not named is exact.
    const at = (p: string) => (p.startsWith('(root)') ? `${path}[${i}]${p.slice('(root)'.length)}` : `${path}[${i}].${p}`);
    if (problems.length < maxNamed) problems.push(checked.problems.slice(0, 3).map(at).join('; '));
  }
  return failed === 0 ? { ok: true, value: values } : { ok: false, problems, failed };
}
