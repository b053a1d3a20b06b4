import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetQueueAttributesCommand, SQSClient, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CliError } from '../../../bin/cli/io.js';
import { dlqUrlOf, REQUIRED_OUTPUTS, resolveTarget } from '../../../bin/cli/target.js';
import { startScaleSimulator, type ScaleSimulator } from '../../../local/scale-simulator/server.js';
import { cli } from '../../helpers/cli.js';
import { synth } from '../../helpers/synth.js';

// The parts of a stack target that cannot run offline, through the SDK's client mock: CloudFormation's outputs,
// the API key secret, SQS's message move task. Everything else a command does on a stack is the same code as locally.
const cloudFormation = mockClient(CloudFormationClient);
const secrets = mockClient(SecretsManagerClient);
const sqs = mockClient(SQSClient);
afterEach(() => [cloudFormation, secrets, sqs].forEach((mock) => mock.reset()));

const DLQ_ARN = 'arn:aws:sqs:eu-west-1:123456789012:ScaleSfsPipeline-IngestDeadLetters';
let outputs: Record<string, string>;
let simulator: ScaleSimulator;
let dir: string;
beforeAll(async () => {
  simulator = await startScaleSimulator({ apiKey: 'live_from_the_secret', callbackAuthKey: 'x'.repeat(32), projects: ['p'] });
  dir = await mkdtemp(join(tmpdir(), 'cli-target-'));
  // A value for every output the synthesized stack declares, as CloudFormation would answer after a deploy.
  const declared = Object.keys(synth().template.toJSON().Outputs as Record<string, unknown>);
  outputs = Object.fromEntries(declared.map((key) => [key, `value-of-${key}`]));
  outputs.DeadLetterQueueArn = DLQ_ARN;
  outputs.ScaleApiUrl = simulator.apiUrl;
  outputs.ClearUniqueIdOnError = 'false';
});
afterAll(async () => {
  await simulator.close();
  await rm(dir, { recursive: true, force: true });
});

const describeAnswer = (values: Record<string, string>) => ({
  Stacks: [{ StackName: 'ScaleSfsPipeline', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE' as const, Outputs: Object.entries(values).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })) }],
});
const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (err: unknown) => err as CliError);

describe('sfs-pipeline on a deployed stack', () => {
  it('needs only outputs the synthesized stack declares', () => {
    for (const key of REQUIRED_OUTPUTS) expect(Object.keys(outputs), key).toContain(key);
  });

  it("finds the stack's resources by its outputs, in the region asked for", async () => {
    cloudFormation.on(DescribeStacksCommand, { StackName: 'ScaleSfsPipeline' }).resolves(describeAnswer(outputs));
    const target = await resolveTarget({ stack: 'ScaleSfsPipeline', region: 'eu-west-1' });
    try {
      expect(target).toMatchObject({
        label: 'stack ScaleSfsPipeline (eu-west-1)',
        region: 'eu-west-1',
        scenesBucket: 'value-of-ScenesBucketName',
        resultsBucket: 'value-of-ResultsBucketName',
        tasksTable: 'value-of-TasksTableName',
        ingestQueueUrl: 'value-of-IngestQueueUrl',
        routing: { frameManifestSuffix: 'value-of-FrameManifestSuffix', clearUniqueIdOnError: false },
      });
      expect(await target.s3.config.region()).toBe('eu-west-1');
    } finally {
      target.close();
    }
  });

  it('says which outputs an older stack lacks, and that a missing stack is not found (exit 3)', async () => {
    const { IngestQueueUrl: _dropped, ...older } = outputs;
    cloudFormation.on(DescribeStacksCommand).resolvesOnce(describeAnswer(older));
    const missing = await refusal(resolveTarget({ stack: 'ScaleSfsPipeline', region: 'eu-west-1' }));
    expect(missing?.message).toBe('stack ScaleSfsPipeline has no output IngestQueueUrl: deploy this version of the pipeline to it (npm run cdk -- deploy)');

    cloudFormation.on(DescribeStacksCommand).rejects(Object.assign(new Error('Stack with id Nope does not exist'), { name: 'ValidationError' }));
    const absent = await refusal(resolveTarget({ stack: 'Nope', region: 'eu-west-1' }));
    expect([absent?.exitCode, absent?.message]).toEqual([3, 'no stack named Nope in this account and region: check --stack, --region or AWS_REGION, and your AWS profile']);
  });

  it("calls Scale with the key from the stack's secret, at the stack's Scale URL", async () => {
    cloudFormation.on(DescribeStacksCommand).resolves(describeAnswer(outputs));
    secrets.on(GetSecretValueCommand, { SecretId: 'value-of-ScaleApiKeySecretName' }).resolves({ SecretString: 'live_from_the_secret\n' });
    const target = await resolveTarget({ stack: 'ScaleSfsPipeline', region: 'eu-west-1' });
    try {
      // The simulator answers 401 to any other key: a listing proves the secret's key (trimmed) was used.
      expect((await (await target.scale()).listTasks({ project: 'p' })).docs).toEqual([]);
      expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    } finally {
      target.close();
    }
  });

  it('refuses to call Scale before the key is set, saying how to set it', async () => {
    cloudFormation.on(DescribeStacksCommand).resolves(describeAnswer(outputs));
    secrets.on(GetSecretValueCommand).resolves({});
    const target = await resolveTarget({ stack: 'ScaleSfsPipeline', region: 'eu-west-1' });
    try {
      const error = await refusal(target.scale());
      expect(error?.message).toBe('the secret value-of-ScaleApiKeySecretName has no value yet: set the Scale API key first (README, "Deploy to AWS")');
    } finally {
      target.close();
    }
  });

  it("redrives with SQS's message move task from the dead-letter queue back to its source, reporting how many", async () => {
    cloudFormation.on(DescribeStacksCommand).resolves(describeAnswer(outputs));
    sqs.on(GetQueueAttributesCommand, { QueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/ScaleSfsPipeline-IngestDeadLetters' }).resolves({ Attributes: { ApproximateNumberOfMessages: '3' } });
    sqs.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'handle-1' });
    const target = await resolveTarget({ stack: 'ScaleSfsPipeline', region: 'eu-west-1' });
    try {
      expect(await target.redrive()).toEqual({ moved: 3, taskHandle: 'handle-1' });
      // No destination: SQS moves them back to the queue they were dead-lettered from.
      expect(sqs.commandCalls(StartMessageMoveTaskCommand).map((call) => call.args[0].input)).toEqual([{ SourceArn: DLQ_ARN }]);

      sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '0' } });
      expect(await target.redrive()).toEqual({ moved: 0 });
      expect(sqs.commandCalls(StartMessageMoveTaskCommand)).toHaveLength(1);
    } finally {
      target.close();
    }
  });

  it("derives a queue's URL from its ARN (standard and China partitions)", () => {
    expect(dlqUrlOf('arn:aws:sqs:us-east-1:111122223333:dlq')).toBe('https://sqs.us-east-1.amazonaws.com/111122223333/dlq');
    expect(dlqUrlOf('arn:aws-cn:sqs:cn-north-1:111122223333:dlq')).toBe('https://sqs.cn-north-1.amazonaws.com.cn/111122223333/dlq');
  });
});

