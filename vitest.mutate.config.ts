import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/** The fast tests, for mutation testing: everything but the end-to-end suite (each starts a whole local pipeline). */
export default defineConfig({
  test: {
    ...base.test,
    include: ['test/lambdas/**/*.test.ts', 'test/lib/**/*.test.ts'],
    // Waits out a real rate limit (seconds); the flow control it relies on is covered on virtual time.
    exclude: ['test/lambdas/reconcile.test.ts'],
  },
});
