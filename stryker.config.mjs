// @ts-check
/**
 * `npm run mutate`: mutation testing of the functions' code and the stack, with the fast tests (unit, emulator-backed
 * handler and infra tests; not the end-to-end suite, whose local pipeline costs seconds per mutant). Incremental:
 * a re-run tests only mutants in changed code or covered by changed tests (reports/stryker-incremental.json).
 * The HTML report is reports/mutation/index.html. A score under `break` fails the command.
 *
 * Surviving mutants that are equivalent (no test can tell them apart from the original) are listed below with why.
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
