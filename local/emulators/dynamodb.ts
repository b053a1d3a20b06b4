import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient, type GlobalSecondaryIndex, type KeySchemaElement } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import type { AddressInfo } from 'node:net';
import { RATE_TABLE_SCHEMA } from '../../lambdas/core/scale/dynamo-rate-store.js';
import { TASKS_TABLE_SCHEMA } from '../../lambdas/core/tasks/dynamo-task-store.js';

/** An in-memory DynamoDB (dynalite) on a free loopback port. */
export async function startDynamo() {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Creates the tasks table with the keys and indexes the stack gives it (both read TASKS_TABLE_SCHEMA), and waits
 * until it is ACTIVE: a table is CREATING for a moment (dynalite too, for a timer tick), and writes to it fail.
 */
export async function createTasksTable(client: DynamoDBClient, tableName: string): Promise<void> {
  const attributes = new Set<string>([TASKS_TABLE_SCHEMA.partitionKey]);
  const indexes: GlobalSecondaryIndex[] = Object.entries(TASKS_TABLE_SCHEMA.indexes).map(([name, index]) => {
    const keys: KeySchemaElement[] = [{ AttributeName: index.partitionKey, KeyType: 'HASH' }];
    attributes.add(index.partitionKey);
    if ('sortKey' in index) {
      keys.push({ AttributeName: index.sortKey, KeyType: 'RANGE' });
      attributes.add(index.sortKey);
    }
    return { IndexName: name, KeySchema: keys, Projection: { ProjectionType: 'ALL' } };
  });
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: TASKS_TABLE_SCHEMA.partitionKey, KeyType: 'HASH' }],
      AttributeDefinitions: [...attributes].map((name) => ({ AttributeName: name, AttributeType: 'S' })),
      GlobalSecondaryIndexes: indexes,
    }),
  );
  await waitUntilActive(client, tableName);
}

/** Creates the table of the shared Scale rate as the stack does (RATE_TABLE_SCHEMA), and waits until it is ACTIVE. */
export async function createRateTable(client: DynamoDBClient, tableName: string): Promise<void> {
  const key = RATE_TABLE_SCHEMA.partitionKey;
  await client.send(
    new CreateTableCommand({ TableName: tableName, BillingMode: 'PAY_PER_REQUEST', KeySchema: [{ AttributeName: key, KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: key, AttributeType: 'S' }] }),
  );
  await waitUntilActive(client, tableName);
}

async function waitUntilActive(client: DynamoDBClient, tableName: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return;
    if (attempt >= 200) throw new Error(`table ${tableName} is still ${Table?.TableStatus} after 200 checks`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
