import type { FlowClock, Turn } from './flow-control.js';
import type { Ticket } from './rate-rules.js';

/** What a request waiting for a ticket hears: its ticket, a refusal (too late for its latest start), or 'again'. */
export type TicketOutcome = Ticket | Turn | 'again';

interface Waiter {
  latestStart: number;
  done: boolean;
  resolve: (outcome: TicketOutcome) => void;
}

/**
 * The requests of one instance waiting for tickets, first come first served, each answered once and by its latest
 * start at the latest, however long the store takes.
 */
export class TicketWaiters {
  private readonly waiting: Waiter[] = [];

  constructor(
    private readonly clock: FlowClock,
    /** The refusal for a request whose ticket would come at `at`. */
    private readonly refusal: (at: number) => Turn,
  ) {}

  get length(): number {
    return this.waiting.length;
  }

  /** Waits for a ticket; `expectedAt(position)` says when the schedule known now would give one. */
  wait(latestStart: number, expectedAt: (position: number) => number): Promise<TicketOutcome> {
    return new Promise((resolve) => {
      const waiter: Waiter = { latestStart, done: false, resolve: (outcome) => void (!waiter.done && ((waiter.done = true), resolve(outcome))) };
      this.waiting.push(waiter);
      const expected = expectedAt(this.waiting.length - 1);
      if (expected > latestStart) return this.refuse(waiter, expected);
      if (Number.isFinite(latestStart)) void this.clock.sleep(latestStart - this.clock.now()).then(() => this.refuse(waiter, expectedAt(this.waiting.indexOf(waiter))));
    });
  }

  /** A ticket to the first waiter that can use it; those it comes too late for are refused (later ones come later). */
  deliver(ticket: Ticket): void {
    for (let waiter = this.waiting.shift(); waiter; waiter = this.waiting.shift()) {
      if (ticket.sendAt <= waiter.latestStart && !waiter.done) return waiter.resolve(ticket);
      waiter.resolve(this.refusal(ticket.sendAt));
    }
  }

  /** Every waiter asks anew (no limit any more, or the instance fell back to its own flow control). */
  releaseAll(): void {
    for (const waiter of this.waiting.splice(0)) waiter.resolve('again');
  }

  private refuse(waiter: Waiter, at: number): void {
    if (waiter.done) return;
    const i = this.waiting.indexOf(waiter);
    if (i >= 0) this.waiting.splice(i, 1);
    waiter.resolve(this.refusal(at));
  }
}
