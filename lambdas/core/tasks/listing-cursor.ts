import * as z from 'zod/mini';
import { checkAgainst } from '../shared/validation.js';
import { TASK_STATUSES, type TaskStatus } from './task-record.js';

// A listing of task records (TaskReader's list and iterate) and the cursor that resumes it.

/** Which records a listing covers. Every field narrows it; none given: every record. */
export interface ListQuery {
  /** Default: every status (TASK_STATUSES), each read from the byStatus index, never by a Scan. */
  statuses?: readonly TaskStatus[];
  /** Only records updated at or after this ISO time. */
  since?: string;
  project?: string;
  /** Only object keys starting with this. */
  keyPrefix?: string;
}

/** newest: by updatedAt descending (list); oldest: ascending (export). Ties broken by uniqueId, the same way. */
export type ListOrder = 'newest' | 'oldest';

/** Where a listing stopped: the last record it gave, in its total order (updatedAt, then uniqueId). */
export type Position = { updatedAt: string; uniqueId: string };

/** A cursor that is not one this reader wrote, or that continues a different listing. */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}

/**
 * A cursor carries the whole listing (order, query) and the position, so it resumes exactly that listing even
 * when the records around it change, and cannot be applied to another one by mistake.
 */
const CursorSchema = z.object({
  v: z.literal(1),
  order: z.enum(['newest', 'oldest']),
  statuses: z.optional(z.array(z.enum(TASK_STATUSES)).check(z.minLength(1))),
  since: z.optional(z.string()),
  project: z.optional(z.string()),
  keyPrefix: z.optional(z.string()),
  at: z.string(),
  id: z.string(),
});

/** The query a cursor continues (statuses in TASK_STATUSES order, absent when all), and its order. */
export const decodeCursor = (cursor: string): { order: ListOrder; query: ListQuery } => parseCursor(cursor);

export function normalise(query: ListQuery): ListQuery {
  const statuses = query.statuses === undefined ? undefined : TASK_STATUSES.filter((status) => query.statuses!.includes(status));
  return {
    ...(statuses !== undefined && statuses.length < TASK_STATUSES.length ? { statuses } : {}),
    ...(query.since !== undefined ? { since: query.since } : {}),
    ...(query.project !== undefined ? { project: query.project } : {}),
    ...(query.keyPrefix !== undefined ? { keyPrefix: query.keyPrefix } : {}),
  };
}

export const statusesOf = (query: ListQuery): readonly TaskStatus[] => query.statuses ?? TASK_STATUSES;

export function encodeCursor(order: ListOrder, query: ListQuery, last: Position): string {
  return Buffer.from(JSON.stringify({ v: 1, order, ...query, at: last.updatedAt, id: last.uniqueId })).toString('base64url');
}

function parseCursor(cursor: string): { order: ListOrder; query: ListQuery; position: Position } {
  const json = (() => {
    try {
      return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    } catch {
      return undefined;
    }
  })();
  const parsed = checkAgainst(CursorSchema, json);
  if (!parsed.ok) throw new InvalidCursorError('this is not a cursor of a task listing (copy it whole from the "next cursor" line)');
  const { order, at, id, statuses, since, project, keyPrefix } = parsed.value;
  return { order, query: normalise({ statuses, since, project, keyPrefix }), position: { updatedAt: at, uniqueId: id } };
}

/** The cursor's position, when it continues this very listing. */
export function positionIn(cursor: string, order: ListOrder, query: ListQuery): Position {
  const parsed = parseCursor(cursor);
  if (parsed.order !== order) throw new InvalidCursorError(`this cursor continues a listing ${parsed.order} first, not ${order} first`);
  if (JSON.stringify(parsed.query) !== JSON.stringify(query)) {
    throw new InvalidCursorError(`this cursor continues another listing (${JSON.stringify(parsed.query)}), not ${JSON.stringify(query)}: give the same filters, or start without a cursor`);
  }
  return parsed.position;
}
