import { describe, expect, it } from 'vitest';
import type { Permit, Turn } from '../../../../lambdas/core/scale/flow-control.js';
import { UNLIMITED, type RateState } from '../../../../lambdas/core/scale/rate-rules.js';
import { MemoryRateStore } from '../../../../lambdas/core/scale/rate-store.js';
import { SharedFlowControl } from '../../../../lambdas/core/scale/shared-flow-control.js';
import { VirtualClock } from './virtual-time.js';

// A discovery's shares, one instance on virtual time against the in-memory store (it answers at once): which
// answers a share waits for, how long, and that it is written once and only when there is something to add.

/** The in-memory store, counting the shares reported to it (accepted or refused). */
class ShareCountingStore extends MemoryRateStore {
  shareReports = 0;
  override reportShare(epoch: number, instance: string, share: number): Promise<RateState> {
    this.shareReports++;
    return super.reportShare(epoch, instance, share);
  }
}

const granted = async (turn: Promise<Turn>): Promise<Permit> => {
  const t = await turn;
  if (!t.ok) throw new Error(t.reason);
  return t.permit;
};

/**
 * An instance `me` that sent three requests unlimited at 0: the first accepted at once, the third refused (it opens
 * the discovery, the fleet resuming `retryAfterMs` and a 2 ms margin later), the second still unanswered.
 */
async function discoveredWithOneUnanswered(retryAfterMs: number) {
  const clock = new VirtualClock();
  const store = new ShareCountingStore();
  const flow = new SharedFlowControl(store, { clock, instanceId: 'me' });
  const [accepted, unanswered, refused] = await Promise.all([1, 2, 3].map(() => granted(flow.acquire(Infinity))));
  flow.settle(accepted!, { rateLimited: false });
  flow.settle(refused!, { rateLimited: true, retryAfterMs });
  await clock.run(0);
  return { clock, store, flow, unanswered: unanswered! };
}

describe('a discovery’s share', () => {
  it('waits for an answer that never comes until the fleet resumes, then adds what was accepted', async () => {
    const { clock, store } = await discoveredWithOneUnanswered(1_008);
    expect(store.item).toMatchObject({ epoch: 1, base: 0, discovering: true, changedAt: 0, tat: 1_010, reporters: [] });
    await clock.run(1_005);
    expect(store.item).toMatchObject({ base: 0, reporters: [] });
    // The share's wait ends with the pause (at 1010, looked at every 10 ms): the one request accepted.
    await clock.run(1_010);
    expect(store.item).toMatchObject({ base: 1, reporters: ['me'] });
  });

  it('has a window to come in, even when the 429 says Retry-After 0: the fleet pauses a window and the margin', async () => {
    const { clock, store, flow, unanswered } = await discoveredWithOneUnanswered(0);
    expect(store.item).toMatchObject({ epoch: 1, base: 0, discovering: true, tat: 1_002, reporters: [] });
    await clock.run(300);
    flow.settle(unanswered, { rateLimited: false });
    await clock.run(310);
    expect(store.item).toMatchObject({ base: 2, reporters: ['me'] });
  });

  it('is added once the answer it waits for is in', async () => {
    const { clock, store, flow, unanswered } = await discoveredWithOneUnanswered(1_000);
    await clock.run(300);
    flow.settle(unanswered, { rateLimited: false });
    await clock.run(310);
    expect(store.item).toMatchObject({ base: 2, reporters: ['me'] });
  });

  it('is written once, however often the instance learns of the discovery before it is', async () => {
    const { clock, store, flow } = await discoveredWithOneUnanswered(1_000);
    // A request meanwhile takes a ticket (at 952, 50 ms before it is due): the discovery is learnt again from it.
    const next = granted(flow.acquire(Infinity));
    await clock.run(960);
    expect(store.item).toMatchObject({ epoch: 1, tat: 2_004, reporters: [] });
    await clock.run(1_100);
    expect(store.item).toMatchObject({ base: 1, reporters: ['me'] });
    expect((await next).sentAt).toBe(1_002);
    // Past the schedule the ticket left (2004), no second report was waiting for its answers.
    await clock.run(2_100);
    expect(store.shareReports).toBe(1);
  });

  it('is not written when Scale accepted nothing from the instance in that second', async () => {
    const clock = new VirtualClock();
    const store = new ShareCountingStore();
    // Another instance's discovery: its request refused at 0, the fleet resuming at 1000.
    store.item = { ...UNLIMITED, epoch: 1, base: 3, holdTickets: 100, changedAt: 0, tat: 1_000, discovering: true, reporters: ['other'], version: 2 };
    const flow = new SharedFlowControl(store, { clock, instanceId: 'idle' });
    void flow.acquire(Infinity);
    await clock.run(100);
    expect(store.shareReports).toBe(0);
    expect(store.item).toMatchObject({ base: 3, reporters: ['other'], version: 2 });
  });

  it('waits for the answers to requests sent unlimited only: one sent on a ticket does not hold it back', async () => {
    const clock = new VirtualClock();
    const store = new ShareCountingStore();
    store.item = { ...UNLIMITED, epoch: 1, base: 10, holdTickets: 100, changedAt: 0, tat: 0, reporters: ['other'], version: 1 };
    const flow = new SharedFlowControl(store, { clock, instanceId: 'me' });
    // Two requests on tickets at 10/s: the first (at 20) accepted, the second (at 120.2) not answered yet.
    const first = granted(flow.acquire(Infinity));
    await clock.run(50);
    flow.settle(await first, { rateLimited: false });
    const second = granted(flow.acquire(Infinity));
    await clock.run(121);
    expect((await second).sentAt).toBe(120.2);
    // Another instance discovers a limit anew (its request sent unlimited at 130); this one learns of it with its
    // next ticket, taken at 170.4.
    store.item = { ...UNLIMITED, epoch: 2, base: 0, holdTickets: 100, changedAt: 130, tat: 1_130, discovering: true, reporters: ['other'], version: 10 };
    void flow.acquire(Infinity);
    await clock.run(200);
    expect(store.item).toMatchObject({ epoch: 2, base: 1, reporters: ['other', 'me'] });
  });
});
