import { describe, expect, it } from 'vitest';
import type { Turn } from '../../../../lambdas/core/scale/flow-control.js';
import type { Ticket } from '../../../../lambdas/core/scale/rate-rules.js';
import { TicketWaiters, type TicketOutcome } from '../../../../lambdas/core/scale/ticket-waiters.js';
import { VirtualClock } from './virtual-time.js';

// The requests of one instance waiting for tickets, on virtual time, with literal times and tickets.

/** Waiters whose refusals name the time the ticket would have come, and are kept (to count them). */
function waiters() {
  const clock = new VirtualClock();
  const refusals: number[] = [];
  const refusal = (at: number): Turn => {
    refusals.push(at);
    return { ok: false, waitMs: at, reason: `turn at ${at}` };
  };
  return { clock, refusals, waiters: new TicketWaiters(clock, refusal) };
}

const ticket = (sendAt: number): Ticket => ({ sendAt, rate: 10, epoch: 2 });
const refused = (at: number): Turn => ({ ok: false, waitMs: at, reason: `turn at ${at}` });

/** The outcome once pending callbacks have run, or 'pending' (a waiter never answered fails fast, not by timeout). */
const outcomeOf = (outcome: Promise<TicketOutcome>) => Promise.race([outcome, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);

describe('ticket waiters', () => {
  it('wait for a ticket the schedule gives exactly at the latest start, and take it', async () => {
    const { waiters: w, refusals } = waiters();
    const outcome = w.wait(100, () => 100);
    expect(await outcomeOf(outcome)).toBe('pending');
    expect(w.length).toBe(1);
    w.deliver(ticket(100));
    expect(await outcomeOf(outcome)).toEqual(ticket(100));
    expect([w.length, refusals]).toEqual([0, []]);
  });

  it('refuse, with the ticket’s time, a waiter a ticket comes too late for, and give it to the next', async () => {
    const { waiters: w, refusals } = waiters();
    const early = w.wait(100, (position) => 50 + 100 * position);
    const later = w.wait(300, (position) => 50 + 100 * position);
    w.deliver(ticket(150));
    expect(await outcomeOf(early)).toEqual(refused(150));
    expect(await outcomeOf(later)).toEqual(ticket(150));
    expect([w.length, refusals]).toEqual([0, [150]]);
  });

  it('never refuse a request without a latest start, however long its ticket takes', async () => {
    const { waiters: w, clock, refusals } = waiters();
    const outcome = w.wait(Infinity, () => 0);
    await clock.run();
    expect(await outcomeOf(outcome)).toBe('pending');
    w.deliver(ticket(60_000));
    expect(await outcomeOf(outcome)).toEqual(ticket(60_000));
    expect(refusals).toEqual([]);
  });

  it('answer once: one given its ticket is not refused when its latest start comes', async () => {
    const { waiters: w, clock, refusals } = waiters();
    const outcome = w.wait(100, () => 50);
    w.deliver(ticket(50));
    await clock.run();
    expect(clock.now()).toBe(100);
    expect(await outcomeOf(outcome)).toEqual(ticket(50));
    expect(refusals).toEqual([]);
  });

  it('refuse one still waiting at its latest start, then, with when the schedule would give it its ticket', async () => {
    const { waiters: w, clock, refusals } = waiters();
    const outcome = w.wait(100, (position) => 80 + 30 * position);
    await clock.run(99);
    expect(await outcomeOf(outcome)).toBe('pending');
    await clock.run(100);
    // Alone in the queue when refused: position 0.
    expect(await outcomeOf(outcome)).toEqual(refused(80));
    expect([w.length, refusals]).toEqual([0, [80]]);
  });

  it('let every waiter ask anew', async () => {
    const { waiters: w } = waiters();
    const outcomes = [w.wait(100, () => 0), w.wait(Infinity, () => 0)];
    w.releaseAll();
    expect(await Promise.all(outcomes.map(outcomeOf))).toEqual(['again', 'again']);
    expect(w.length).toBe(0);
  });
});
