import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRateStore, RATE_ITEM_ID } from '../../../../lambdas/core/scale/dynamo-rate-store.js';
import type { Decrease, RateState } from '../../../../lambdas/core/scale/rate-rules.js';
import { MemoryRateStore, type RateStore } from '../../../../lambdas/core/scale/rate-store.js';
import { documentClient } from '../../../../lambdas/core/tasks/dynamo-task-store.js';
import { createRateTable, startDynamo } from '../../../../local/emulators/dynamodb.js';

// One contract, two adapters: the in-memory store and the DynamoDB one against dynalite give the same answers to
// the same requests, with literal states.
let dynamo: Awaited<ReturnType<typeof startDynamo>>;
let client: DynamoDBClient;
let tables = 0;
beforeAll(async () => {
  dynamo = await startDynamo();
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
});
afterAll(async () => {
  client.destroy();
  await dynamo.close();
});
/** A DynamoDB store on a table of its own, and the raw item it writes. */
async function dynamoStore() {
  const table = `rate-${++tables}`;
  await createRateTable(client, table);
  const doc = documentClient(client);
  return { store: new DynamoRateStore(doc, table), raw: async () => (await doc.send(new GetCommand({ TableName: table, Key: { id: RATE_ITEM_ID } }))).Item, doc, table };
}

const FIRST_429: Decrease = { base: 7, ceiling: null, holdTickets: 100, changedAt: 5_000, discovering: true, suspect: false, resumeAt: 6_002 };
const NEVER: RateState = { epoch: 0, base: null, ceiling: null, issued: 0, holdTickets: 0, changedAt: -Infinity, tat: -Infinity, discovering: false, suspect: false, reporters: [], version: 0 };
const AFTER_FIRST: RateState = { epoch: 1, base: 7, ceiling: null, issued: 0, holdTickets: 100, changedAt: 5_000, tat: 6_002, discovering: true, suspect: false, reporters: [], version: 1 };

describe.each([
  ['in memory', async () => new MemoryRateStore() as RateStore],
  ['DynamoDB (dynalite)', async () => (await dynamoStore()).store as RateStore],
])('rate store %s', (_name, makeStore) => {
  it('answers a state never written as unlimited', async () => {
    expect(await (await makeStore()).read()).toEqual(NEVER);
  });

  it('writes the first decrease once: a second one from the same state is refused and answered the current state', async () => {
    const store = await makeStore();
    expect(await store.lowerRate(NEVER, FIRST_429)).toEqual({ ok: true, state: AFTER_FIRST });
    expect(await store.lowerRate(NEVER, { ...FIRST_429, base: 3 })).toEqual({ ok: false, state: AFTER_FIRST });
    expect(await store.read()).toEqual(AFTER_FIRST);
  });

  it('adds each instance’s share once, only while its epoch is discovering', async () => {
    const store = await makeStore();
    await store.lowerRate(NEVER, FIRST_429);
    expect(await store.reportShare(1, 'b', 5)).toMatchObject({ base: 12, reporters: ['b'], version: 2 });
    // Again from b, or for another epoch: nothing changes. Another instance's share adds.
    expect(await store.reportShare(1, 'b', 5)).toMatchObject({ base: 12, version: 2 });
    expect(await store.reportShare(0, 'c', 4)).toMatchObject({ base: 12, version: 2 });
    expect(await store.reportShare(1, 'a', 4)).toMatchObject({ base: 16, reporters: ['b', 'a'], version: 3 });
    // The next decrease ends the discovery: no share is taken after it, and its reporters are cleared.
    const held = await store.lowerRate(await store.read(), { base: 15, ceiling: 16, holdTickets: 100, changedAt: 7_000, discovering: false, suspect: true, resumeAt: null });
    expect(held.state).toMatchObject({ epoch: 2, base: 15, reporters: [], version: 4 });
    expect(await store.reportShare(2, 'd', 4)).toMatchObject({ base: 15, reporters: [], version: 4 });
  });

  it('gives tickets back to back from the schedule, after a lull from the earliest time asked, and none under another epoch or base', async () => {
    const store = await makeStore();
    const { state } = await store.lowerRate(NEVER, { ...FIRST_429, base: 12, discovering: false });
    // 12/s with a 2 ms margin: 1002 / 12 = 83.5 ms apart, the first when the schedule resumes (6002).
    const taken = await store.takeTickets({ earliest: 6_000, seen: state, rate: 12, gapMs: 83.5, count: 3 });
    expect(taken.tickets).toEqual([6_002, 6_085.5, 6_169].map((sendAt) => ({ sendAt, rate: 12, epoch: 1 })));
    expect(taken.state).toMatchObject({ tat: 6_252.5, issued: 3, version: 2 });
    // A copy from before that write, of the same epoch and base: the next ticket of the schedule, never one given.
    const stale = await store.takeTickets({ earliest: 6_000, seen: state, rate: 12, gapMs: 83.5, count: 1 });
    expect(stale.tickets).toEqual([{ sendAt: 6_252.5, rate: 12, epoch: 1 }]);
    expect(stale.state).toMatchObject({ tat: 6_336, issued: 4, version: 3 });
    // A lull: the first at the earliest time asked; tickets after a lull prove nothing, issued stays.
    const lull = await store.takeTickets({ earliest: 10_000.001, seen: stale.state, rate: 12, gapMs: 83.5, count: 2 });
    expect(lull.tickets.map((t) => t.sendAt)).toEqual([10_000.001, 10_083.501]);
    expect(lull.state).toMatchObject({ tat: 10_167.001, issued: 4, version: 4 });
    // A copy that thinks the schedule is ahead of the earliest time, when it is not: refused too.
    expect(await store.takeTickets({ earliest: 10_180, seen: { ...lull.state, tat: 10_200 }, rate: 12, gapMs: 83.5, count: 1 })).toEqual({ tickets: [], state: lull.state });
    // A decrease without a pause leaves a gap at the new rate (1000 / 11 = 90.91 ms, rounded up) after the schedule.
    const lower = await store.lowerRate(lull.state, { base: 11, ceiling: 12, holdTickets: 100, changedAt: 10_100, discovering: false, suspect: true, resumeAt: null });
    expect(lower.state).toMatchObject({ epoch: 2, base: 11, ceiling: 12, tat: 10_257.911, issued: 0, suspect: true, reporters: [] });
    // Tickets of the old epoch, or of a base the shares have changed since, are refused.
    expect(await store.takeTickets({ earliest: 10_300, seen: lull.state, rate: 12, gapMs: 83.5, count: 1 })).toEqual({ tickets: [], state: lower.state });
    expect((await store.takeTickets({ earliest: 10_300, seen: { ...lower.state, base: 12 }, rate: 12, gapMs: 83.5, count: 1 })).tickets).toEqual([]);
  });

  it('goes on back to back when the earliest time asked is exactly when the schedule is due', async () => {
    const store = await makeStore();
    const { state } = await store.lowerRate(NEVER, { ...FIRST_429, base: 12, discovering: false });
    // A decrease that opens no discovery reads back as not discovering.
    expect(state).toEqual({ ...AFTER_FIRST, base: 12, discovering: false });
    // Due at 6002 and asked from 6002: the schedule goes on, so these tickets count as proof that the rate held.
    const taken = await store.takeTickets({ earliest: 6_002, seen: state, rate: 12, gapMs: 83.5, count: 2 });
    expect(taken.tickets.map((t) => t.sendAt)).toEqual([6_002, 6_085.5]);
    expect(taken.state).toMatchObject({ tat: 6_169, issued: 2, version: 2 });
  });
});

