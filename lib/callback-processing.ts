import { Duration } from 'aws-cdk-lib';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { EventType, type IBucket } from 'aws-cdk-lib/aws-s3';
import { SqsDestination } from 'aws-cdk-lib/aws-s3-notifications';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CALLBACK_ARCHIVE_PREFIX } from '../lambdas/core/callbacks/callback-auth.js';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { PipelineConfig } from '../lambdas/core/shared/config.js';
import { FUNCTION_TIMEOUT_SECONDS } from './bundling.js';
import { PipelineFunction } from './pipeline-function.js';

/** Where result files are copied: `results/<uniqueId>/…` in the results bucket. */
const RESULT_FILES_PREFIX = 'results/';
/** Stored callbacks per invocation (the event source's batch size); the function applies a batch's records concurrently. */
export const CALLBACK_BATCH_SIZE = 10;
/**
 * Concurrent callback invocations (the event source's maximum concurrency). Bounded, so that a burst of callbacks
 * (a large batch completing at once) queues up instead of taking the account's concurrency from create-task and
 * the authorizer while Scale waits on it; Scale already has its 200 once a body is stored, so waiting costs nothing
 * but latency. The local pipeline runs the same number of instances.
 */
export const CALLBACK_MAX_CONCURRENCY = 10;

export interface CallbackProcessingProps {
  config: PipelineConfig;
  table: ITableV2;
  results: IBucket;
  /** Secure Result URLs (result files on Scale's own hosts) need the API key. */
  scaleApiKey: ISecret;
}

/**
 * Stored callbacks → S3 notification → an encrypted queue (with dead letters) → the callback function, which
 * applies each to the task's record. Off Scale's request: Scale already has its 200 once the body is stored.
 */
export class CallbackProcessing extends Construct {
  readonly function: PipelineFunction;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: CallbackProcessingProps) {
    super(scope, id);
    const { config } = props;
    const timeout = Duration.seconds(FUNCTION_TIMEOUT_SECONDS.callback);
    this.function = new PipelineFunction(this, 'Callback', {
      name: 'callback',
      description: 'Applies stored Scale callbacks to the task records and copies their result files home',
      timeout,
      environment: {
        RESULTS_BUCKET: props.results.bucketName,
        MAX_RECEIVE_COUNT: String(config.maxReceiveCount),
        RESULT_FILE_HOSTS: JSON.stringify(config.resultFileHosts),
        RESULT_FILES_ALLOW_HTTP: String(config.resultFilesAllowHttp),
        MAX_RESULT_FILE_BYTES: String(config.maxResultFileBytes),
      },
    })
      .bindTable(props.table)
      .bindSecret(props.scaleApiKey, 'SCALE_API_KEY_SECRET_ID');
    // Reads the stored bodies; writes result files under results/, nowhere else.
    this.function.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [props.results.arnForObjects(`${CALLBACK_ARCHIVE_PREFIX}*`)] }));
    this.function.addToRolePolicy(new PolicyStatement({ actions: ['s3:PutObject'], resources: [props.results.arnForObjects(`${RESULT_FILES_PREFIX}*`)] }));

    this.deadLetterQueue = new Queue(this, 'DeadLetters', { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
    this.queue = new Queue(this, 'Stored', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(timeout.toSeconds() * 6),
      retentionPeriod: Duration.days(14),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: config.maxReceiveCount },
    });
    props.results.addEventNotification(EventType.OBJECT_CREATED, new SqsDestination(this.queue), { prefix: CALLBACK_ARCHIVE_PREFIX });
    this.function.addEventSource(
      new SqsEventSource(this.queue, { batchSize: CALLBACK_BATCH_SIZE, maxBatchingWindow: Duration.seconds(1), maxConcurrency: CALLBACK_MAX_CONCURRENCY, reportBatchItemFailures: true }),
    );
  }
}
