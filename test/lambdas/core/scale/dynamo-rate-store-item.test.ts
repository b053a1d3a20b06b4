import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DynamoRateStore } from '../../../../lambdas/core/scale/dynamo-rate-store.js';
import { documentClient } from '../../../../lambdas/core/tasks/dynamo-task-store.js';
import { createRateTable, startDynamo } from '../../../../local/emulators/dynamodb.js';

// The one item of the rate table, against dynalite: where it is kept, and items this code did not write.
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

const newTable = async () => {
  const table = `rate-item-${++tables}`;
  await createRateTable(client, table);
  return table;
};
/** A store reading `item` (with the id every instance uses), written as some other code might have. */
async function storeReading(item: Record<string, unknown>) {
  const table = await newTable();
  await doc.send(new PutCommand({ TableName: table, Item: { id: 'scale-api', ...item } }));
  return new DynamoRateStore(doc, table);
}
/** Fields of a valid item, but for the one a test spoils. */
const VALID = { epoch: 1, base: 7, issued: 0, holdTickets: 100, changedAt: 5_000, tatMicros: 6_002_000, discovering: true, suspect: false, version: 1 };

describe('DynamoDB rate store: the item', () => {
  it("keeps the rate in the item 'scale-api', where every instance and the local pipeline look for it", async () => {
    // Imported afresh, so that the id is read when the store is made.
    vi.resetModules();
    const fresh = await import('../../../../lambdas/core/scale/dynamo-rate-store.js');
    const table = await newTable();
    const { ok } = await new fresh.DynamoRateStore(doc, table).lowerRate(
      { epoch: 0, base: null, ceiling: null, issued: 0, holdTickets: 0, changedAt: -Infinity, tat: -Infinity, discovering: false, suspect: false, reporters: [], version: 0 },
      { base: 7, ceiling: null, holdTickets: 100, changedAt: 5_000, discovering: true, suspect: false, resumeAt: 6_002 },
    );
    expect(ok).toBe(true);
    expect((await doc.send(new GetCommand({ TableName: table, Key: { id: 'scale-api' } }))).Item).toMatchObject({ id: 'scale-api', epoch: 1, version: 1 });
  });

  it('names a field that is not a number with at most 100 characters of what it holds', async () => {
    const store = await storeReading({ ...VALID, epoch: 'x'.repeat(200) });
    await expect(store.read()).rejects.toThrow(new Error(`the rate item's epoch is not a number: "${'x'.repeat(99)}`));
  });

  it('names a field that is missing', async () => {
    const { version: _, ...withoutVersion } = VALID;
    const store = await storeReading(withoutVersion);
    await expect(store.read()).rejects.toThrow(new Error("the rate item's version is not a number: undefined"));
  });

  it('refuses reporters that are not a set of strings: a list, or a set of numbers', async () => {
    for (const reporters of [['a', 'b'], new Set([1, 2])]) {
      const store = await storeReading({ ...VALID, reporters });
      await expect(store.read()).rejects.toThrow(new Error("the rate item's reporters are not a string set"));
    }
    // The same item with a string set reads.
    expect(await (await storeReading({ ...VALID, reporters: new Set(['a', 'b']) })).read()).toMatchObject({ epoch: 1, reporters: ['a', 'b'] });
  });
});
