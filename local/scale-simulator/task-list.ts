import type { SimTask } from './lifecycle.js';

/** One page of GET /v1/tasks, in Scale's shape. */
export interface TaskListPage {
  docs: SimTask[];
  total: number;
  limit: number;
  offset: number;
  has_more: boolean;
  next_token: string | null;
}

export type TaskListOutcome = { ok: true; page: TaskListPage } | { ok: false; error: string };

/** Where the previous page ended: the last task it held, in the list's order. */
interface Cursor {
  created_at: string;
  task_id: string;
}

const MAX_LIMIT = 100;

/**
 * GET /v1/tasks as SCALE-API.md describes it: filters on project, batch, status, type and unique_id (one, a comma
 * list, or the parameter repeated), updated_after/updated_before on updated_at, start_time/end_time on created_at;
 * newest created_at first; `limit` 1–100 (default 100); `next_token` pages.
 *
 * Choices where Scale documents nothing, made so that a client cannot come to depend on something Scale may not do:
 * - A list without project, batch or unique_id is refused (400), as Scale's Python client refuses to send one.
 * - Time bounds are half-open: `updated_after`/`start_time` include their instant, `updated_before`/`end_time`
 *   exclude it, so consecutive windows neither overlap nor leave a gap. A bound that is not a date is a 400.
 * - `next_token` is opaque (a cursor, not an offset): tasks created while a client pages, which sort first, do
 *   not shift the later pages, so no task is skipped or repeated. A token the simulator did not issue is a 400.
 * - A `limit` outside 1–100 or not an integer is a 400 rather than silently clamped.
 */
export function listTasks(tasks: Iterable<SimTask>, query: URLSearchParams): TaskListOutcome {
  const uniqueIds = query.getAll('unique_id').flatMap((value) => value.split(',')).map((id) => id.trim()).filter((id) => id !== '');
  if (!query.get('project') && !query.get('batch') && uniqueIds.length === 0) {
    return { ok: false, error: 'Please provide a project, batch or unique_id to list tasks.' };
  }
  const limitText = query.get('limit');
  const limit = limitText === null ? MAX_LIMIT : /^\d+$/.test(limitText) ? Number(limitText) : NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT)) return { ok: false, error: `Invalid limit "${limitText}": it must be an integer from 1 to ${MAX_LIMIT}.` };

  const bounds: Array<[name: string, field: 'updated_at' | 'created_at', inclusiveLower: boolean]> = [
    ['updated_after', 'updated_at', true],
    ['updated_before', 'updated_at', false],
    ['start_time', 'created_at', true],
    ['end_time', 'created_at', false],
  ];
  const timeFilters: Array<(task: SimTask) => boolean> = [];
  for (const [name, field, lower] of bounds) {
    const text = query.get(name);
    if (text === null) continue;
    const bound = Date.parse(text);
    if (Number.isNaN(bound)) return { ok: false, error: `Invalid ${name} "${text}": it must be a date.` };
    timeFilters.push(lower ? (t) => Date.parse(t[field]) >= bound : (t) => Date.parse(t[field]) < bound);
  }

  let cursor: Cursor | undefined;
  const token = query.get('next_token');
  if (token !== null && token !== '') {
    cursor = decodeCursor(token);
    if (!cursor) return { ok: false, error: `Invalid next_token "${token}".` };
  }

  const exact = (name: string, value: string | undefined) => !query.has(name) || query.get(name) === value;
  const matches = [...tasks]
    .filter((t) => uniqueIds.length === 0 || (t.unique_id !== undefined && uniqueIds.includes(t.unique_id)))
    .filter((t) => exact('project', t.project) && exact('batch', t.batch) && exact('status', t.status) && exact('type', t.type))
    .filter((t) => timeFilters.every((keep) => keep(t)))
    .sort(newestFirst);
  const offset = cursor ? matches.filter((t) => newestFirst(t, cursor) <= 0).length : 0;
  const docs = matches.slice(offset, offset + limit);
  const hasMore = offset + docs.length < matches.length;
  const last = docs.at(-1);
  return {
    ok: true,
    page: { docs, total: matches.length, limit, offset, has_more: hasMore, next_token: hasMore && last ? encodeCursor(last) : null },
  };
}

/** Newest created_at first; task_id breaks a tie, so the order (and so paging) is total. */
function newestFirst(a: Cursor, b: Cursor): number {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.task_id < b.task_id ? 1 : a.task_id > b.task_id ? -1 : 0;
}

function encodeCursor(task: SimTask): string {
  return Buffer.from(JSON.stringify({ created_at: task.created_at, task_id: task.task_id })).toString('base64url');
}

function decodeCursor(token: string): Cursor | undefined {
  try {
    const value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<Cursor>;
    return typeof value.created_at === 'string' && typeof value.task_id === 'string' ? { created_at: value.created_at, task_id: value.task_id } : undefined;
  } catch {
    return undefined;
  }
}
