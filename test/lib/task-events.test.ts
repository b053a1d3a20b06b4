import { Match, Template } from 'aws-cdk-lib/assertions';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { inspect, synth } from '../helpers/synth.js';

const { template } = synth();
const { resources, functionNamed } = inspect(template);
const [tableId] = resources('AWS::DynamoDB::GlobalTable')[0]!;
const [busId] = resources('AWS::Events::EventBus')[0]!;
const [dlqId] = resources('AWS::SQS::Queue').find(([id]) => id.startsWith('TaskEventsDeadLetters'))!;
const [pipeRoleId] = resources('AWS::IAM::Role').find(([id]) => id.startsWith('TaskEventsPipeRole'))!;

describe('task events', () => {
  it('runs a pipe from the table stream (writes only) through the enrichment to the bus, dead-lettering what fails', () => {
    const [eventsFnId] = functionNamed('task-events');
    template.hasResourceProperties('AWS::Pipes::Pipe', {
      Name: 'Test-task-events',
      RoleArn: { 'Fn::GetAtt': [pipeRoleId, 'Arn'] },
      Source: { 'Fn::GetAtt': [tableId, 'StreamArn'] },
      SourceParameters: {
        FilterCriteria: { Filters: [{ Pattern: '{"eventName":["INSERT","MODIFY"]}' }] },
        DynamoDBStreamParameters: {
          StartingPosition: 'TRIM_HORIZON',
          BatchSize: 10,
          ParallelizationFactor: 1,
          MaximumRetryAttempts: 10,
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlqId, 'Arn'] } },
        },
      },
      Enrichment: { 'Fn::GetAtt': [eventsFnId, 'Arn'] },
      Target: { 'Fn::GetAtt': [busId, 'Arn'] },
      TargetParameters: { EventBridgeEventBusParameters: { Source: 'scale-sfs-pipeline', DetailType: 'Task status changed' } },
    });
  });

  it('gives the pipe exactly what it needs: read the stream, invoke the enrichment, put events, dead-letter', () => {
    const [eventsFnId] = functionNamed('task-events');
    const policies = resources('AWS::IAM::Policy').filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === pipeRoleId));
    expect(policies.map(([, p]) => p.Properties.PolicyDocument.Statement)).toEqual([
      [
        { Action: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'], Effect: 'Allow', Resource: { 'Fn::GetAtt': [tableId, 'StreamArn'] } },
        { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [eventsFnId, 'Arn'] } },
        { Action: 'events:PutEvents', Effect: 'Allow', Resource: { 'Fn::GetAtt': [busId, 'Arn'] } },
        { Action: 'sqs:SendMessage', Effect: 'Allow', Resource: { 'Fn::GetAtt': [dlqId, 'Arn'] } },
      ],
    ]);
    template.hasResourceProperties('AWS::IAM::Role', { AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'pipes.amazonaws.com' } })] } });
  });

  it('names the bus per stack and archives its events for a configurable time (forever with 0)', () => {
    template.hasResourceProperties('AWS::Events::EventBus', { Name: 'Test-tasks' });
    template.hasResourceProperties('AWS::Events::Archive', {
      SourceArn: { 'Fn::GetAtt': [busId, 'Arn'] },
      EventPattern: { source: ['scale-sfs-pipeline'] },
      RetentionDays: 365,
    });
    synth({ eventArchiveRetentionDays: 30 }).template.hasResourceProperties('AWS::Events::Archive', { RetentionDays: 30 });
    const forever = Object.values(synth({ eventArchiveRetentionDays: 0 }).template.findResources('AWS::Events::Archive'));
    // CloudFormation's RetentionDays 0 means "keep forever".
    expect(forever.map((a) => a.Properties.RetentionDays)).toEqual([0]);
  });

  it('wires a downstream consumer in one line, filtered by status', () => {
    const { stack } = synth();
    const queue = new Queue(stack, 'ExportJobs');
    stack.onTask('Export', { statuses: ['completed'] }, new SqsQueue(queue));
    stack.onTask('Everything', {}, new SqsQueue(queue));
    const rules = Template.fromStack(stack).findResources('AWS::Events::Rule');
    expect(Object.values(rules).map((r) => r.Properties.EventPattern)).toEqual([
      { source: ['scale-sfs-pipeline'], 'detail-type': ['Task status changed'], detail: { status: ['completed'] } },
      { source: ['scale-sfs-pipeline'], 'detail-type': ['Task status changed'] },
    ]);
    expect(Object.values(rules).every((r) => JSON.stringify(r.Properties.EventBusName).includes('TaskEventsBus'))).toBe(true);
  });
});
