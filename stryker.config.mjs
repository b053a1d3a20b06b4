// @ts-check
/**
 * `npm run mutate`: mutation testing of the functions' code and the stack, with the fast tests (unit, emulator-backed
 * handler and infra tests; not the end-to-end suite, whose local pipeline costs seconds per mutant). Incremental:
 * a re-run tests only mutants in changed code or covered by changed tests (reports/stryker-incremental.json).
 * The HTML report is reports/mutation/index.html. A score under `break` fails the command.
 *
 * Surviving mutants that are equivalent (no test can tell them from the original), by file, with why. Line numbers
 * are the source's as of this list; the report names each mutant by line, column and replacement.
 *
 * callbacks/
 * - apply-callback.ts:99 `response === undefined ? undefined : serialize(response)` -> `serialize(response)`:
 *   JSON.stringify(undefined) is undefined already.
 * - apply-callback.ts:133 `err instanceof RangeError` -> `true`: stringifying what JSON.parse made can only throw a
 *   RangeError (too deep, too long).
 * - stored-callbacks.ts:18 `?? ''` -> another string (no coverage): GetObject always returns a Body, even for an
 *   empty object.
 * - batch-schedule.ts:31 `lastOfKey.clear()` removed: after a barrier every later item waits for the barrier, which
 *   waited for every earlier item, so a key's earlier entry adds no ordering.
 *
 * scale/
 * - client.ts:201 `spec.body !== undefined ? JSON.stringify(spec.body) : undefined` -> `true ? …`:
 *   JSON.stringify(undefined) is undefined, so no body is sent either way.
 * - client.ts:269 `catch { return undefined; }` -> `catch {}`: the function returns undefined either way.
 * - client.ts:286 `err.name === 'AbortError'` -> `false` / `''`: only AbortSignal.timeout aborts a request here, and
 *   it rejects with TimeoutError on every Node this runs on; the check is for runtimes that say AbortError.
 * - retry.ts:43 `value.trim() === ''` -> `false` / `value === ''` / another string: a blank value goes on to
 *   Date.parse(''), which is NaN, and gives undefined just the same.
 * - schemas.ts:17 `catch { return false; }` -> `catch {}`: a refinement returning undefined fails like false.
 * - flow-control.ts:107 `growthFrom = -Infinity` -> `+Infinity`: growthFrom is read only once the base is finite, and
 *   every path that makes the base finite sets growthFrom first (restartGrowth).
 * - flow-control.ts:136 `!Number.isFinite(this.base)` -> `false`: with an infinite base the growth formula gives
 *   Infinity (or NaN when growth is 0), and every caller treats a rate that is not finite as unlimited.
 * - flow-control.ts:204 `current >= 2` -> `current > 2`: at a rate of exactly 2 (base under 1) the share path
 *   (ceiling ⌊2⌋ − 1) and the step path (⌊2⌋ − 1) both set the rate to 1 with the same growth, and late answers
 *   cannot raise a ceiling of 1.
 * - flow-control.ts:276 `this.lastRetryAfterMs !== undefined` -> `true`: pausedUntil is above 0 only once a 429 gave
 *   a Retry-After, and a turn at pausedUntil past the latest start (an epoch time) is above 0.
 * - flow-control.ts:259 `this.forgetOld(now)` removed (in waitForTurn): settle forgets old entries too, and a send
 *   older than a window and the largest margin can only give a turn time that has already passed.
 * - flow-control.ts:283 `this.sent.length > 1` -> `false`: sends older than a window and the largest margin only give
 *   turn times already past, and the share counts only acceptances of the last second.
 * - flow-control.ts:283 `this.sent[0]! <= now - WINDOW_MS - this.maxMarginMs` -> `<`: a send exactly one window and
 *   margin old limits nothing (its window has ended; spacing uses only the newest send).
 * - flow-control.ts:284 `this.accepted.length > 0` -> `true` / `>= 0`: on an empty list accepted[0] is undefined and
 *   `undefined <= n` is false, so the loop stops there anyway.
 * - flow-control.ts:168 `this.rateAt(now) <= rate` -> `<`: the rate equals `rate` exactly only at the instant growth
 *   restarted at it, and restarting it there again changes nothing.
 * - answer-log.ts:30 `this.accepted.length > 0` -> `true` / `>= 0`: as flow-control.ts:284.
 * - answer-log.ts:55 `this.roundTrips.length < 2` -> `false`: with no round trip the spread is −Infinity, with one it
 *   is 0; the next line gives min(max, 2) for both.
 * - shared-flow-control.ts:47 `version: -1` -> `+1` (the state before the first read): the store's conditions never
 *   look at the version, and the only state of version 0 is the absent item, whose content is this one's.
 * - shared-flow-control.ts:287 `state.version < after.version` -> `<=`: a write's answer has the version it was asked
 *   under only when takeTickets was refused on the very state it holds, and that falls back before learning.
 * - shared-flow-control.ts:62 `readAt = -Infinity` -> `+Infinity`: read() sets it before its first await, and it is
 *   looked at only after start() has read.
 * - shared-flow-control.ts:123 `rate !== null` -> `true`: Number.isFinite(null) is false.
 * - shared-flow-control.ts:217 `answer.tickets.length === 0` -> `true`: a store gives tickets only by writing, and a
 *   write raises the version above that of the state it was asked under.
 * - shared-flow-control.ts:288 `state.version < this.known.version` -> `<=`: a state of the version known has the
 *   same content (every write raises the version): learning it again changes nothing, and a share is written once.
 * - ticket-waiters.ts:57 `i >= 0` -> `true`: a waiter not yet answered, the only kind refuse() gets past its first
 *   check with, is always still in the list.
 *
 * tasks/
 * - export-line.ts:151 `child !== null && typeof child === 'object'` -> `true` / `||` / either operand `true`: a
 *   null or primitive pushed is skipped by the loop's first check when popped, before any depth test; the filter
 *   only keeps them off the stack.
 * - listing-cursor.ts:67 `catch { return undefined; }` -> `catch {}`: the function returns undefined either way.
 * - reconcile.ts:145 `task.unique_id ?? ''` -> another string: a task without unique_id is "not ours" either way,
 *   since neither string matches the uniqueId pattern, which is tested before the id is used.
 * - task-reader.ts:219 `after.updatedAt > lower` -> `>=`: when they are equal the assignment leaves lower unchanged.
 * - task-reader.ts:223, 224 `lower !== undefined` / `upper !== undefined` -> `true`: lib-dynamodb drops an
 *   ExpressionAttributeValues entry whose value is undefined, whatever its marshall options, so the request sent is
 *   the same.
 *
 * scenes/
 * - s3-event.ts:99 `upload.size !== undefined ? { size } : {}` -> `true ? …`: the object only goes through
 *   JSON.stringify, which drops a size of undefined, so the notification text is the same.
 * - scene-content.ts:154 `new Array(items.length)` -> `new Array()`: every index is assigned before Promise.all
 *   resolves, and on a failure nothing is returned.
 * - sfs/reader.ts:52 `named.length < 20` -> `<=`, and :158 `count++ < 20` -> `<=`: summarizeProblems names at most 20
 *   itself and counts the rest from the total, so a 21st entry never shows.
 * - sfs/writer.ts:101 `written < SFS_BINARY_MARKER_BYTES` -> `<=`, and `SFS_BINARY_MARKER_BYTES - written` -> `+`:
 *   written is 0 or at least 8 (the first item is aligned to offset 8), never 4, and both give 4 when it is 0.
 * - sfs/writer.ts:123 `{ objectMode: false }` -> `{}` / `true`: chunks() yields only Uint8Arrays, which the file stream
 *   writes byte for byte in either mode, so the file is the same.
 * - frame-format.ts:56 `text.length <= max` -> `false` / `<`, and :57 `text.length > 2 * max` -> `false`: shortcuts
 *   before counting code points; the count gives the same answer (and stops after max + 1 characters).
 * - frame-format.ts:135 the fast count once enough bad points are named -> `false` / block emptied: the same count and
 *   message, only slower (every point explained by the schema: seconds for a million).
 * - frame-format.ts:172 `message.slice(0, 200)` -> `message`: V8's JSON.parse messages quote a few characters of the
 *   input (at most 68 characters over 300,000 random malformed inputs); the cut is for runtimes that quote more.
 * - pack-frames.ts:81 `a.name > b.name ? 1 : 0` -> `true` / `false` / `>=` / `<=`, and `a.name < b.name` -> `<=`:
 *   V8's sort only asks whether the comparator is negative, so 1 and 0 order alike; two frames of one name and one
 *   timestamp are refused with the same message in either order.
 */
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate: ['lambdas/**/*.ts', 'lib/**/*.ts', '!**/*.d.ts'],
  coverageAnalysis: 'perTest',
  // Static mutants (in module-level code: schemas, constants) each re-import every test file; on two cores they
  // took about half of a run for an eighth of the mutants. The limits they would change are pinned instead by
  // boundary tests with literal values (test/lambdas/core/*/: schemas, config-limits, validation…).
  ignoreStatic: true,
  // The dry run of every fast test takes minutes on a loaded two-core machine.
  dryRunTimeoutMinutes: 20,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['html', 'clear-text', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  thresholds: { high: 90, low: 85, break: 85 },
  concurrency: 2,
  timeoutMS: 20_000,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
