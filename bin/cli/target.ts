import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetQueueAttributesCommand, SQSClient, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { ScaleClient } from '../../lambdas/core/scale/client.js';
import { documentClient, DynamoTaskStore } from '../../lambdas/core/tasks/dynamo-task-store.js';
import { TaskReader } from '../../lambdas/core/tasks/task-reader.js';
import type { LocalInfo } from '../../local/pipeline.js';
import { CliError, EXIT, printable, shellCommand } from './io.js';

/** Options every command that talks to a pipeline takes. */
export function withTarget(command: Command): Command {
  return command
    .option('--stack <name>', 'a deployed stack, found by name (region and credentials as the AWS CLI finds them)')
    .option('--region <region>', 'the stack\'s region (default: AWS_REGION or your AWS profile\'s)')
    .option('--local <info-file>', 'the local pipeline, by the info file npm run local -- --info-file wrote');
}

/** Where the CLI works: a deployed stack (by name) or the local pipeline (by its info file). */
export interface TargetOptions {
  stack?: string;
  local?: string;
  region?: string;
}

/** What a redrive did: messages moved back (local), or asked to be moved by SQS's move task (stack). */
export interface RedriveReport {
  moved: number;
  /** On a stack: SQS moves the messages asynchronously under this task handle. */
  taskHandle?: string;
  /** Locally: lines of the dead-letter file that are not messages (1-based, as the file was); they stay in it. */
  unreadableLines?: number[];
  /** Locally: the dead-letter file. */
  deadLetterFile?: string;
}

/** The pipeline's resources and clients, the same whichever kind of target. */
export interface PipelineTarget {
  /** For messages: "stack ScaleSfsPipeline (eu-west-1)" or "local pipeline (info file …)". */
  label: string;
  region: string;
  scenesBucket: string;
  resultsBucket: string;
  tasksTable: string;
  ingestQueueUrl: string;
  /** The deployed routing's settings that commands depend on. */
  routing: { frameManifestSuffix: string; clearUniqueIdOnError: boolean };
  s3: S3Client;
  sqs: SQSClient;
  doc: DynamoDBDocumentClient;
  reader: TaskReader;
  store: DynamoTaskStore;
  /** A Scale client with the pipeline's API key (read from its secret when first asked). */
  scale(): Promise<ScaleClient>;
  /** Moves the ingest dead-letter queue's messages back to the ingest queue. */
  redrive(): Promise<RedriveReport>;
  /** Releases the clients' sockets. */
  close(): void;
}

/** The stack outputs the CLI needs (names as `lib/pipeline-stack.ts` declares them). */
export const REQUIRED_OUTPUTS = [
  'ScenesBucketName',
  'ResultsBucketName',
  'TasksTableName',
  'IngestQueueUrl',
  'DeadLetterQueueArn',
  'ScaleApiKeySecretName',
  'ScaleApiUrl',
  'FrameManifestSuffix',
  'ClearUniqueIdOnError',
] as const;

export async function resolveTarget(options: TargetOptions): Promise<PipelineTarget> {
  if (options.stack && options.local) throw new CliError('give either --stack NAME or --local INFO_FILE, not both', EXIT.usage);
  if (options.local) return localTarget(options.local);
  if (options.stack) return stackTarget(options.stack, options.region);
  throw new CliError('say where the pipeline is: --stack NAME (a deployed stack) or --local INFO_FILE (from npm run local -- --info-file INFO_FILE)', EXIT.usage);
}

/** The fields without which a file is not the local pipeline's info file. */
const INFO_FIELDS = ['s3Endpoint', 'dynamodbEndpoint', 'sqsEndpoint', 'controlUrl', 'tasksTable', 'bucket', 'frameManifestSuffix'] as const;

/**
 * The info file's settings. The messages never quote the file (it may be anything, cdk.json or a secret) and only
 * suggest writing to the path when nothing is there yet.
 */
async function readInfoFile(infoFile: string): Promise<LocalInfoFile> {
  const shown = printable(infoFile);
  let text: string;
  try {
    text = await readFile(infoFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`cannot read the local pipeline's info file ${shown}: there is no such file (ENOENT). Start the pipeline with: ${shellCommand(['npm', 'run', 'local', '--', '--info-file', infoFile])}`);
    throw new CliError(`cannot read the local pipeline's info file ${shown} (${code ?? (err as Error).message}): check --local`);
  }
  const notInfo = (why: string) =>
    new CliError(`${shown} is not a local pipeline info file (${why}): give --local the file that npm run local -- --info-file FILE wrote (a new path: it writes the file when it is ready)`);
  let info: unknown;
  try {
    info = JSON.parse(text);
  } catch {
    throw notInfo('it is not JSON');
  }
  if (info === null || typeof info !== 'object' || Array.isArray(info)) throw notInfo('it is not a JSON object');
  const missing = INFO_FIELDS.filter((field) => typeof (info as Record<string, unknown>)[field] !== 'string');
  if (missing.length > 0) throw notInfo(`no ${missing.join(', ')}`);
  return info as LocalInfoFile;
}

