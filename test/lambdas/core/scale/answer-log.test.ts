import { describe, expect, it } from 'vitest';
import { AnswerLog } from '../../../../lambdas/core/scale/answer-log.js';

// What one instance's answers tell the shared rate, with literal times.

describe('answer log', () => {
  it('counts the accepted requests sent in the second up to a time, by when they were sent', () => {
    const log = new AnswerLog(50);
    for (const sentAt of [0, 1, 500, 1_000, 1_001]) log.answered({ sentAt }, true, 1_500);
    log.answered({ sentAt: 800 }, false, 1_500);
    // (0, 1000]: 1, 500 and 1000; (−1, 999]: 0, 1 and 500; (500, 1500]: 1000 and 1001. Refused ones never count.
    expect([log.acceptedIn(1_000), log.acceptedIn(999), log.acceptedIn(1_500), log.acceptedIn(-1)]).toEqual([3, 3, 2, 0]);
  });

  it('knows which answers to requests sent by a time are still to come', () => {
    const log = new AnswerLog(50);
    const [early, late] = [{ sentAt: 100 }, { sentAt: 300 }];
    log.sent(early);
    log.sent(late);
    expect([log.unansweredUntil(99), log.unansweredUntil(100), log.unansweredUntil(300)]).toEqual([0, 1, 2]);
    log.answered(early, true, 400);
    expect(log.unansweredUntil(300)).toBe(1);
    // One never answered is let go of after 10 s.
    expect(log.unansweredUntil(10_300)).toBe(1);
    expect(log.unansweredUntil(10_301)).toBe(0);
  });

  it('forgets acceptances eleven seconds after they were sent', () => {
    const log = new AnswerLog(50);
    log.answered({ sentAt: 0 }, true, 10);
    log.answered({ sentAt: 5_000 }, true, 10_999);
    expect(log.acceptedIn(900)).toBe(1);
    log.answered({ sentAt: 5_001 }, true, 11_000);
    expect(log.acceptedIn(900)).toBe(0);
  });

  it('keeps a margin of 2 ms until round trips are known, then 1.25 × their spread, at most the maximum', () => {
    const log = new AnswerLog(50);
    expect(log.margin()).toBe(2);
    log.answered({ sentAt: 0 }, true, 30);
    expect(log.margin()).toBe(2);
    log.answered({ sentAt: 0 }, true, 38);
    expect(log.margin()).toBe(10);
    // Refused answers come back without Scale's work: they do not widen the spread.
    log.answered({ sentAt: 0 }, false, 1);
    expect(log.margin()).toBe(10);
    log.answered({ sentAt: 0 }, true, 130);
    expect(log.margin()).toBe(50);
  });

  it('bases the margin on the last 64 round trips', () => {
    const log = new AnswerLog(1_000);
    // One slow round trip (100 ms), then 63 of 10 ms: all 64 kept, a spread of 90 ms.
    log.answered({ sentAt: 0 }, true, 100);
    for (let i = 0; i < 63; i++) log.answered({ sentAt: 0 }, true, 10);
    expect(log.margin()).toBe(112.5);
    // The 65th pushes the slow one out.
    log.answered({ sentAt: 0 }, true, 10);
    expect(log.margin()).toBe(2);
  });

  it('never goes past its maximum, even one below the default margin', () => {
    const log = new AnswerLog(0);
    expect(log.margin()).toBe(0);
    log.answered({ sentAt: 0 }, true, 30);
    expect(log.margin()).toBe(0);
    log.answered({ sentAt: 0 }, true, 38);
    expect(log.margin()).toBe(0);
  });
});
