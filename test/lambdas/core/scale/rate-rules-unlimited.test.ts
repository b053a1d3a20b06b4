import { describe, expect, it, vi } from 'vitest';

// The state of a store that holds none (UNLIMITED). Imported afresh in each test: the state is built once, when the
// module loads, and each test must see the module as it is now.
const freshStore = async () => {
  vi.resetModules();
  const { MemoryRateStore } = await import('../../../../lambdas/core/scale/rate-store.js');
  return new MemoryRateStore();
};

describe('a rate store that holds no state', () => {
  it('reads as never limited: no decrease, no ticket ever due, no discovery, nobody reported', async () => {
    expect(await (await freshStore()).read()).toEqual({
      epoch: 0,
      base: null,
      ceiling: null,
      issued: 0,
      holdTickets: 0,
      changedAt: -Infinity,
      tat: -Infinity,
      discovering: false,
      suspect: false,
      reporters: [],
      version: 0,
    });
  });

  it('adds no share: no 429 has opened a discovery', async () => {
    const store = await freshStore();
    const after = await store.reportShare(0, 'instance-a', 7);
    expect([after.base, after.reporters, after.version]).toEqual([null, [], 0]);
  });
});
