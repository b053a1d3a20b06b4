import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayAuthorizerResult, SQSBatchResponse } from 'aws-lambda';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CALLBACK_ARCHIVE_PREFIX } from '../lambdas/core/callbacks/callback-auth.js';
import { projectsOf } from '../lambdas/core/scenes/routing.js';
import type { FunctionName } from '../lib/bundling.js';
import { CALLBACK_BATCH_SIZE, CALLBACK_MAX_CONCURRENCY } from '../lib/callback-processing.js';
import { sceneSuffixes } from '../lib/scenes-ingest.js';
import { startApiFront } from './api-front.js';
import { buildBundles } from './build-bundles.js';
import { startDynamoFront } from './dynamodb-front.js';
import { createRateTable, createTasksTable, startDynamo } from './emulators/dynamodb.js';
import { startLocalS3 } from './emulators/s3.js';
import { startSecretsManager } from './emulators/secrets-manager.js';
import { startLocalSqs } from './emulators/sqs.js';
import { s3NotificationBody, s3ObjectEvent, type S3ObjectEvent } from './events.js';
import { FunctionPool } from './function-pool.js';
import type { Credentials } from './presign-check.js';
import { LocalQueue, type DeliveryFaults } from './queue.js';
import { reconcileEnvironment, startReconciler } from './reconciler.js';
import { startScaleSimulator } from './scale-simulator/server.js';
import { readCdkJsonConfig, type LocalInfo, type LocalPipelineOptions } from './pipeline-settings.js';
import { startTaskEvents } from './task-events.js';

/** The local S3's only account: every local client signs with it, and S3 checks every signature against it. */
export const LOCAL_CREDENTIALS: Credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const REGION = 'us-east-1';
const SCENES_BUCKET = 'scenes';
const RESULTS_BUCKET = 'results';
const TASKS_TABLE = 'tasks';
/** The Scale rate shared by the create-task instances (with sharedRateLimit, as the stack has it). */
const RATE_TABLE = 'scale-rate';
const INGEST_QUEUE = 'ingest';
/** Concurrent callback invocations, and records per invocation (below): the stack's event source's. */
const CALLBACK_CONCURRENCY = CALLBACK_MAX_CONCURRENCY;
const SECRET_IDS = { apiKey: 'local/scale-api-key', callbackAuth: 'local/scale-callback-auth', signing: 'local/callback-signing' };

export { LOCAL_PROJECT, readCdkJsonConfig, type LocalInfo, type LocalPipelineOptions } from './pipeline-settings.js';

