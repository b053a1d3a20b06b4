import { Duration, Stack } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import { Alarm, ComparisonOperator, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { FilterPattern, MetricFilter, type ILogGroup } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface PipelineAlarmsProps {
  deadLetterQueue: IQueue;
  createTask: IFunction;
  /** create-task's log group: its failure lines carry `failureKind`. */
  createTaskLogs: ILogGroup;
  callback: IFunction;
  api: RestApi;
  /** An existing SNS topic to notify; without it the alarms only show in CloudWatch. */
  topicArn?: string;
}

/** The few signals that mean an upload or a result is stuck and a person should look. */
export class PipelineAlarms extends Construct {
  readonly alarms: Alarm[];

  constructor(scope: Construct, id: string, props: PipelineAlarmsProps) {
    super(scope, id);
    const period = Duration.minutes(5);
    const anyOf = (name: string, metric: IMetric, description: string) =>
      new Alarm(this, name, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
    // create-task logs `failureKind: "scale_auth"` when Scale refuses the API key; those uploads are retried (and
    // end as 'failed'), so without this nobody would hear of a wrong or rotated key until everything is stuck.
    const authFailures = new MetricFilter(this, 'ScaleAuthFailureFilter', {
      logGroup: props.createTaskLogs,
      filterPattern: FilterPattern.stringValue('$.failureKind', '=', 'scale_auth'),
      // Per stack, so a second deployment in the account does not feed this alarm.
      metricNamespace: `ScaleSfsPipeline/${Stack.of(this).stackName}`,
      metricName: 'ScaleAuthFailures',
      metricValue: '1',
    });
    this.alarms = [
      anyOf(
        'ScaleAuthFailures',
        authFailures.metric({ period, statistic: 'Sum' }),
        'Scale refused the API key (401/403): uploads are retried and then parked as failed. Put the right key in the Scale API key secret, then redrive.',
      ),
      anyOf(
        'DeadLetters',
        props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        'Uploads failed every delivery and wait in the dead-letter queue: fix the cause (see create-task logs), then redrive.',
      ),
      anyOf('CreateTaskErrors', props.createTask.metricErrors({ period }), 'create-task crashed or timed out (record failures are reported per message and do not count here).'),
      anyOf('CallbackErrors', props.callback.metricErrors({ period }), 'The callback function crashed or timed out; Scale retries, but look before it gives up.'),
      anyOf(
        'CallbackServerErrors',
        props.api.metricServerError({ period, statistic: 'Sum' }),
        'Callbacks answered 5xx (storage failed, or secrets not set): Scale retries up to 20 times in 24 hours.',
      ),
    ];
    if (props.topicArn) {
      const action = new SnsAction(Topic.fromTopicArn(this, 'Topic', props.topicArn));
      for (const alarm of this.alarms) alarm.addAlarmAction(action);
    }
  }
}
