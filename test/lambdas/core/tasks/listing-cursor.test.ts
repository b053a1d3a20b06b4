import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, InvalidCursorError, normalise, positionIn, statusesOf } from '../../../../lambdas/core/tasks/listing-cursor.js';

const NOT_A_CURSOR = 'this is not a cursor of a task listing (copy it whole from the "next cursor" line)';
/** A cursor as a hand-edited or foreign one would be: any JSON, base64url-encoded. */
const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** What the CLI reads of a cursor: the listing it continues. */
const decoded = (cursor: string) => {
  const { order, query } = decodeCursor(cursor);
  return { order, query };
};
const valid = { v: 1, order: 'newest', at: '2026-01-01T00:00:00.000Z', id: 'sfs-1' };

describe('normalise: one spelling per listing, so a cursor matches however the filters were given', () => {
  it('orders statuses as TASK_STATUSES, drops repeats, and drops the list when it names every status', () => {
    expect(normalise({ statuses: ['failed', 'pending', 'failed', 'submitting'] })).toEqual({ statuses: ['submitting', 'pending', 'failed'] });
    expect(normalise({ statuses: ['failed', 'create_failed', 'rejected', 'canceled', 'error', 'completed', 'pending', 'submitting'] })).toEqual({});
    expect(normalise({ statuses: ['failed', 'create_failed', 'rejected', 'canceled', 'error', 'completed', 'pending'] })).toEqual({ statuses: ['pending', 'completed', 'error', 'canceled', 'rejected', 'create_failed', 'failed'] });
    expect(normalise({ statuses: [] })).toEqual({ statuses: [] });
  });

  it('keeps every filter given, even an empty one, and nothing else', () => {
    expect(normalise({})).toEqual({});
    expect(normalise({ since: '', project: '', keyPrefix: '' })).toEqual({ since: '', project: '', keyPrefix: '' });
    expect(normalise({ keyPrefix: 'drive/', project: 'p', since: '2026' })).toEqual({ since: '2026', project: 'p', keyPrefix: 'drive/' });
    expect(Object.keys(normalise({ since: undefined, project: undefined, keyPrefix: undefined, statuses: undefined }))).toEqual([]);
  });

  it('reads every status when none is named', () => {
    expect(statusesOf({})).toEqual(['submitting', 'pending', 'completed', 'error', 'canceled', 'rejected', 'create_failed', 'failed']);
    expect(statusesOf({ statuses: ['error'] })).toEqual(['error']);
  });
});

describe('a cursor: the whole listing and the position, and nothing else accepted', () => {
  it('encodes the order, the query and the last record given, as base64url JSON', () => {
    const cursor = encodeCursor('oldest', { statuses: ['error'], since: 's', project: 'p', keyPrefix: 'k/' }, { updatedAt: '2026-02-03T04:05:06.007Z', uniqueId: 'sfs-9' });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))).toEqual({ v: 1, order: 'oldest', statuses: ['error'], since: 's', project: 'p', keyPrefix: 'k/', at: '2026-02-03T04:05:06.007Z', id: 'sfs-9' });
    expect(decoded(cursor)).toEqual({ order: 'oldest', query: { statuses: ['error'], since: 's', project: 'p', keyPrefix: 'k/' } });
    expect(positionIn(cursor, 'oldest', { statuses: ['error'], since: 's', project: 'p', keyPrefix: 'k/' })).toEqual({ updatedAt: '2026-02-03T04:05:06.007Z', uniqueId: 'sfs-9' });
  });

  it('continues a listing whose cursor spells the same filters another way', () => {
    const cursor = forged({ ...valid, statuses: ['failed', 'error', 'error'] });
    expect(decoded(cursor)).toEqual({ order: 'newest', query: { statuses: ['error', 'failed'] } });
    expect(positionIn(cursor, 'newest', { statuses: ['error', 'failed'] })).toEqual({ updatedAt: valid.at, uniqueId: 'sfs-1' });
    const every = forged({ ...valid, statuses: ['submitting', 'pending', 'completed', 'error', 'canceled', 'rejected', 'create_failed', 'failed'] });
    expect(positionIn(every, 'newest', {})).toEqual({ updatedAt: valid.at, uniqueId: 'sfs-1' });
  });

  it('refuses a cursor of the other order, or of other filters, saying which listing it continues', () => {
    const cursor = forged({ ...valid, project: 'p' });
    expect(() => positionIn(cursor, 'oldest', { project: 'p' })).toThrow(new InvalidCursorError('this cursor continues a listing newest first, not oldest first'));
    expect(() => positionIn(cursor, 'newest', { project: 'q' })).toThrow(
      new InvalidCursorError('this cursor continues another listing ({"project":"p"}), not {"project":"q"}: give the same filters, or start without a cursor'),
    );
    expect(() => positionIn(cursor, 'newest', {})).toThrow(/continues another listing/);
    expect(() => positionIn(forged(valid), 'newest', { since: '' })).toThrow(/continues another listing \(\{\}\), not \{"since":""\}/);
  });

  it('refuses anything that is not a cursor this reader wrote, with one clear reason', () => {
    const bad = [
      'not a cursor at all!',
      Buffer.from('{"v":1,').toString('base64url'),
      forged(null),
      forged({ ...valid, v: 2 }),
      forged({ ...valid, order: 'sideways' }),
      forged({ ...valid, statuses: [] }),
      forged({ ...valid, statuses: ['done'] }),
      forged({ ...valid, at: undefined }),
      forged({ ...valid, id: 7 }),
      forged({ ...valid, project: 1 }),
    ];
    for (const cursor of bad) {
      expect(() => decodeCursor(cursor)).toThrow(new InvalidCursorError(NOT_A_CURSOR));
      let thrown: unknown;
      try {
        positionIn(cursor, 'newest', {});
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(InvalidCursorError);
      expect((thrown as Error).name).toBe('InvalidCursorError');
    }
    expect(decoded(forged(valid))).toEqual({ order: 'newest', query: {} });
  });
});
