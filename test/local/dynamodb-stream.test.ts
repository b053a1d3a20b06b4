import { BatchWriteItemCommand, ConditionalCheckFailedException, CreateTableCommand, DynamoDBClient, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDynamoFront, type DynamoFront } from '../../local/dynamodb-front.js';
import { createTasksTable, startDynamo } from '../../local/emulators/dynamodb.js';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
let dynamo: Awaited<ReturnType<typeof startDynamo>>;
let front: DynamoFront;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
const records: DynamoDBRecord[] = [];

beforeAll(async () => {
  dynamo = await startDynamo();
  front = await startDynamoFront({ target: dynamo.endpoint, streamedTables: ['tasks'] });
  front.onRecords((batch) => records.push(...batch));
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: front.endpoint, credentials });
  doc = DynamoDBDocumentClient.from(client);
  await createTasksTable(client, 'tasks');
  await client.send(
    new CreateTableCommand({
      TableName: 'plain',
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
    }),
  );
});
afterAll(async () => {
  client?.destroy();
  await front?.close();
  await dynamo?.close();
});
beforeEach(() => {
  records.length = 0;
});

const names = () => records.map((r) => r.eventName);

describe('the DynamoDB front: stream records of committed writes', () => {
  it('records a put as INSERT with the new image only, an update as MODIFY with both, a delete as REMOVE with the old', async () => {
    await doc.send(new PutCommand({ TableName: 'tasks', Item: { uniqueId: 'u1', status: 'submitting', attempts: 1 } }));
    await doc.send(
      new UpdateCommand({ TableName: 'tasks', Key: { uniqueId: 'u1' }, UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': 'pending' } }),
    );
    await doc.send(new DeleteCommand({ TableName: 'tasks', Key: { uniqueId: 'u1' } }));

    expect(names()).toEqual(['INSERT', 'MODIFY', 'REMOVE']);
    const [insert, modify, remove] = records.map((r) => r.dynamodb!);
    expect(insert).toMatchObject({ Keys: { uniqueId: { S: 'u1' } }, NewImage: { uniqueId: { S: 'u1' }, status: { S: 'submitting' }, attempts: { N: '1' } }, StreamViewType: 'NEW_AND_OLD_IMAGES' });
    expect(insert).not.toHaveProperty('OldImage');
    expect(modify!.OldImage).toEqual({ uniqueId: { S: 'u1' }, status: { S: 'submitting' }, attempts: { N: '1' } });
    expect(modify!.NewImage).toEqual({ uniqueId: { S: 'u1' }, status: { S: 'pending' }, attempts: { N: '1' } });
    expect(remove!.OldImage).toEqual({ uniqueId: { S: 'u1' }, status: { S: 'pending' }, attempts: { N: '1' } });
    expect(remove).not.toHaveProperty('NewImage');

    for (const record of records) {
      expect(record).toMatchObject({ eventSource: 'aws:dynamodb', awsRegion: 'us-east-1', eventVersion: '1.1' });
      expect(record.eventSourceARN).toMatch(/^arn:aws:dynamodb:us-east-1:000000000000:table\/tasks\/stream\/\d{4}-/);
      expect(record.eventID).toMatch(/^[0-9a-f]{32}$/);
      expect(record.dynamodb!.SequenceNumber).toMatch(/^\d+$/);
      expect(Math.abs(record.dynamodb!.ApproximateCreationDateTime! - Date.now() / 1000)).toBeLessThan(60);
      expect(record.dynamodb!.SizeBytes).toBeGreaterThan(0);
    }
    const sequence = records.map((r) => BigInt(r.dynamodb!.SequenceNumber!));
    expect(sequence[1]! > sequence[0]! && sequence[2]! > sequence[1]!).toBe(true);
    expect(new Set(records.map((r) => r.eventID)).size).toBe(3);
  });

  it('writes no record for a conditional write that fails', async () => {
    await doc.send(new PutCommand({ TableName: 'tasks', Item: { uniqueId: 'u2', status: 'pending' } }));
    records.length = 0;
    const refused = doc.send(new PutCommand({ TableName: 'tasks', Item: { uniqueId: 'u2', status: 'stolen' }, ConditionExpression: 'attribute_not_exists(uniqueId)' }));
    await expect(refused).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    const update = doc.send(
      new UpdateCommand({ TableName: 'tasks', Key: { uniqueId: 'u2' }, UpdateExpression: 'SET #s = :s', ConditionExpression: '#s = :old', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': 'x', ':old': 'completed' } }),
    );
    await expect(update).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    expect(records).toEqual([]);
  });

  it('writes no record for a write that changed nothing, as DynamoDB Streams does', async () => {
    const item = { uniqueId: 'u3', status: 'pending', tags: new Set(['a', 'b']), n: 1 };
    await doc.send(new PutCommand({ TableName: 'tasks', Item: item }));
    await doc.send(new PutCommand({ TableName: 'tasks', Item: { ...item, tags: new Set(['b', 'a']) } }));
    await doc.send(
      new UpdateCommand({ TableName: 'tasks', Key: { uniqueId: 'u3' }, UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': 'pending' } }),
    );
    // The same number written differently is the same number.
    await client.send(
      new BatchWriteItemCommand({ RequestItems: { tasks: [{ PutRequest: { Item: { uniqueId: { S: 'u3' }, status: { S: 'pending' }, tags: { SS: ['b', 'a'] }, n: { N: '1.0' } } } }] } }),
    );
    await doc.send(new DeleteCommand({ TableName: 'tasks', Key: { uniqueId: 'never-written' } }));
    expect(names()).toEqual(['INSERT']);
  });

  it('orders concurrent updates of one key as they were applied, each old image the previous new image', async () => {
    await doc.send(new PutCommand({ TableName: 'tasks', Item: { uniqueId: 'u4', applied: [] } }));
    records.length = 0;
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        doc.send(new UpdateCommand({ TableName: 'tasks', Key: { uniqueId: 'u4' }, UpdateExpression: 'SET applied = list_append(applied, :i)', ExpressionAttributeValues: { ':i': [i] } })),
      ),
    );
    expect(records).toHaveLength(12);
    const applied = (record: DynamoDBRecord, which: 'OldImage' | 'NewImage') => record.dynamodb![which]!.applied!.L!.map((v) => Number(v.N));
    for (const [i, record] of records.entries()) {
      expect(record.eventName).toBe('MODIFY');
      expect(applied(record, 'NewImage')).toHaveLength(i + 1);
      if (i > 0) expect(record.dynamodb!.OldImage).toEqual(records[i - 1]!.dynamodb!.NewImage);
      else expect(applied(record, 'OldImage')).toEqual([]);
    }
    // The last record's image is the item as stored; every number appears once.
    expect(applied(records.at(-1)!, 'NewImage').sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const sequence = records.map((r) => BigInt(r.dynamodb!.SequenceNumber!));
    expect(sequence.every((n, i) => i === 0 || n > sequence[i - 1]!)).toBe(true);
  });

  it('streams each item a batch write changed, and refuses transactions instead of writing past the stream', async () => {
    await client.send(
      new BatchWriteItemCommand({
        RequestItems: {
          tasks: [{ PutRequest: { Item: { uniqueId: { S: 'b1' }, status: { S: 'pending' } } } }, { PutRequest: { Item: { uniqueId: { S: 'b2' }, status: { S: 'pending' } } } }],
          plain: [{ PutRequest: { Item: { id: { S: 'p1' } } } }],
        },
      }),
    );
    expect(records.map((r) => [r.eventName, r.dynamodb!.Keys])).toEqual([
      ['INSERT', { uniqueId: { S: 'b1' } }],
      ['INSERT', { uniqueId: { S: 'b2' } }],
    ]);

    const transaction = client.send(new TransactWriteItemsCommand({ TransactItems: [{ Put: { TableName: 'tasks', Item: { uniqueId: { S: 't1' } } } }] }));
    await expect(transaction).rejects.toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    await expect(transaction).rejects.toThrow(/TransactWriteItems is not supported by the local DynamoDB/);
  });

  it('streams nothing of a table without a stream', async () => {
    await doc.send(new PutCommand({ TableName: 'plain', Item: { id: 'p2', v: 1 } }));
    await doc.send(new UpdateCommand({ TableName: 'plain', Key: { id: 'p2' }, UpdateExpression: 'SET v = :v', ExpressionAttributeValues: { ':v': 2 } }));
    expect(records).toEqual([]);
  });
});
