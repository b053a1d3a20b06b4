import { Duration, Stack } from 'aws-cdk-lib';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus, Rule, type Archive, type IRuleTarget } from 'aws-cdk-lib/aws-events';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnPipe } from 'aws-cdk-lib/aws-pipes';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { TASK_EVENT_DETAIL_TYPE, TASK_EVENT_SOURCE } from '../lambdas/core/events/task-event.js';
import type { TaskStatus } from '../lambdas/core/tasks/task-record.js';
import { FUNCTION_TIMEOUT_SECONDS } from './bundling.js';
import { PipelineFunction } from './pipeline-function.js';

export interface TaskEventsProps {
  table: ITableV2;
  /** Days the archive keeps events for replay; 0 keeps them forever. */
  archiveRetentionDays: number;
}

/**
 * Task events from the table's stream, not from the handlers: stream (INSERT/MODIFY) → EventBridge Pipe → the
 * task-events enrichment (status changes only, in the documented contract) → the stack's bus, with an archive
 * for replay. A batch that keeps failing goes to a dead-letter queue, never silently away.
 */
export class TaskEvents extends Construct {
  readonly bus: EventBus;
  readonly archive: Archive;
  readonly function: PipelineFunction;
  readonly deadLetterQueue: Queue;
  readonly pipeRole: Role;

  constructor(scope: Construct, id: string, props: TaskEventsProps) {
    super(scope, id);
    const stackName = Stack.of(this).stackName;
    this.bus = new EventBus(this, 'Bus', { eventBusName: `${stackName}-tasks`, description: 'One event per status change of a task record' });
    this.archive = this.bus.archive('Archive', {
      description: 'Every task event, for new consumers to replay',
      eventPattern: { source: [TASK_EVENT_SOURCE] },
      retention: props.archiveRetentionDays === 0 ? undefined : Duration.days(props.archiveRetentionDays),
    });
    this.function = new PipelineFunction(this, 'TaskEvents', {
      name: 'task-events',
      description: 'Turns task-table stream records into task events',
      timeout: Duration.seconds(FUNCTION_TIMEOUT_SECONDS['task-events']),
    });
    this.deadLetterQueue = new Queue(this, 'DeadLetters', { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) });

    this.pipeRole = new Role(this, 'PipeRole', { assumedBy: new ServicePrincipal('pipes.amazonaws.com'), description: 'The task-events pipe: stream in, events out' });
    const streamArn = props.table.tableStreamArn;
    if (!streamArn) throw new Error('the tasks table has no stream: task events need NEW_AND_OLD_IMAGES');
    this.pipeRole.addToPolicy(new PolicyStatement({ actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'], resources: [streamArn] }));
    this.pipeRole.addToPolicy(new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.function.functionArn] }));
    this.pipeRole.addToPolicy(new PolicyStatement({ actions: ['events:PutEvents'], resources: [this.bus.eventBusArn] }));
    this.pipeRole.addToPolicy(new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.deadLetterQueue.queueArn] }));

    new CfnPipe(this, 'Pipe', {
      name: `${stackName}-task-events`,
      description: 'Task-table stream → task events on the bus',
      roleArn: this.pipeRole.roleArn,
      source: streamArn,
      sourceParameters: {
        // Only writes; removals are not status changes. The enrichment drops changes that keep the status.
        filterCriteria: { filters: [{ pattern: JSON.stringify({ eventName: ['INSERT', 'MODIFY'] }) }] },
        dynamoDbStreamParameters: {
          startingPosition: 'TRIM_HORIZON',
          batchSize: 10,
          maximumRetryAttempts: 10,
          // One batch per shard at a time keeps each upload's events in order.
          parallelizationFactor: 1,
          deadLetterConfig: { arn: this.deadLetterQueue.queueArn },
        },
      },
      enrichment: this.function.functionArn,
      target: this.bus.eventBusArn,
      targetParameters: { eventBridgeEventBusParameters: { source: TASK_EVENT_SOURCE, detailType: TASK_EVENT_DETAIL_TYPE } },
    });
  }

  /** A rule on the bus for task events in these statuses (all when none are given), delivered to `target`. */
  onTask(id: string, filter: { statuses?: TaskStatus[] }, target: IRuleTarget): Rule {
    return new Rule(this, id, {
      eventBus: this.bus,
      eventPattern: {
        source: [TASK_EVENT_SOURCE],
        detailType: [TASK_EVENT_DETAIL_TYPE],
        ...(filter.statuses?.length ? { detail: { status: filter.statuses } } : {}),
      },
      targets: [target],
    });
  }
}
