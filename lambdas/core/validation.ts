import type { core, ZodMiniType } from 'zod/mini';

/** Renders a JSON path the way a person writes it: `sensors[2].id`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(root)';
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
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return `must be at least ${String(issue.minimum)}${issue.origin === 'array' ? ' items' : ''}`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)}${issue.origin === 'array' ? ' items' : ''}`;
    case 'invalid_format':
      return `must be a valid ${issue.format}`;
    case 'unrecognized_keys':
      return `unknown key(s) ${issue.keys.join(', ')}`;
    default:
      return 'is invalid';
  }
};

export type Checked<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/** Parses `data`, or lists its problems one per line, each naming the field: "sensors[2].id: has no id". */
export function checkAgainst<T>(schema: ZodMiniType<T>, data: unknown): Checked<T> {
  const result = schema.safeParse(data, { error: defaultMessages });
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: result.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`) };
}