/**
 * Turns "connect ECONNREFUSED" from a client of the local pipeline into what it means: the info file is left from a
 * run that has stopped. Added as the outermost middleware, so it sees the error once the SDK's retries gave up.
 */
function explainRefusal(endpoint: string, infoFile: string) {
  return <A, R>(next: (args: A) => Promise<R>) =>
    async (args: A): Promise<R> => {
      try {
        return await next(args);
      } catch (err) {
        if (!refused(err)) throw err;
        throw new CliError(
          `the local pipeline at ${printable(endpoint)} does not answer (connection refused): is npm run local still running? ${printable(infoFile)} may be left from a run that has stopped`,
        );
      }
    };
}
const EXPLAIN_REFUSAL = { step: 'initialize', name: 'explainLocalRefusal', priority: 'high' } as const;

function refused(err: unknown): boolean {
  for (let cause = err as { code?: string; message?: string; cause?: unknown } | undefined, depth = 0; cause && depth < 5; cause = cause.cause as typeof cause, depth++) {
    if (cause.code === 'ECONNREFUSED' || /\bECONNREFUSED\b/.test(String(cause.message))) return true;
  }
  return false;
}

/** What the CLI reads of the info file `npm run local -- --info-file` writes. */
type LocalInfoFile = Pick<
  LocalInfo,
  | 'region'
  | 'accessKeyId'
  | 'secretAccessKey'
  | 's3Endpoint'
  | 'bucket'
  | 'resultsBucket'
  | 'dynamodbEndpoint'
  | 'tasksTable'
  | 'scaleApiUrl'
  | 'scaleApiKey'
  | 'controlUrl'
  | 'sqsEndpoint'
  | 'ingestQueueUrl'
  | 'deadLetterFile'
  | 'frameManifestSuffix'
  | 'clearUniqueIdOnError'
>;

async function localTarget(infoFile: string): Promise<PipelineTarget> {
  const info = await readInfoFile(infoFile);
  const common = { region: info.region, credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey } };
  const s3 = new S3Client({ ...common, endpoint: info.s3Endpoint, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED' });
  const sqs = new SQSClient({ ...common, endpoint: info.sqsEndpoint });
  const dynamo = new DynamoDBClient({ ...common, endpoint: info.dynamodbEndpoint });
  s3.middlewareStack.add(explainRefusal(info.s3Endpoint, infoFile), EXPLAIN_REFUSAL);
  sqs.middlewareStack.add(explainRefusal(info.sqsEndpoint, infoFile), EXPLAIN_REFUSAL);
  dynamo.middlewareStack.add(explainRefusal(info.dynamodbEndpoint, infoFile), EXPLAIN_REFUSAL);
  return assemble({
    label: `local pipeline (${printable(infoFile)})`,
    region: info.region,
    scenesBucket: info.bucket,
    resultsBucket: info.resultsBucket,
    tasksTable: info.tasksTable,
    ingestQueueUrl: info.ingestQueueUrl,
    routing: { frameManifestSuffix: info.frameManifestSuffix, clearUniqueIdOnError: info.clearUniqueIdOnError },
    s3,
    sqs,
    dynamo,
    scaleKey: async () => ({ apiKey: info.scaleApiKey, baseUrl: info.scaleApiUrl }),
    redrive: async () => {
      const answer = await fetch(`${info.controlUrl}/redrive`, { method: 'POST' }).catch((err: Error) => {
        throw new CliError(`the local pipeline at ${printable(info.controlUrl)} does not answer (${err.message}): is npm run local still running?`);
      });
      if (!answer.ok) throw new CliError(`the local pipeline refused the redrive: ${answer.status} ${printable((await answer.text()).slice(0, 300))}`);
      const report = (await answer.json()) as RedriveReport;
      return report.unreadableLines?.length ? { ...report, deadLetterFile: info.deadLetterFile } : report;
    },
  });
}

async function stackTarget(stackName: string, region: string | undefined): Promise<PipelineTarget> {
  const clientConfig = region ? { region } : {};
  const cloudFormation = new CloudFormationClient(clientConfig);
  const outputs = await stackOutputs(cloudFormation, stackName);
  const resolvedRegion = await cloudFormation.config.region();
  cloudFormation.destroy();
  const sqs = new SQSClient(clientConfig);
  return assemble({
    label: `stack ${stackName} (${resolvedRegion})`,
    region: resolvedRegion,
    scenesBucket: outputs.ScenesBucketName,
    resultsBucket: outputs.ResultsBucketName,
    tasksTable: outputs.TasksTableName,
    ingestQueueUrl: outputs.IngestQueueUrl,
    routing: { frameManifestSuffix: outputs.FrameManifestSuffix, clearUniqueIdOnError: outputs.ClearUniqueIdOnError === 'true' },
    s3: new S3Client(clientConfig),
    sqs,
    dynamo: new DynamoDBClient(clientConfig),
    scaleKey: async () => {
      const secrets = new SecretsManagerClient(clientConfig);
      try {
        const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: outputs.ScaleApiKeySecretName }));
        if (!SecretString) throw new CliError(`the secret ${outputs.ScaleApiKeySecretName} has no value yet: set the Scale API key first (README, "Deploy to AWS")`);
        return { apiKey: SecretString.trim(), baseUrl: outputs.ScaleApiUrl };
      } finally {
        secrets.destroy();
      }
    },
    redrive: async () => {
      const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrlOf(outputs.DeadLetterQueueArn), AttributeNames: ['ApproximateNumberOfMessages'] }));
      const waiting = Number(Attributes?.ApproximateNumberOfMessages ?? 0);
      if (waiting === 0) return { moved: 0 };
      // Without a destination, SQS moves them back to the queue they were dead-lettered from.
      const { TaskHandle } = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: outputs.DeadLetterQueueArn }));
      return { moved: waiting, taskHandle: TaskHandle };
    },
  });
}

