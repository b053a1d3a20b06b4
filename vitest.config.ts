import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Emulator-backed suites start their own servers on free ports; keep parallelism modest for a 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
  },
});
