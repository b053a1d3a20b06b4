import { Duration, Stack } from 'aws-cdk-lib';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { CfnSchedule } from 'aws-cdk-lib/aws-scheduler';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CALLBACK_ARCHIVE_PREFIX } from '../lambdas/core/callbacks/callback-auth.js';
import type { PipelineConfig } from '../lambdas/core/shared/config.js';
import { FUNCTION_TIMEOUT_SECONDS } from './bundling.js';
import { PipelineFunction } from './pipeline-function.js';

export interface ReconcilerProps {
  config: PipelineConfig;
  table: ITableV2;
  results: IBucket;
  ingestQueue: IQueue;
  scaleApiKey: ISecret;
}

/**
 * Reconcile, don't trust: on a schedule (EventBridge Scheduler), ask Scale what changed and hand every state the
 * records lack to the callback path (so a late callback and a reconciled state are ordered the same way); adopt or
 * resubmit uploads stuck in `submitting`.
 */
export class Reconciler extends Construct {
  readonly function: PipelineFunction;
  readonly schedule: CfnSchedule;

  constructor(scope: Construct, id: string, props: ReconcilerProps) {
    super(scope, id);
    const { config } = props;
    this.function = new PipelineFunction(this, 'Reconcile', {
      name: 'reconcile',
      description: 'Asks Scale for task states the records lack; resubmits uploads that never reached Scale',
      timeout: Duration.seconds(FUNCTION_TIMEOUT_SECONDS.reconcile),
      environment: {
        ROUTING: JSON.stringify(config.routing),
        SCALE_API_URL: config.scaleApiUrl,
        RESULTS_BUCKET: props.results.bucketName,
        INGEST_QUEUE_URL: props.ingestQueue.queueUrl,
        RECONCILE_AFTER_MINUTES: String(config.reconcileAfterMinutes),
        RECONCILE_LOOKBACK_HOURS: String(config.reconcileLookBackHours),
        ERROR_RESUBMISSIONS: String(config.errorResubmissions),
      },
    })
      .bindSecret(props.scaleApiKey, 'SCALE_API_KEY_SECRET_ID')
      .bindTable(props.table, ['byStatus']);
    // The scheduler invokes asynchronously; a failed run waits for the next one rather than running again at once.
    this.function.configureAsyncInvoke({ retryAttempts: 0 });
    // States go where the callback path picks them up; resubmissions where create-task does.
    this.function.addToRolePolicy(new PolicyStatement({ actions: ['s3:PutObject'], resources: [props.results.arnForObjects(`${CALLBACK_ARCHIVE_PREFIX}*`)] }));
    this.function.addToRolePolicy(new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [props.ingestQueue.queueArn] }));

    const invoker = new Role(this, 'SchedulerRole', {
      // Only schedules of this account may use the role.
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } } }),
      description: 'Runs the reconciler',
    });
    invoker.addToPolicy(new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.function.functionArn] }));
    this.schedule = new CfnSchedule(this, 'Schedule', {
      description: 'Reconcile task records with Scale',
      scheduleExpression: `rate(${config.reconcileEveryMinutes} ${config.reconcileEveryMinutes === 1 ? 'minute' : 'minutes'})`,
      flexibleTimeWindow: { mode: 'OFF' },
      // A run that fails is not retried by the scheduler either: the next run comes soon enough.
      target: { arn: this.function.functionArn, roleArn: invoker.roleArn, retryPolicy: { maximumRetryAttempts: 0 } },
    });
  }
}
