import { Duration, Stack } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import { Alarm, ComparisonOperator, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { FilterPattern, MetricFilter, type ILogGroup } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** The dead-letter queues, in the order PipelineAlarmsProps lists them: alarm name and what to do. */
const DEAD_LETTERS: Array<[string, string]> = [
  ['DeadLetters', 'Uploads failed every delivery and wait in the dead-letter queue: fix the cause (see create-task logs), then redrive.'],
  ['CallbackDeadLetters', 'Stored callbacks failed every attempt to apply them (see callback logs); fix the cause, then redrive.'],
  ['TaskEventDeadLetters', "Task events could not be delivered to the bus (see the pipe's and task-events' logs); the stream records wait in the queue."],
];

export interface PipelineAlarmsProps {
  /** The ingest, callback and task-event dead-letter queues. */
  deadLetterQueues: IQueue[];
  createTask: LambdaFunction;
  callback: LambdaFunction;
  callbackAuth: LambdaFunction;
  reconcile: LambdaFunction;
  /** Missing states in one reconciler run that mean the callback path is broken. */
  missingStatesThreshold: number;
  api: RestApi;
  apiAccessLogs: ILogGroup;
  /** An existing SNS topic to notify; without it the alarms only show in CloudWatch. */
  topicArn?: string;
}

/**
 * The signals that mean an upload or a result is stuck, refused or about to be lost, and a person should look.
 * Refusals are counted from the functions' structured log lines (and API Gateway's access log), per stack.
 */
export class PipelineAlarms extends Construct {
  readonly alarms: Alarm[];
  /** Metric namespace of the counted log lines: per stack, so a second deployment never feeds these alarms. */
  readonly namespace: string;

  constructor(scope: Construct, id: string, props: PipelineAlarmsProps) {
    super(scope, id);
    const period = Duration.minutes(5);
    this.namespace = `ScaleSfsPipeline/${Stack.of(this).stackName}`;
    /** A metric of a log group's structured lines: 1 per line whose field equals `value`, or the sum of a numeric field. */
    const count = (name: string, logGroup: ILogGroup, field: string, value: string | 'sum') =>
      new MetricFilter(this, `${name}Filter`, {
        logGroup,
        filterPattern: value === 'sum' ? FilterPattern.numberValue(field, '>=', 0) : FilterPattern.stringValue(field, '=', value),
        metricNamespace: this.namespace,
        metricName: name,
        metricValue: value === 'sum' ? field : '1',
      }).metric({ period, statistic: 'Sum' });
    const anyOf = (name: string, metric: IMetric, description: string) =>
      new Alarm(this, name, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });

    // The reconciler's figures, per run (alarmed below: missing states).
    for (const [name, field] of [['ReconciledTasks', '$.checked'], ['Resubmissions', '$.resubmitted'], ['RetriedErrors', '$.retriedErrors']] as const) count(name, props.reconcile.logGroup, field, 'sum');
    // Counted, not alarmed: anyone on the internet can send a URL this stack did not sign.
    count('CallbackRefusedSignature', props.callbackAuth.logGroup, '$.callbackRefusal', 'signature');
    // Counted, not alarmed: uploads sent back to the queue to wait for their turn at Scale (a backlog at its limit).
    count('ScaleRateWaits', props.createTask.logGroup, '$.waitingFor', 'scale_rate_limit');
    this.alarms = [
      anyOf(
        'ScaleAuthFailures',
        count('ScaleAuthFailures', props.createTask.logGroup, '$.failureKind', 'scale_auth'),
        'Scale refused the API key (401/403): uploads are retried and then parked as failed. Put the right key in the Scale API key secret, then redrive.',
      ),
      // Only Scale holds URLs this stack signed: a genuine URL with a wrong header is Scale with a key we do not hold.
      anyOf(
        'CallbackAuthRefused',
        count('CallbackRefusedAuth', props.callbackAuth.logGroup, '$.callbackRefusal', 'auth'),
        "Scale's callbacks are refused: the callback auth key secret does not match Scale's. Results are lost after 24 hours of retries — fix the secret now.",
      ),
      anyOf(
        'CallbackUrlRefused',
        count('CallbackRefusedUrl', props.callbackAuth.logGroup, '$.callbackRefusal', 'url'),
        "Scale's callbacks carry URLs this stack cannot verify: the signing key changed (rotated, or the stack re-created) while tasks were open. Put the previous key back until they are done.",
      ),
      anyOf(
        'CallbackThrottled',
        count('CallbackThrottled', props.apiAccessLogs, '$.status', '429'),
        "The callback API throttled calls (429): Scale retries, but a flood may be taking Scale's budget. See the access log; consider callbackWafRateLimit.",
      ),
      anyOf(
        'CallbackBodyRefused',
        count('CallbackRefusedBody', props.callback.logGroup, '$.callbackRefusal', 'body'),
        'A stored callback is not a Scale callback the pipeline can read; its body is kept under callbacks/ in the results bucket.',
      ),
      anyOf(
        'CallbackTooLarge',
        count('CallbackRefusedSize', props.apiAccessLogs, '$.status', '413'),
        "A callback was larger than API Gateway's 10 MB limit and refused (413); Scale retries, but it can never fit.",
      ),
      ...props.deadLetterQueues.map((queue, i) => {
        const [name, description] = DEAD_LETTERS[i]!;
        return anyOf(name, queue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }), description);
      }),
      new Alarm(this, 'MissingCallbacks', {
        metric: count('MissingStates', props.reconcile.logGroup, '$.missingStates', 'sum'),
        threshold: props.missingStatesThreshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: 'The reconciler found task states no callback had brought: the callback path may be broken (check the API, the authorizer and the callback auth key).',
      }),
      anyOf('ReconcileErrors', props.reconcile.metricErrors({ period }), 'The reconciler failed (Scale unreachable, a wrong API key?): lost callbacks are not being recovered.'),
      anyOf('CreateTaskErrors', props.createTask.metricErrors({ period }), 'create-task crashed or timed out (record failures are reported per message and do not count here).'),
      anyOf('CallbackErrors', props.callback.metricErrors({ period }), 'The callback function crashed or timed out; its messages come back, then go to the dead letters.'),
      anyOf(
        'CallbackServerErrors',
        props.api.metricServerError({ period, statistic: 'Sum' }),
        'Callbacks answered 5xx (storing failed, or the authorizer failed: secrets not set?): Scale retries up to 20 times in 24 hours.',
      ),
    ];
    if (props.topicArn) {
      const action = new SnsAction(Topic.fromTopicArn(this, 'Topic', props.topicArn));
      for (const alarm of this.alarms) alarm.addAlarmAction(action);
    }
  }
}
