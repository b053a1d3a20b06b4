/** One item of a batch, with what constrains when it may run. */
export interface ScheduledItem<T> {
  item: T;
  /** Items sharing a key run one after another, in batch order (a task's callbacks, by uniqueId). */
  keys: string[];
  /** Runs with nothing else in flight: it may need the memory the others would hold (a large stored body). */
  alone: boolean;
}

/**
 * Runs a batch's items concurrently, except that items sharing a key run one after another in batch order, and an
 * item marked `alone` starts only when everything before it has ended, and nothing after it starts before it ends.
 * Every item runs whatever the others' outcome; the outcomes are answered in batch order.
 */
export async function runKeyedInOrder<T, R>(items: ScheduledItem<T>[], run: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const outcomes: Array<Promise<PromiseSettledResult<R>>> = [];
  // Each of these only ever resolves (outcomes are settled results), so waiting on them never throws.
  let barrier: Promise<unknown> = Promise.resolve();
  let sinceBarrier: Array<Promise<unknown>> = [];
  const lastOfKey = new Map<string, Promise<unknown>>();
  for (const { item, keys, alone } of items) {
    const before = alone ? [barrier, ...sinceBarrier] : [barrier, ...keys.map((key) => lastOfKey.get(key))];
    const outcome = Promise.all(before).then(() => run(item)).then(
      (value): PromiseSettledResult<R> => ({ status: 'fulfilled', value }),
      (reason: unknown): PromiseSettledResult<R> => ({ status: 'rejected', reason }),
    );
    outcomes.push(outcome);
    if (alone) {
      barrier = outcome;
      sinceBarrier = [];
      lastOfKey.clear();
    } else {
      sinceBarrier.push(outcome);
      for (const key of keys) lastOfKey.set(key, outcome);
    }
  }
  return Promise.all(outcomes);
}

/** A lock: the tasks given to it run one at a time, in the order given, whatever each one's outcome. */
export function oneAtATime(): <R>(task: () => Promise<R>) => Promise<R> {
  let tail: Promise<unknown> = Promise.resolve();
  return <R>(task: () => Promise<R>) => {
    const result = tail.then(task);
    tail = result.catch(() => undefined);
    return result;
  };
}
