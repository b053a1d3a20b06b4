import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { IRuleTarget, Rule } from 'aws-cdk-lib/aws-events';
import type { Construct } from 'constructs';
import type { PipelineConfig } from '../lambdas/core/shared/config.js';
import type { TaskStatus } from '../lambdas/core/tasks/task-record.js';
import { CallbackApi } from './callback-api.js';
import { CallbackProcessing } from './callback-processing.js';
import { acknowledgeFindings } from './nag.js';
import { PipelineAlarms } from './pipeline-alarms.js';
import { sceneSuffixes, ScenesIngest } from './scenes-ingest.js';
import { PipelineSecrets } from './secrets.js';
import { secureBucket } from './secure-bucket.js';
import { CREATE_TASK_TIMEOUT, TaskCreation } from './task-creation.js';
import { Reconciler } from './reconciler.js';
import { TaskEvents } from './task-events.js';
import { TaskStoreTable } from './task-store.js';

export interface PipelineStackProps extends StackProps {
  config: PipelineConfig;
}

/** S3 .sfs upload → queue → create-task → Scale; Scale → callback API → results bucket → callback → DynamoDB. */
export class PipelineStack extends Stack {
  /** The task bus, its archive and the pipe that feeds it. */
  readonly taskEvents: TaskEvents;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const { config } = props;
    const removalPolicy = config.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;

    const accessLogs = secureBucket(this, 'AccessLogs', { removalPolicy });
    const ingest = new ScenesIngest(this, 'Ingest', {
      removalPolicy,
      accessLogs,
      existingBucketName: config.existingScenesBucketName,
      maxReceiveCount: config.maxReceiveCount,
      suffixes: sceneSuffixes(config.routing.frameManifestSuffix),
      notifyRemovals: config.cancelOnDelete,
      consumerTimeout: CREATE_TASK_TIMEOUT,
    });
    const results = secureBucket(this, 'Results', { removalPolicy, accessLogs, accessLogsPrefix: 'results/' });
    const store = new TaskStoreTable(this, 'TaskStore', { removalPolicy });
    const secrets = new PipelineSecrets(this, 'Secrets', { removalPolicy });

    const callbacks = new CallbackApi(this, 'CallbackApi', {
      results,
      callbackAuthKey: secrets.callbackAuthKey,
      signingKey: secrets.signingKey,
      wafRateLimit: config.callbackWafRateLimit,
    });
    const processing = new CallbackProcessing(this, 'CallbackProcessing', { config, table: store.table, results, scaleApiKey: secrets.scaleApiKey });
    this.taskEvents = new TaskEvents(this, 'TaskEvents', { table: store.table, archiveRetentionDays: config.eventArchiveRetentionDays });
    const reconciler = new Reconciler(this, 'Reconciler', { config, table: store.table, results, ingestQueue: ingest.queue, scaleApiKey: secrets.scaleApiKey });
    const creation = new TaskCreation(this, 'TaskCreation', {
      config,
      queue: ingest.queue,
      scenes: ingest.bucket,
      table: store.table,
      scaleApiKey: secrets.scaleApiKey,
      signingKey: secrets.signingKey,
      callbackUrl: callbacks.callbackUrl,
    });

    new PipelineAlarms(this, 'Alarms', {
      deadLetterQueues: [ingest.deadLetterQueue, processing.deadLetterQueue, this.taskEvents.deadLetterQueue],
      createTask: creation.function,
      callback: processing.function,
      callbackAuth: callbacks.authorizer,
      reconcile: reconciler.function,
      missingStatesThreshold: config.missingStatesAlarmThreshold,
      api: callbacks.api,
      apiAccessLogs: callbacks.accessLogs,
      topicArn: config.alarmTopicArn,
    });

    new CfnOutput(this, 'ScenesBucketName', { value: ingest.bucket.bucketName, description: 'Upload .sfs scenes here' });
    new CfnOutput(this, 'CallbackUrl', { value: callbacks.callbackUrl, description: 'Scale posts task callbacks here (each task gets its own signed query)' });
    new CfnOutput(this, 'TasksTableName', { value: store.table.tableName });
    new CfnOutput(this, 'TasksTableStreamArn', { value: store.table.tableStreamArn ?? '' });
    new CfnOutput(this, 'ResultsBucketName', { value: results.bucketName });
    new CfnOutput(this, 'IngestQueueUrl', { value: ingest.queue.queueUrl, description: 'Scene notifications for create-task; sfs-pipeline retry sends here' });
    new CfnOutput(this, 'ScaleApiUrl', { value: props.config.scaleApiUrl, description: "Scale's API, as the functions call it" });
    new CfnOutput(this, 'FrameManifestSuffix', { value: config.routing.frameManifestSuffix, description: 'Uploads ending with this are frame manifests' });
    new CfnOutput(this, 'ClearUniqueIdOnError', { value: String(config.routing.clearUniqueIdOnError), description: 'Whether Scale frees a task\'s unique_id when it errors (a retry of an errored upload needs it)' });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: ingest.deadLetterQueue.queueUrl, description: 'Uploads that failed every retry; redrive after fixing the cause' });
    new CfnOutput(this, 'DeadLetterQueueArn', {
      value: ingest.deadLetterQueue.queueArn,
      description: 'For the redrive: aws sqs start-message-move-task --source-arn <this>',
    });
    new CfnOutput(this, 'CallbackDeadLetterQueueArn', {
      value: processing.deadLetterQueue.queueArn,
      description: 'Stored callbacks that could not be applied; redrive after fixing the cause (the bodies stay in the results bucket)',
    });
    new CfnOutput(this, 'TaskEventBusName', { value: this.taskEvents.bus.eventBusName, description: 'Task events (source scale-sfs-pipeline): attach downstream consumers here' });
    new CfnOutput(this, 'TaskEventBusArn', { value: this.taskEvents.bus.eventBusArn });
    new CfnOutput(this, 'ScaleApiKeySecretName', { value: secrets.scaleApiKey.secretName });
    new CfnOutput(this, 'ScaleCallbackAuthKeySecretName', { value: secrets.callbackAuthKey.secretName });
    new CfnOutput(this, 'CallbackSigningKeySecretName', { value: secrets.signingKey.secretName });

    acknowledgeFindings({ stack: this, ingest, creation, callbacks, processing, results, secrets, taskEvents: this.taskEvents, reconciler });
  }

  /**
   * Wires a downstream consumer in one line: `stack.onTask('Export', { statuses: ['completed'] }, new SqsQueue(q))`.
   * Events follow TaskEventDetailSchema (lambdas/core/events/task-event.ts).
   */
  onTask(id: string, filter: { statuses?: TaskStatus[] }, target: IRuleTarget): Rule {
    return this.taskEvents.onTask(id, filter, target);
  }
}
