// @ts-check
/**
 * `npm run mutate`: mutation testing of the functions' code and the stack, with the fast tests (unit, emulator-backed
 * handler and infra tests; not the end-to-end suite, whose local pipeline costs seconds per mutant). Incremental:
 * a re-run tests only mutants in changed code or covered by changed tests (reports/stryker-incremental.json).
 * The HTML report is reports/mutation/index.html. A score under `break` fails the command.
 *
 * Surviving mutants that are equivalent (no test can tell them apart from the original), with why:
 * - callbacks/apply-callback.ts:99 `response === undefined ? undefined : serialize(response)` -> `serialize(response)`:
 *   JSON.stringify(undefined) is undefined already.
 * - callbacks/apply-callback.ts:133 `err instanceof RangeError` -> `true`: stringifying what JSON.parse made can only
 *   throw a RangeError (too deep, too long).
 * - callbacks/stored-callbacks.ts:18 `?? ''` -> another string (no coverage): GetObject always returns a Body, even
 *   for an empty object.
 * - callbacks/batch-schedule.ts:31 `lastOfKey.clear()` removed: after a barrier every later item waits for the
 *   barrier, which waited for every earlier item, so a key's earlier entry adds no ordering.
 * - scale/client.ts:198 `spec.body !== undefined ? JSON.stringify(spec.body) : undefined` -> `true ? …`:
 *   JSON.stringify(undefined) is undefined, so no body is sent either way.
 * - scale/client.ts:248 `catch { return undefined; }` -> `catch {}`: the function returns undefined either way.
 * - scale/client.ts:265 `err.name === 'AbortError'` -> `false` / `''`: only AbortSignal.timeout aborts a request
 *   here, and it rejects with TimeoutError on every Node this runs on; the check is for runtimes that say AbortError.
 * - scale/retry.ts:43 `value.trim() === ''` -> `false` / `value === ''` / another string: a blank value goes on to
 *   Date.parse(''), which is NaN, and gives undefined just the same.
 * - scale/schemas.ts:17 `catch { return false; }` -> `catch {}`: a refinement returning undefined fails like false.
 * - scale/flow-control.ts:255 `this.sent[0]! <= now - WINDOW_MS - this.maxMarginMs` -> `<`: a send exactly one
 *   window and margin old limits nothing (its window has ended; spacing uses only the newest send).
 * The other survivors in scale/flow-control.ts (23, and one without coverage: the fine structure of share measurement,
 * window bookkeeping and the reason's wording) are not equivalent; they wait for tests on virtual time.
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