describe('choosing a target', () => {
  it('needs exactly one of --stack and --local (exit 2), and a readable info file', async () => {
    expect((await refusal(resolveTarget({})))?.exitCode).toBe(2);
    expect((await refusal(resolveTarget({ stack: 'S', local: 'f' })))?.exitCode).toBe(2);
    const absent = join(dir, 'absent.json');
    const notFound = await refusal(resolveTarget({ local: absent }));
    // Nothing is there: writing the info file to that very path is the fix.
    expect(notFound?.message).toBe(`cannot read the local pipeline's info file ${absent}: there is no such file (ENOENT). Start the pipeline with: npm run local -- --info-file ${absent}`);
    const other = join(dir, 'other.json');
    await writeFile(other, '{"region":"us-east-1"}');
    expect((await refusal(resolveTarget({ local: other })))?.message).toContain('is not a local pipeline info file (no s3Endpoint, dynamodbEndpoint, sqsEndpoint, controlUrl, tasksTable, bucket, frameManifestSuffix)');
  });

  it('never suggests overwriting a file that is something else, nor quotes it', async () => {
    const cdkJson = join(dir, 'cdk.json');
    await writeFile(cdkJson, '{"app":"npx tsx bin/app.ts","context":{"secret-ish":"do not echo me"}}');
    const notes = join(dir, 'notes.txt');
    await writeFile(notes, 'password=hunter2 and more text that is not JSON');
    for (const file of [cdkJson, notes]) {
      const message = (await refusal(resolveTarget({ local: file })))?.message ?? '';
      expect(message).toMatch(/is not a local pipeline info file \((no s3Endpoint|it is not JSON)/);
      expect(message).toContain('give --local the file that npm run local -- --info-file FILE wrote');
      expect(message).not.toContain(`--info-file ${file}`);
      expect(message).not.toMatch(/do not echo me|hunter2|npx tsx/);
    }
  });

  it('says the local pipeline does not answer when its info file is left from a run that stopped', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const gone = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise((resolve) => server.close(resolve));
    const stale = join(dir, 'stale.json');
    const fields = { region: 'us-east-1', accessKeyId: 'x', secretAccessKey: 'x', bucket: 'scenes', resultsBucket: 'results', tasksTable: 'tasks', frameManifestSuffix: '.frames.json', clearUniqueIdOnError: true };
    await writeFile(stale, JSON.stringify({ ...fields, s3Endpoint: gone, dynamodbEndpoint: gone, sqsEndpoint: gone, controlUrl: gone, ingestQueueUrl: `${gone}/q`, scaleApiUrl: `${gone}/v1`, scaleApiKey: 'test_x' }));
    const uniqueId = `sfs-${'a'.repeat(40)}`;
    for (const argv of [['status', uniqueId], ['list'], ['retry', '--status', 'failed'], ['cancel', uniqueId], ['export', '--since', '1h']]) {
      const run = await cli(...argv, '--local', stale);
      expect(run.code, argv[0]).toBe(1);
      expect(run.stderr, argv[0]).toContain(`the local pipeline at ${gone} does not answer (connection refused): is npm run local still running? ${stale} may be left from a run that has stopped`);
    }
  });
});
