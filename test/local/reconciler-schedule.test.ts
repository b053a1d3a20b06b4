import { describe, expect, it } from 'vitest';
import { startReconciler } from '../../local/reconciler.js';
import { eventually } from '../helpers/http.js';

describe('local reconciler schedule', () => {
  it('runs the reconciler on its interval (one scheduled run at a time) and on demand', async () => {
    let runs = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    const reconciler = await startReconciler({
      invoke: async () => {
        runs++;
        maxConcurrent = Math.max(maxConcurrent, ++concurrent);
        await new Promise((resolve) => setTimeout(resolve, 120)); // longer than the interval
        concurrent--;
        return { checked: 0, missingStates: 0, adopted: 0, resubmitted: 0, retriedErrors: 0, failedProjects: 0, errors: [] };
      },
      redrive: async () => ({ moved: 7 }),
      everyMs: 50,
      logs: { write: () => true } as never,
    });
    try {
      await eventually(() => (runs >= 3 ? true : undefined), 5_000, 'three scheduled runs');
      expect(maxConcurrent).toBe(1);
      const answer = await fetch(`${reconciler.controlUrl}/reconcile`, { method: 'POST' });
      expect(answer.status).toBe(200);
      expect(await answer.json()).toEqual({ checked: 0, missingStates: 0, adopted: 0, resubmitted: 0, retriedErrors: 0, failedProjects: 0, errors: [] });
      const redrive = await fetch(`${reconciler.controlUrl}/redrive`, { method: 'POST' });
      expect([redrive.status, await redrive.json()]).toEqual([200, { moved: 7 }]);
      expect((await fetch(`${reconciler.controlUrl}/redrive`)).status).toBe(405);
      expect((await fetch(`${reconciler.controlUrl}/other`, { method: 'POST' })).status).toBe(404);
    } finally {
      await reconciler.close();
    }
    const after = runs;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(runs).toBe(after); // closed: no more runs
  });
});