describe('DynamoDB rate store', () => {
  it('writes exactly the state, the schedule in whole microseconds, no ceiling while there is none', async () => {
    const { store, raw } = await dynamoStore();
    await store.lowerRate(NEVER, { ...FIRST_429, resumeAt: 6_002.0004 });
    expect(await raw()).toEqual({
      id: 'scale-api', epoch: 1, base: 7, holdTickets: 100, changedAt: 5_000, discovering: true, suspect: false, issued: 0, tatMicros: 6_002_001, version: 1,
    });
  });

  it('refuses an item it did not write rather than guess at it', async () => {
    const { store, doc, table } = await dynamoStore();
    await doc.send(new PutCommand({ TableName: table, Item: { id: RATE_ITEM_ID, epoch: 'one', tatMicros: 1, changedAt: 0, version: 1 } }));
    await expect(store.read()).rejects.toThrow(`the rate item's epoch is not a number: "one"`);
  });

  it('gives no ticket twice to two clients racing for the schedule', async () => {
    const { store, table } = await dynamoStore();
    // A second client of its own, as another instance has.
    const other = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials: { accessKeyId: 'y', secretAccessKey: 'y' } });
    const stores = [store, new DynamoRateStore(documentClient(other), table)];
    try {
      const { state } = await store.lowerRate(NEVER, { ...FIRST_429, base: 50, discovering: false, resumeAt: 1_000 });
      // Each takes 30 times 2 tickets, all at once, both starting from a lull (the schedule is behind 5000): one
      // resumes the schedule at 5000, the other is refused and goes on back to back from the state it is answered.
      const takeAll = async (s: RateStore) => {
        const sendAts: number[] = [];
        let [seen, earliest, refusals] = [state, 5_000, 0];
        while (sendAts.length < 60) {
          const answer = await s.takeTickets({ earliest, seen, rate: 50, gapMs: 20.04, count: 2 });
          if (answer.tickets.length === 0) refusals++;
          sendAts.push(...answer.tickets.map((t) => t.sendAt));
          [seen, earliest] = [answer.state, 4_000];
        }
        return { sendAts, refusals };
      };
      const [a, b] = await Promise.all(stores.map(takeAll));
      const all = [...a!.sendAts, ...b!.sendAts].sort((x, y) => x - y);
      expect(new Set(all).size).toBe(120);
      // Back to back from 5000, 20.04 ms apart: the 120th is due at 5000 + 119 × 20.04.
      expect(all[0]).toBe(5_000);
      expect(all.at(-1)).toBe(7_384.76);
      expect(all.slice(1).every((t, i) => Math.abs(t - all[i]! - 20.04) < 1e-6)).toBe(true);
      expect(a!.refusals + b!.refusals).toBe(1);
      // Only the tickets after the lull's first two were due back to back.
      expect(await store.read()).toMatchObject({ issued: 118, tat: 7_404.8 });
    } finally {
      other.destroy();
    }
  });

  it('lets one of five concurrent decreases from the same state through: they never compound', async () => {
    const { store } = await dynamoStore();
    const { state } = await store.lowerRate(NEVER, { ...FIRST_429, base: 40, discovering: false });
    const next = (i: number): Decrease => ({ base: 39 - i, ceiling: 40, holdTickets: 100, changedAt: 7_000 + i, discovering: false, suspect: true, resumeAt: null });
    const answers = await Promise.all([0, 1, 2, 3, 4].map((i) => store.lowerRate(state, next(i))));
    const won = answers.findIndex((a) => a.ok);
    expect(answers.filter((a) => a.ok)).toHaveLength(1);
    const final = await store.read();
    expect(final).toMatchObject({ epoch: 2, base: 39 - won, changedAt: 7_000 + won });
    for (const answer of answers.filter((a) => !a.ok)) expect(answer.state.epoch).toBe(2);
  });
});
