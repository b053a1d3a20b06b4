import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRateStore } from '../../../../lambdas/core/scale/dynamo-rate-store.js';
import type { Decrease, RateState } from '../../../../lambdas/core/scale/rate-rules.js';
import { documentClient } from '../../../../lambdas/core/tasks/dynamo-task-store.js';
import { createRateTable, startDynamo } from '../../../../local/emulators/dynamodb.js';

// How the DynamoDB rate store tells a refused condition from a failed request, against dynalite; the failures
// dynalite cannot give (throttling, a refusal thrown by another copy of the SDK) are put in front of it.
let dynamo: Awaited<ReturnType<typeof startDynamo>>;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let tables = 0;
beforeAll(async () => {
  dynamo = await startDynamo();
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  doc = documentClient(client);
});
afterAll(async () => {
  client.destroy();
  await dynamo.close();
});

/**
 * A store on a table of its own, whose next updates fail with `failNextUpdates` before they reach the table, and
 * which records every read it sends (DynamoDB reads are eventually consistent unless asked otherwise; dynalite never lags).
 */
async function faultyStore() {
  const table = `rate-faults-${++tables}`;
  await createRateTable(client, table);
  const failNextUpdates: Array<{ error: unknown }> = [];
  const reads: unknown[] = [];
  const faulty = {
    send: (command: unknown, options?: { abortSignal?: AbortSignal }) => {
      const failure = command instanceof UpdateCommand ? failNextUpdates.shift() : undefined;
      if (command instanceof GetCommand) reads.push(command.input);
      return failure ? Promise.reject(failure.error) : doc.send(command as GetCommand, options);
    },
  } as unknown as DynamoDBDocumentClient;
  return { store: new DynamoRateStore(faulty, table), failNextUpdates, reads, table };
}

const NEVER: RateState = { epoch: 0, base: null, ceiling: null, issued: 0, holdTickets: 0, changedAt: -Infinity, tat: -Infinity, discovering: false, suspect: false, reporters: [], version: 0 };
const FIRST_429: Decrease = { base: 7, ceiling: null, holdTickets: 100, changedAt: 5_000, discovering: true, suspect: false, resumeAt: 6_002 };
const AFTER_FIRST: RateState = { epoch: 1, base: 7, ceiling: null, issued: 0, holdTickets: 100, changedAt: 5_000, tat: 6_002, discovering: true, suspect: false, reporters: [], version: 1 };
const LOWER: Decrease = { base: 6, ceiling: 7, holdTickets: 100, changedAt: 6_500, discovering: false, suspect: true, resumeAt: null };
const conditionFailure = () => Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException' });
const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' });

/** The three writes, each from the state after the first 429 and each one that would succeed. */
const writes = (store: DynamoRateStore, signal?: AbortSignal) => [
  () => store.takeTickets({ earliest: 6_002, seen: AFTER_FIRST, rate: 7, gapMs: 143.143, count: 1 }, signal),
  () => store.lowerRate(AFTER_FIRST, LOWER, signal),
  () => store.reportShare(1, 'b', 5, signal),
];

describe('DynamoDB rate store: refusals and failures', () => {
  it('reads the item consistently, also after a refused condition, so it answers the state that refused it', async () => {
    const { store, reads, table } = await faultyStore();
    await store.lowerRate(NEVER, FIRST_429);
    expect(await store.lowerRate(NEVER, { ...FIRST_429, base: 3 })).toEqual({ ok: false, state: AFTER_FIRST });
    expect(await store.read()).toEqual(AFTER_FIRST);
    expect(reads).toEqual([1, 2].map(() => ({ TableName: table, Key: { id: 'scale-api' }, ConsistentRead: true })));
  });

  it('takes a ConditionalCheckFailedException by its name, as another copy of the SDK throws it: a refusal, answered the state', async () => {
    const { store, failNextUpdates } = await faultyStore();
    await store.lowerRate(NEVER, FIRST_429);
    failNextUpdates.push({ error: conditionFailure() }, { error: conditionFailure() }, { error: conditionFailure() });
    const [take, lower, share] = writes(store);
    expect(await take!()).toEqual({ tickets: [], state: AFTER_FIRST });
    expect(await lower!()).toEqual({ ok: false, state: AFTER_FIRST });
    expect(await share!()).toEqual(AFTER_FIRST);
  });

  it('fails a write that failed, rather than take it for a refusal and answer the state', async () => {
    const { store, failNextUpdates } = await faultyStore();
    await store.lowerRate(NEVER, FIRST_429);
    for (const write of writes(store)) {
      failNextUpdates.push({ error: throttled() });
      await expect(write()).rejects.toThrow('Rate exceeded');
    }
    // Whatever the client fails with, even what is not an Error (a middleware may reject with anything), as it came.
    failNextUpdates.push({ error: undefined });
    await expect(writes(store)[0]!()).rejects.toBeUndefined();
    expect(await store.read()).toEqual(AFTER_FIRST);
  });

  it('sends no request once its signal is aborted (its time is up): each one fails and nothing is written', async () => {
    const { store } = await faultyStore();
    await store.lowerRate(NEVER, FIRST_429);
    const abort = new AbortController();
    abort.abort();
    await expect(store.read(abort.signal)).rejects.toMatchObject({ name: 'AbortError' });
    for (const write of writes(store, abort.signal)) await expect(write()).rejects.toMatchObject({ name: 'AbortError' });
    expect(await store.read()).toEqual(AFTER_FIRST);
  });
});