/** Starts the whole pipeline on 127.0.0.1 and free ports; nothing reaches AWS or Scale. */
export async function startLocalPipeline(options: LocalPipelineOptions = {}) {
  // The simulator serves result files over http on loopback: the only host and scheme allowed here.
  const config = { ...readCdkJsonConfig(), resultFileHosts: ['127.0.0.1'], resultFilesAllowHttp: true, ...options.config };
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'scale-sfs-local-')));
  const logs = options.logs ?? process.stderr;
  const secrets = { scaleApiKey: `test_${randomBytes(12).toString('hex')}`, callbackAuthKey: randomBytes(24).toString('hex'), signingKey: randomBytes(32).toString('hex') };
  const projects = projectsOf(config.routing);

  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closeOne of closers.splice(0).reverse()) await closeOne().catch(() => undefined);
  };
  // A temporary folder of its own goes last, after everything that wrote into it has stopped; a given one stays.
  if (options.workDir === undefined) closers.push(() => rm(workDir, { recursive: true, force: true }));
  try {
    await mkdir(workDir, { recursive: true });
    const bundles = options.bundles ?? (await buildBundles(join(workDir, 'bundles')));
    const credentials = options.functionCredentials ?? LOCAL_CREDENTIALS;
    const s3 = await startLocalS3({
      buckets: [SCENES_BUCKET, RESULTS_BUCKET],
      versioning: options.s3Versioning ?? 'enabled',
      credentials: LOCAL_CREDENTIALS,
      urlRefusedCredentials: credentials === LOCAL_CREDENTIALS ? [] : [credentials],
    });
    closers.push(s3.close);
    const dynamo = await startDynamo();
    closers.push(dynamo.close);
    // Everyone reaches the table through the front, which gives it the stack's stream (NEW_AND_OLD_IMAGES).
    const dynamoFront = await startDynamoFront({ target: dynamo.endpoint, streamedTables: [TASKS_TABLE], region: REGION });
    closers.push(dynamoFront.close);
    const tables = new DynamoDBClient({ region: REGION, endpoint: dynamoFront.endpoint, credentials: LOCAL_CREDENTIALS });
    await createTasksTable(tables, TASKS_TABLE);
    const rateTable = config.sharedRateLimit ? RATE_TABLE : undefined;
    if (rateTable) await createRateTable(tables, rateTable);
    tables.destroy();
    const secretsManager = await startSecretsManager({ [SECRET_IDS.apiKey]: secrets.scaleApiKey, [SECRET_IDS.callbackAuth]: secrets.callbackAuthKey, [SECRET_IDS.signing]: secrets.signingKey });
    closers.push(secretsManager.close);
    const batches = config.routing.batch ? [{ name: config.routing.batch, project: config.routing.project }] : [];
    const scale = await startScaleSimulator({ apiKey: secrets.scaleApiKey, callbackAuthKey: secrets.callbackAuthKey, projects, batches, config: { completionDelayMs: 300, ...options.simulator } });
    closers.push(scale.close);

    // The API front needs the authorizer's pool and the pools need the API's URL: the front looks it up per call.
    const pools = new Map<FunctionName, FunctionPool>();
    const api = await startApiFront({
      authorize: (event) =>
        pools
          .get('callback-auth')!
          .invoke<APIGatewayAuthorizerResult>(event)
          // The pool reports a thrown error as "<name> failed: <message>"; API Gateway reads Lambda's message alone.
          .catch((err: Error) => Promise.reject(err.message === 'callback-auth failed: Unauthorized' ? new Error('Unauthorized') : err)),
      // The integration's role: the API puts callback bodies into the results bucket itself.
      results: { endpoint: s3.endpoint, region: REGION, bucket: RESULTS_BUCKET, credentials: LOCAL_CREDENTIALS },
    });
    closers.push(api.close);
    const callbackUrl = `${api.url}/callback`;
    // SQS's API for the functions that send (the reconciler resubmits uploads): into the ingest queue, made below.
    const ingest: { queue?: LocalQueue } = {};
    const sqs = await startLocalSqs({ queues: { [INGEST_QUEUE]: { send: (body) => ingest.queue!.send(body) } } });
    closers.push(sqs.close);

    // What every function gets: the SDK pointed at the emulators with its own variables, no shared config files.
    const common: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: workDir,
      AWS_CONFIG_FILE: join(workDir, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(workDir, 'no-aws-credentials'),
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynamoFront.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.endpoint,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      NODE_OPTIONS: '--enable-source-maps',
      POWERTOOLS_LOG_LEVEL: process.env.LOCAL_LOG_LEVEL ?? 'INFO',
    };
    // Each function's own variables, as the stack gives them: a function that needs one it was not given fails here too.
    const own: Record<FunctionName, NodeJS.ProcessEnv> = {
      'create-task': {
        TASKS_TABLE,
        ROUTING: JSON.stringify(config.routing),
        SCALE_API_URL: scale.apiUrl,
        CALLBACK_URL: callbackUrl,
        SCALE_API_KEY_SECRET_ID: SECRET_IDS.apiKey,
        CALLBACK_SIGNING_SECRET_ID: SECRET_IDS.signing,
        MAX_RECEIVE_COUNT: String(config.maxReceiveCount),
        CANCEL_ON_DELETE: String(config.cancelOnDelete),
        INGEST_QUEUE_URL: sqs.queueUrl(INGEST_QUEUE),
        ...(rateTable ? { SCALE_RATE_TABLE: rateTable } : {}),
      },
      callback: {
        TASKS_TABLE,
        RESULTS_BUCKET,
        MAX_RECEIVE_COUNT: String(config.maxReceiveCount),
        SCALE_API_KEY_SECRET_ID: SECRET_IDS.apiKey,
        RESULT_FILE_HOSTS: JSON.stringify(config.resultFileHosts),
        RESULT_FILES_ALLOW_HTTP: String(config.resultFilesAllowHttp),
        MAX_RESULT_FILE_BYTES: String(config.maxResultFileBytes),
      },
      'callback-auth': { CALLBACK_AUTH_SECRET_ID: SECRET_IDS.callbackAuth, CALLBACK_SIGNING_SECRET_ID: SECRET_IDS.signing },
      // Pure computation: nothing of its own.
      'task-events': {},
      reconcile: reconcileEnvironment(
        { TASKS_TABLE, RESULTS_BUCKET, SCALE_API_URL: scale.apiUrl, SCALE_API_KEY_SECRET_ID: SECRET_IDS.apiKey, INGEST_QUEUE_URL: sqs.queueUrl(INGEST_QUEUE) },
        config,
        options,
      ),
    };
    const pool = (name: FunctionName, size: number) => {
      const env = { ...common, ...own[name], POWERTOOLS_SERVICE_NAME: name };
      const created = new FunctionPool(name, bundles[name].path, env, size, logs, { timeoutSeconds: options.functionTimeoutSeconds?.[name] });
      pools.set(name, created);
      closers.push(() => created.close());
      return created;
    };
    const callbackAuthPool = pool('callback-auth', 4);
    const callbackPool = pool('callback', CALLBACK_CONCURRENCY);
    const createTaskPool = pool('create-task', config.maxConcurrency);
    // The table stream's pipe: one batch at a time, as the stack's pipe runs per shard.
    const taskEventsPool = pool('task-events', 1);
    // One instance: runs do not overlap.
    const reconcilePool = pool('reconcile', 1);

    // Two queues as the stack has them, each with its dead-letter queue after maxReceiveCount receives.
    const queueFor = async (name: string, deadLetterFile: string, maxConcurrency: number, consumer: FunctionPool, delivery?: Partial<DeliveryFaults>, batchSize = 10) => {
      await writeFile(deadLetterFile, '');
      const created = new LocalQueue({
        batchSize,
        maxConcurrency,
        visibilityTimeoutMs: options.visibilityTimeoutMs ?? 2_000,
        maxReceiveCount: config.maxReceiveCount,
        deadLetterFile,
        ...delivery,
        consumer: (event) => consumer.invoke<SQSBatchResponse>(event),
        onError: (err) => logs.write(`${name} invocation failed: ${(err as Error).message}\n`),
      });
      closers.push(async () => created.stop());
      return created;
    };
    const deadLetterFile = join(workDir, 'dead-letters.jsonl');
    const callbackDeadLetterFile = join(workDir, 'callback-dead-letters.jsonl');
    const queue = await queueFor('create-task', deadLetterFile, config.maxConcurrency, createTaskPool, options.delivery);
    ingest.queue = queue;
    const callbackQueue = await queueFor('callback', callbackDeadLetterFile, CALLBACK_CONCURRENCY, callbackPool, options.callbackDelivery, CALLBACK_BATCH_SIZE);

    // S3 → notification (suffix filter, created and removed, as the stack configures) → queue.
    const notified: S3ObjectEvent[] = [];
    const notify = (objects: S3ObjectEvent[]) => {
      notified.push(...objects);
      queue.send(s3NotificationBody(objects));
    };
    const suffixes = sceneSuffixes(config.routing.frameManifestSuffix);
    s3.onEvent((records) => {
      for (const event of records.map(s3ObjectEvent)) {
        const created = event.eventName?.startsWith('ObjectCreated:');
        // The stack only subscribes to removals when a delete cancels tasks.
        const wanted = created || (config.cancelOnDelete && event.eventName?.startsWith('ObjectRemoved:'));
        if (wanted && event.bucket === SCENES_BUCKET && suffixes.some((suffix) => event.key.endsWith(suffix))) notify([event]);
        // Stored callbacks: created objects under the prefix, to the callback queue.
        if (created && event.bucket === RESULTS_BUCKET && event.key.startsWith(CALLBACK_ARCHIVE_PREFIX)) callbackQueue.send(s3NotificationBody([event], 'callbacks'));
      }
    });

    const events = await startTaskEvents({
      workDir,
      region: REGION,
      front: dynamoFront,
      enrich: (records) => taskEventsPool.invoke<unknown[]>(records),
      eventsUrl: options.eventsUrl,
      logs,
    });
    closers.push(events.stop);
    const reconciler = await startReconciler({ invoke: () => reconcilePool.invoke({}), redrive: () => queue.redrive(), everyMs: options.reconcileEveryMs ?? config.reconcileEveryMinutes * 60_000, logs });
    closers.push(reconciler.close);

    const info: LocalInfo = {
      region: REGION,
      accessKeyId: LOCAL_CREDENTIALS.accessKeyId,
      secretAccessKey: LOCAL_CREDENTIALS.secretAccessKey,
      s3Endpoint: s3.endpoint,
      bucket: SCENES_BUCKET,
      resultsBucket: RESULTS_BUCKET,
      dynamodbEndpoint: dynamoFront.endpoint,
      tasksTable: TASKS_TABLE,
      ...(rateTable ? { rateTable } : {}),
      secretsManagerEndpoint: secretsManager.endpoint,
      callbackUrl,
      scaleApiUrl: scale.apiUrl,
      scaleApiKey: secrets.scaleApiKey,
      deadLetterFile,
      callbackDeadLetterFile,
      eventsFile: events.eventsFile,
      controlUrl: reconciler.controlUrl,
      sqsEndpoint: sqs.endpoint,
      ingestQueueUrl: sqs.queueUrl(INGEST_QUEUE),
      scaleApiKeySecretId: SECRET_IDS.apiKey,
      frameManifestSuffix: config.routing.frameManifestSuffix,
      clearUniqueIdOnError: config.routing.clearUniqueIdOnError,
    };
    return {
      info,
      config,
      scale,
      /** The ingest queue (scene notifications → create-task). */
      queue,
      /** The callback queue (stored callbacks → callback). */
      callbackQueue,
      /** The API Gateway stand-in: its counts of answers, refusals and authorizer calls. */
      api: { stats: api.stats },
      /** The function instances, for counting invocations. */
      pools: { createTask: createTaskPool, callback: callbackPool, callbackAuth: callbackAuthPool, taskEvents: taskEventsPool, reconcile: reconcilePool },
      /** Task events: the stream's pipe (absent until the task-events function exists) and the bus it puts on. */
      events,
      /** Every S3 notification sent to the queue so far (created and removed), keys decoded. */
      notified,
      /** Sends a notification as S3 would (also to deliver one twice, as S3 may). */
      notify,
      /** Runs the reconciler now, answering its report (as `POST ${info.controlUrl}/reconcile` does). */
      reconcile: reconciler.reconcile,
      /** Moves the ingest dead letters back into the queue (as `POST ${info.controlUrl}/redrive` does). */
      redrive: () => queue.redrive(),
      /** The SQS API the functions send to: every message it accepted. */
      sqs: { sent: sqs.sent },
      /** The secrets the functions use, for tests that forge or replay callbacks. */
      secrets,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export type LocalPipeline = Awaited<ReturnType<typeof startLocalPipeline>>;
