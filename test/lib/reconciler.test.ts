import { describe, expect, it } from 'vitest';
import { inspect, synth } from '../helpers/synth.js';

const { template } = synth();
const { resources, functionNamed } = inspect(template);

describe('reconciler', () => {
  it('runs on an EventBridge Scheduler schedule, every 15 minutes unless configured', () => {
    const [reconcileId] = functionNamed('reconcile');
    const [roleId] = resources('AWS::IAM::Role').find(([id]) => id.startsWith('ReconcilerSchedulerRole'))!;
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(15 minutes)',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: { Arn: { 'Fn::GetAtt': [reconcileId, 'Arn'] }, RoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] } },
    });
    const policies = resources('AWS::IAM::Policy').filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId));
    expect(policies.map(([, p]) => p.Properties.PolicyDocument.Statement)).toEqual([[{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [reconcileId, 'Arn'] } }]]);
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'scheduler.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } } }] },
    });
    // Invoked asynchronously: a failed run is not run again at once (Lambda would retry twice by default).
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: reconcileId }, MaximumRetryAttempts: 0 });
    synth({ reconcileEveryMinutes: 5 }).template.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(5 minutes)' });
    synth({ reconcileEveryMinutes: 1 }).template.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(1 minute)' });
  });

  it('knows the routing, the thresholds and where to hand states and resubmissions', () => {
    const vars = functionNamed('reconcile')[1].Properties.Environment.Variables;
    expect(vars).toMatchObject({ RECONCILE_AFTER_MINUTES: '30', RECONCILE_LOOKBACK_HOURS: '25', ERROR_RESUBMISSIONS: '2', SCALE_API_URL: 'https://api.scale.com/v1' });
    expect(JSON.parse(vars.ROUTING)).toMatchObject({ project: 'my-scale-project' });
    expect(Object.keys(vars)).toEqual(expect.arrayContaining(['RESULTS_BUCKET', 'INGEST_QUEUE_URL', 'TASKS_TABLE', 'SCALE_API_KEY_SECRET_ID']));
    expect(() => synth({ reconcileLookBackHours: 24 })).toThrow("reconcileLookBackHours: must be at least 25 (Scale's callback retries last 24 hours)");
  });

  it('alarms when one run finds callbacks missing above the threshold, and when it fails', () => {
    const [, missing] = resources('AWS::CloudWatch::Alarm').find(([, a]) => a.Properties.MetricName === 'MissingStates')!;
    expect(missing.Properties).toMatchObject({ Namespace: 'ScaleSfsPipeline/Test', Statistic: 'Sum', Threshold: 5, Period: 300, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
    const [, filter] = resources('AWS::Logs::MetricFilter').find(([, f]) => f.Properties.MetricTransformations[0].MetricName === 'MissingStates')!;
    expect(filter.Properties).toMatchObject({
      FilterPattern: '{ $.missingStates >= 0 }',
      LogGroupName: { Ref: functionNamed('reconcile')[1].Properties.LoggingConfig.LogGroup.Ref },
      MetricTransformations: [{ MetricValue: '$.missingStates' }],
    });
    const figures = resources('AWS::Logs::MetricFilter').map(([, f]) => [f.Properties.MetricTransformations[0].MetricName, f.Properties.FilterPattern, f.Properties.MetricTransformations[0].MetricValue]);
    expect(figures).toEqual(
      expect.arrayContaining([
        ['ReconciledTasks', '{ $.checked >= 0 }', '$.checked'],
        ['Resubmissions', '{ $.resubmitted >= 0 }', '$.resubmitted'],
        ['RetriedErrors', '{ $.retriedErrors >= 0 }', '$.retriedErrors'],
      ]),
    );
    const other = Object.values(synth({ missingStatesAlarmThreshold: 20 }).template.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'MissingStates' } }));
    expect(other.map((a) => a.Properties.Threshold)).toEqual([20]);
  });
});
