import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../../lambdas/core/tasks/dynamo-task-store.js';
import { createTasksTable, startDynamo } from '../../../local/emulators/dynamodb.js';
import { cli, jsonLines } from '../../helpers/cli.js';

// A command run against a stack is the same code as against the local pipeline once the target is resolved: here
// the stack's outputs come from CloudFormation's mock, the table is an emulator reached the way the SDK reaches any
// endpoint (AWS_ENDPOINT_URL_DYNAMODB), and SQS's mock records what a retry sends.
const cloudFormation = mockClient(CloudFormationClient);
const sqs = mockClient(SQSClient);
const OUTPUTS: Record<string, string> = {
  ScenesBucketName: 'scenes-bucket-1',
  ResultsBucketName: 'results-bucket-1',
  TasksTableName: 'stack-tasks',
  IngestQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/ingest',
  DeadLetterQueueArn: 'arn:aws:sqs:eu-west-1:123456789012:ingest-dlq',
  ScaleApiKeySecretName: 'scale-api-key',
  ScaleApiUrl: 'https://api.scale.invalid/v1',
  FrameManifestSuffix: '.frames.json',
  ClearUniqueIdOnError: 'true',
};
// sha256 of ["scenes-bucket-1","drive 7/scene.frames.json","v:v-1"] (JSON), first 40 hex digits: the upload's identity.
const UNIQUE_ID = 'sfs-8f1b5711a683f32c7fced2a65931c21ee7496ad8';
const saved = { ...process.env };
let dynamo: Awaited<ReturnType<typeof startDynamo>>;

beforeAll(async () => {
  dynamo = await startDynamo();
  Object.assign(process.env, { AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint, AWS_ACCESS_KEY_ID: 'AKIDSTACK', AWS_SECRET_ACCESS_KEY: 'stack-secret' });
  const client = new DynamoDBClient({ region: 'eu-west-1' });
  await createTasksTable(client, 'stack-tasks');
  await documentClient(client).send(
    new PutCommand({
      TableName: 'stack-tasks',
      Item: {
        schemaVersion: 1,
        uniqueId: UNIQUE_ID,
        status: 'rejected',
        reason: 'frame lidar/3.json is missing',
        bucket: 'scenes-bucket-1',
        key: 'drive 7/scene.frames.json',
        versionId: 'v-1',
        eTag: 'etag-1',
        sequencer: '0055AED6DCD90281E5',
        size: 120,
        sceneFormat: 'split_base64',
        createdAt: '2026-11-30T08:00:00.000Z',
        updatedAt: '2026-11-30T08:00:01.000Z',
      },
    }),
  );
  client.destroy();
  cloudFormation.on(DescribeStacksCommand, { StackName: 'Prod' }).resolves({
    Stacks: [{ StackName: 'Prod', CreationTime: new Date(), StackStatus: 'UPDATE_COMPLETE', Outputs: Object.entries(OUTPUTS).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })) }],
  });
  sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
});
afterAll(async () => {
  process.env = saved;
  cloudFormation.restore();
  sqs.restore();
  await dynamo.close();
});

const onStack = ['--stack', 'Prod', '--region', 'eu-west-1'];

describe('commands on a deployed stack', () => {
  it("status reads the stack's table, found by its output, by key", async () => {
    const run = await cli('status', 's3://scenes-bucket-1/drive 7/scene.frames.json', ...onStack, '--json');
    expect(run.code).toBe(0);
    expect(jsonLines(run.stdout)).toEqual([expect.objectContaining({ uniqueId: UNIQUE_ID, status: 'rejected', reason: 'frame lidar/3.json is missing' })]);
    // Another bucket than the stack's scenes bucket is refused, naming it.
    const other = await cli('status', 's3://scenes/drive 7/scene.frames.json', ...onStack);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('scenes-bucket-1');
  });

  it("retry sends the upload's own S3 notification to the stack's ingest queue", async () => {
    const run = await cli('retry', UNIQUE_ID, ...onStack, '--json');
    expect([run.code, run.stderr]).toEqual([0, '']);
    expect(jsonLines(run.stdout)).toEqual([expect.objectContaining({ uniqueId: UNIQUE_ID, outcome: 'retried' })]);
    const sent = sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.QueueUrl).toBe('https://sqs.eu-west-1.amazonaws.com/123456789012/ingest');
    const record = JSON.parse(sent[0]!.MessageBody!).Records[0];
    // S3's encoding of the key (space as +), the version and sequencer the record holds.
    expect(record.eventName).toBe('ObjectCreated:Put');
    expect(record.s3).toEqual({ bucket: { name: 'scenes-bucket-1' }, object: { key: 'drive+7/scene.frames.json', size: 120, eTag: 'etag-1', versionId: 'v-1', sequencer: '0055AED6DCD90281E5' } });
    const after = await cli('status', UNIQUE_ID, ...onStack, '--json');
    expect(jsonLines(after.stdout)[0]).toMatchObject({ status: 'submitting' });
  });
});