/** The stack's outputs by key; names the outputs that are missing (an older or a different stack). */
export async function stackOutputs(cloudFormation: CloudFormationClient, stackName: string): Promise<Record<(typeof REQUIRED_OUTPUTS)[number], string>> {
  let stack;
  try {
    stack = (await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
  } catch (err) {
    const message = (err as Error).message;
    if (/does not exist/.test(message)) throw new CliError(`no stack named ${stackName} in this account and region: check --stack, --region or AWS_REGION, and your AWS profile`, EXIT.notFound);
    throw new CliError(`cannot describe stack ${stackName}: ${message}`);
  }
  const outputs = Object.fromEntries((stack?.Outputs ?? []).map((output) => [output.OutputKey, output.OutputValue]));
  const missing = REQUIRED_OUTPUTS.filter((key) => !outputs[key]);
  if (missing.length > 0) throw new CliError(`stack ${stackName} has no output ${missing.join(', ')}: deploy this version of the pipeline to it (npm run cdk -- deploy)`);
  return outputs as Record<(typeof REQUIRED_OUTPUTS)[number], string>;
}

/** https://sqs.<region>.amazonaws.com/<account>/<name> from arn:aws:sqs:<region>:<account>:<name>. */
export function dlqUrlOf(arn: string): string {
  const [, partition, , region, account, name] = arn.split(':');
  const domain = partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `https://sqs.${region}.${domain}/${account}/${name}`;
}

function assemble(parts: Pick<PipelineTarget, 'label' | 'region' | 'scenesBucket' | 'resultsBucket' | 'tasksTable' | 'ingestQueueUrl' | 'routing'> & {
  s3: S3Client;
  sqs: SQSClient;
  dynamo: DynamoDBClient;
  scaleKey: () => Promise<{ apiKey: string; baseUrl: string }>;
  redrive: () => Promise<RedriveReport>;
}): PipelineTarget {
  const doc = documentClient(parts.dynamo);
  let scale: Promise<ScaleClient> | undefined;
  return {
    label: parts.label,
    region: parts.region,
    scenesBucket: parts.scenesBucket,
    resultsBucket: parts.resultsBucket,
    tasksTable: parts.tasksTable,
    ingestQueueUrl: parts.ingestQueueUrl,
    routing: parts.routing,
    s3: parts.s3,
    sqs: parts.sqs,
    doc,
    reader: new TaskReader(doc, parts.tasksTable),
    store: new DynamoTaskStore(doc, parts.tasksTable),
    scale: () => (scale ??= parts.scaleKey().then((key) => new ScaleClient(key))),
    redrive: parts.redrive,
    close: () => {
      parts.s3.destroy();
      parts.sqs.destroy();
      parts.dynamo.destroy();
    },
  };
}
