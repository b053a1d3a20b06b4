import { Duration } from 'aws-cdk-lib';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { EventType, type IBucket } from 'aws-cdk-lib/aws-s3';
import { SqsDestination } from 'aws-cdk-lib/aws-s3-notifications';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CALLBACK_ARCHIVE_PREFIX } from '../lambdas/core/callbacks/callback-auth.js';
import { FUNCTION_TIMEOUT_SECONDS } from './bundling.js';
import { PipelineFunction } from './pipeline-function.js';

export interface CallbackProcessingProps {
  table: ITableV2;
  results: IBucket;
  maxReceiveCount: number;
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
    const timeout = Duration.seconds(FUNCTION_TIMEOUT_SECONDS.callback);
    this.function = new PipelineFunction(this, 'Callback', {
      name: 'callback',
      description: 'Applies stored Scale callbacks to the task records',
      timeout,
    }).bindTable(props.table);
    // Reads the stored bodies; writes nothing to S3.
    this.function.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [props.results.arnForObjects(`${CALLBACK_ARCHIVE_PREFIX}*`)] }));

    this.deadLetterQueue = new Queue(this, 'DeadLetters', { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });
    this.queue = new Queue(this, 'Stored', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(timeout.toSeconds() * 6),
      retentionPeriod: Duration.days(14),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
    props.results.addEventNotification(EventType.OBJECT_CREATED, new SqsDestination(this.queue), { prefix: CALLBACK_ARCHIVE_PREFIX });
    this.function.addEventSource(new SqsEventSource(this.queue, { batchSize: 10, maxBatchingWindow: Duration.seconds(1), reportBatchItemFailures: true }));
  }
}
