import { describe, expect, it } from 'vitest';
import { decrease, probes, rateAt, ticketGap, ticketsFrom, ticketsPerTake, toMicros, UNLIMITED, type RateState } from '../../../../lambdas/core/scale/rate-rules.js';

// The shared rate's rules, with literal states and literal answers.

/** A state limited at `base` since 0, its schedule due at 1000 (nothing ahead when asked at 1000). */
const limited = (fields: Partial<RateState>): RateState => ({ ...UNLIMITED, epoch: 3, base: 10, holdTickets: 100, changedAt: 0, tat: 1_000, reporters: ['a'], version: 9, ...fields });
const first = <T>(values: Iterable<T>, n: number) => {
  const out: T[] = [];
  for (const value of values) if (out.push(value) >= n) break;
  return out;
};

describe('the rate at a time', () => {
  it('is unlimited while never limited, and again after 60 s without a ticket due', () => {
    expect(rateAt(UNLIMITED, 0)).toBe(Infinity);
    expect(rateAt(limited({ tat: 0 }), 60_000)).toBe(10);
    expect(rateAt(limited({ tat: 0 }), 60_001)).toBe(Infinity);
    // Never limited is unlimited whatever the schedule says (read as 1/s with 5 tickets due, it would probe at 4/s).
    expect(rateAt({ ...UNLIMITED, tat: 1_000, issued: 5, version: 3 }, 1_000)).toBe(Infinity);
  });

  it('holds the base for its hold tickets, then probes +1, +2, +4 a step each (1.2 s of tickets at the step’s rate)', () => {
    // Steps: 11 for 14 tickets (⌈11 × 1.2⌉), 13 for 16, 17 for 21, then 25.
    const at = (issued: number) => rateAt(limited({ issued }), 1_000);
    expect([99, 100, 113, 114, 129, 130, 150, 151].map(at)).toEqual([10, 11, 11, 13, 13, 17, 17, 25]);
  });

  it('counts only the tickets due by now: those still ahead in the schedule have proven nothing', () => {
    // 100 issued, the schedule 500 ms ahead at 10/s: 5 of them not due yet.
    expect(rateAt(limited({ issued: 100, tat: 1_500 }), 1_000)).toBe(10);
    expect(rateAt(limited({ issued: 100, tat: 1_500 }), 1_500)).toBe(11);
  });

  it('holds at most 20 seconds’ worth of tickets before probing', () => {
    expect(rateAt(limited({ base: 2, issued: 39 }), 1_000)).toBe(2);
    expect(rateAt(limited({ base: 2, issued: 40 }), 1_000)).toBe(3);
  });

  it('probes halfway to the lowest rate refused, then past it by +1, +2…', () => {
    expect(first(probes(10, 20), 6)).toEqual([15, 17, 18, 19, 20, 22]);
    expect(first(probes(10, null), 4)).toEqual([11, 13, 17, 25]);
  });

  it('goes unlimited once a probe would pass 1000 requests/s', () => {
    expect(rateAt(limited({ base: 999, holdTickets: 0, issued: 1_199 }), 1_000)).toBe(1_000);
    expect(rateAt(limited({ base: 999, holdTickets: 0, issued: 1_200 }), 1_000)).toBe(Infinity);
  });
});

describe('a decrease', () => {
  it('after a burst’s first 429 opens a discovery of the second before the refused request was sent, and pauses the fleet', () => {
    // Sent at 4,950, refused at 5,000: the shares to come are of (3950, 4950]; none is counted yet.
    expect(decrease({ ...UNLIMITED, reporters: [] }, { sentAt: 4_950, epoch: 0, rate: Infinity }, 5_000, 1_002)).toEqual({
      base: 0, ceiling: null, holdTickets: 100, changedAt: 4_950, discovering: true, suspect: false, resumeAt: 6_002,
    });
  });

  it('after a failed probe keeps the step before it and searches below the probe', () => {
    // From 10 the probes were 11, then 13: 13 refused keeps 11, and probes again at once (13 − 11 > 1).
    expect(decrease(limited({}), { sentAt: 8_990, epoch: 3, rate: 13 }, 9_000, 1_000)).toEqual({ base: 11, ceiling: 13, holdTickets: 0, changedAt: 9_000, discovering: false, suspect: false, resumeAt: null });
    // 11 refused keeps 10, and holds it 100 tickets: nothing lies between.
    expect(decrease(limited({}), { sentAt: 8_990, epoch: 3, rate: 11 }, 9_000, 1_000)).toMatchObject({ base: 10, ceiling: 11, holdTickets: 100 });
  });

  it('at a rate that had held takes one off and marks it suspect', () => {
    expect(decrease(limited({ base: 20 }), { sentAt: 8_990, epoch: 3, rate: 20 }, 9_000, 1_000)).toEqual({ base: 19, ceiling: 20, holdTickets: 100, changedAt: 9_000, discovering: false, suspect: true, resumeAt: null });
  });

  it('at a suspect rate: one more off once that rate held a step, else the limit fell: halve and pause', () => {
    // 19 held a step when 23 tickets (⌈19 × 1.2⌉) were due.
    expect(decrease(limited({ base: 19, suspect: true, issued: 23 }), { sentAt: 8_990, epoch: 3, rate: 19 }, 9_000, 1_000)).toMatchObject({ base: 18, suspect: true, resumeAt: null });
    expect(decrease(limited({ base: 19, suspect: true, issued: 22 }), { sentAt: 8_990, epoch: 3, rate: 19 }, 9_000, 1_000)).toEqual({
      base: 9, ceiling: 19, holdTickets: 11, changedAt: 9_000, discovering: false, suspect: false, resumeAt: 10_000,
    });
  });

  it('never goes below one request per second', () => {
    expect(decrease(limited({ base: 1 }), { sentAt: 8_990, epoch: 3, rate: 1 }, 9_000, 1_000)).toMatchObject({ base: 1 });
    expect(decrease(limited({ base: 1, suspect: true }), { sentAt: 8_990, epoch: 3, rate: 1 }, 9_000, 1_000)).toMatchObject({ base: 1, resumeAt: 10_000 });
  });
});

describe('tickets', () => {
  it('are spaced a window and the margin apart, to the microsecond rounded up', () => {
    expect([ticketGap(20, 2), ticketGap(7, 2), ticketGap(3, 0), ticketGap(20, 50)]).toEqual([50.1, 143.143, 333.334, 52.5]);
    expect([toMicros(50.1), toMicros(1.0000001), toMicros(6_002.0004)]).toEqual([50.1, 1.001, 6_002.001]);
  });

  it('are spaced by a margin of at most one request’s worth: past it, a 429 from jitter costs less than the margin', () => {
    // At 50/s a request is 20 ms of the window: a 50 ms margin would cost 5 % of the rate, one request less 2 %.
    expect([ticketGap(50, 50), ticketGap(50, 20), ticketGap(50, 19), ticketGap(100, 50), ticketGap(1_000, 3)]).toEqual([20.4, 20.4, 20.38, 10.1, 1.001]);
  });

  it('are taken 50 ms’ worth per write, at least one, no more than wait', () => {
    expect([ticketsPerTake(50, 10), ticketsPerTake(5, 10), ticketsPerTake(1_000, 100), ticketsPerTake(1_000, 3)]).toEqual([2, 1, 50, 3]);
  });

  it('follow each other from the first at the gap', () => {
    expect(ticketsFrom(1_000, 3, 50.1, 20, 4)).toEqual([1_000, 1_050.1, 1_100.2].map((sendAt) => ({ sendAt, rate: 20, epoch: 4 })));
  });
});
