import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, TableV2, type ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { RATE_TABLE_SCHEMA } from '../lambdas/core/scale/dynamo-rate-store.js';
import type { PipelineConfig } from '../lambdas/core/shared/config.js';
import { FUNCTION_TIMEOUT_SECONDS } from './bundling.js';
import { PipelineFunction } from './pipeline-function.js';

/** Scale calls get a 30 s retry budget; S3, DynamoDB and the secrets need a little on top. */
export const CREATE_TASK_TIMEOUT = Duration.seconds(FUNCTION_TIMEOUT_SECONDS['create-task']);

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
  /** The Scale rate shared by every create-task instance (with `sharedRateLimit`). */
  readonly rateTable?: TableV2;

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
        // The last delivery before the dead-letter queue records the upload as 'failed'.
        MAX_RECEIVE_COUNT: String(props.config.maxReceiveCount),
        CANCEL_ON_DELETE: String(props.config.cancelOnDelete),
        // A change that has to wait (its turn at Scale's rate limit, an upload still being submitted) is sent back here, delayed.
        INGEST_QUEUE_URL: props.queue.queueUrl,
      },
    })
      // byKey: a delete finds the uploads of its object.
      .bindTable(props.table, ['byKey'])
      .bindSecret(props.scaleApiKey, 'SCALE_API_KEY_SECRET_ID')
      .bindSecret(props.signingKey, 'CALLBACK_SIGNING_SECRET_ID')
      // HEAD and ranged GET of uploads; the presigned attachment URLs carry this same permission.
      .bindReadableBucket(props.scenes);
    // Only SendMessage (as the reconciler): an upload waiting for Scale's rate limit goes back to its own queue.
    this.function.addToRolePolicy(new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [props.queue.queueArn] }));

    if (props.config.sharedRateLimit) {
      this.rateTable = new TableV2(this, 'RateTable', {
        partitionKey: { name: RATE_TABLE_SCHEMA.partitionKey, type: AttributeType.STRING },
        billing: Billing.onDemand(),
        // One item of a learnt rate and a schedule, stale after a quiet minute (then the next burst learns the limit
        // anew): nothing worth keeping past the stack, or restoring from a backup, so no PITR and no retained table.
        // No stream (nothing reacts to it), and DynamoDB's default encryption at rest: it holds no customer data.
        removalPolicy: RemovalPolicy.DESTROY,
      });
      // Read the state, take tickets and write decreases with conditional updates: nothing else, no one else.
      this.function.addToRolePolicy(new PolicyStatement({ actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], resources: [this.rateTable.tableArn] }));
      this.function.addEnvironment('SCALE_RATE_TABLE', this.rateTable.tableName);
    }

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
