import { Duration } from 'aws-cdk-lib';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { PipelineConfig } from '../lambdas/core/config.js';
import { PipelineFunction } from './pipeline-function.js';

/** Scale calls get a 30 s retry budget; S3, DynamoDB and the secrets need a little on top. */
export const CREATE_TASK_TIMEOUT = Duration.seconds(60);

export interface TaskCreationProps {
  config: PipelineConfig;
  queue: IQueue;
  scenes: IBucket;
  table: ITableV2;
  scaleApiKey: ISecret;
  signingKey: ISecret;
  callbackUrl: string;
}

/** The create-task function, fed from the ingest queue with bounded concurrency towards Scale. */
export class TaskCreation extends Construct {
  readonly function: PipelineFunction;

  constructor(scope: Construct, id: string, props: TaskCreationProps) {
    super(scope, id);
    this.function = new PipelineFunction(this, 'CreateTask', {
      name: 'create-task',
      description: 'Creates a Scale multistage task for each uploaded scene',
      timeout: CREATE_TASK_TIMEOUT,
      environment: {
        ROUTING: JSON.stringify(props.config.routing),
        SCALE_API_URL: props.config.scaleApiUrl,
        CALLBACK_URL: props.callbackUrl,
      },
    })
      .bindTable(props.table)
      .bindSecret(props.scaleApiKey, 'SCALE_API_KEY_SECRET_ID')
      .bindSecret(props.signingKey, 'CALLBACK_SIGNING_SECRET_ID')
      // HEAD and ranged GET of uploads; the presigned attachment URLs carry this same permission.
      .bindReadableBucket(props.scenes);

    this.function.addEventSource(
      new SqsEventSource(props.queue, {
        batchSize: 10,
        maxBatchingWindow: Duration.seconds(1),
        reportBatchItemFailures: true,
        maxConcurrency: props.config.maxConcurrency,
      }),
    );
  }
}
