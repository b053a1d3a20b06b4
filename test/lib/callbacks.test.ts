import { Match } from 'aws-cdk-lib/assertions';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inspect, synth } from '../helpers/synth.js';

const { template } = synth();
const { resources, functionNamed } = inspect(template);

describe('callback API', () => {
  it('has a name unique to the stack, and only POST /callback', () => {
    template.hasResourceProperties('AWS::ApiGateway::RestApi', { Name: 'Test-scale-callbacks', BinaryMediaTypes: ['*/*'] });
    template.resourceCountIs('AWS::ApiGateway::Method', 1);
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'callback' });
  });

  it('lets a request authorizer, cached on the header, ref and sig, decide before anything is stored', () => {
    const [authorizerFnId] = functionNamed('callback-auth');
    const [authorizerId] = resources('AWS::ApiGateway::Authorizer')[0]!;
    template.hasResourceProperties('AWS::ApiGateway::Authorizer', {
      Type: 'REQUEST',
      IdentitySource: 'method.request.header.scale-callback-auth,method.request.querystring.ref,method.request.querystring.sig',
      AuthorizerResultTtlInSeconds: 300,
      AuthorizerUri: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([{ 'Fn::GetAtt': [authorizerFnId, 'Arn'] }])]) }),
    });
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'POST',
      AuthorizationType: 'CUSTOM',
      AuthorizerId: { Ref: authorizerId },
      RequestParameters: { 'method.request.querystring.ref': true, 'method.request.querystring.sig': true },
    });
  });

  it('stores the raw body in the results bucket under callbacks/<ref>/<request id>.json, with a role that can do only that', () => {
    const [storeRoleId] = resources('AWS::IAM::Role').find(([id]) => id.includes('StoreRole'))!;
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      Integration: {
        Type: 'AWS',
        IntegrationHttpMethod: 'PUT',
        Credentials: { 'Fn::GetAtt': [storeRoleId, 'Arn'] },
        Uri: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp(':s3:path/$'), { Ref: Match.stringLikeRegexp('^Results') }, '/callbacks/{ref}/{requestId}.json'])] },
        RequestParameters: {
          // The ref the authorizer verified, never the query's own (a repeated parameter could name another).
          'integration.request.path.ref': 'context.authorizer.principalId',
          'integration.request.path.requestId': 'context.requestId',
          'integration.request.header.Content-Type': "'application/json'",
        },
        IntegrationResponses: Match.arrayWith([Match.objectLike({ StatusCode: '200' }), Match.objectLike({ StatusCode: '500', SelectionPattern: '(4|5)\\d{2}' })]),
      },
    });
    const policies = resources('AWS::IAM::Policy').filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === storeRoleId));
    expect(policies.map(([, p]) => p.Properties.PolicyDocument.Statement)).toEqual([
      [{ Action: 's3:PutObject', Effect: 'Allow', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [expect.stringMatching(/^Results/), 'Arn'] }, '/callbacks/*']] } }],
    ]);
  });

  it('keeps the signature out of traces and logs', () => {
    const [, stage] = resources('AWS::ApiGateway::Stage')[0]!;
    expect(stage.Properties.TracingEnabled).toBe(false);
    expect(stage.Properties.MethodSettings).toEqual([expect.objectContaining({ DataTraceEnabled: false, LoggingLevel: 'ERROR' })]);
    const format = stage.Properties.AccessLogSetting.Format as string;
    expect(format).toContain('$context.requestId');
    expect(format).not.toMatch(/querystring|\$context\.path|sig|requestOverride/i);
    // Nothing in the template names the query parameter's value: only API Gateway's own parameter mappings.
    const mentions = JSON.stringify(template.toJSON()).match(/querystring\.sig/g) ?? [];
    expect(mentions).toHaveLength(2); // the authorizer's identity source and the method's required parameter
  });

  it('applies stored callbacks from a queue fed by the results bucket', () => {
    const [callbackId] = functionNamed('callback');
    const [storedId] = resources('AWS::SQS::Queue').find(([id]) => id.startsWith('CallbackProcessingStored'))!;
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        QueueConfigurations: [{ Events: ['s3:ObjectCreated:*'], Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'callbacks/' }] } }, QueueArn: { 'Fn::GetAtt': [storedId, 'Arn'] } }],
      },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: callbackId },
      EventSourceArn: { 'Fn::GetAtt': [storedId, 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      // Ten stored callbacks per invocation, at most ten invocations at once: a burst queues instead of taking
      // the account's concurrency (the local pipeline runs the same).
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 1,
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });

  it('adds a per-IP WAF rate rule only when configured, and stays cdk-nag clean with it', () => {
    template.resourceCountIs('AWS::WAFv2::WebACL', 0);
    const { app, stack } = synth({ callbackWafRateLimit: 2_000 }, { nag: true });
    const assembly = app.synth();
    const withWaf = assembly.getStackByName(stack.stackName).template as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
    const acls = Object.values(withWaf.Resources).filter((r) => r.Type === 'AWS::WAFv2::WebACL');
    expect(acls.map((r) => r.Properties.Rules)).toEqual([[expect.objectContaining({ Action: { Block: {} }, Statement: { RateBasedStatement: { Limit: 2_000, AggregateKeyType: 'IP' } } })]]);
    expect(Object.values(withWaf.Resources).filter((r) => r.Type === 'AWS::WAFv2::WebACLAssociation')).toHaveLength(1);
    expect(JSON.parse(readFileSync(`${assembly.directory}/validation-report.json`, 'utf8'))).toMatchObject({ pluginReports: [] });
  });
});

describe('alarms', () => {
  const namespace = 'ScaleSfsPipeline/Test';
  const filters = () => resources('AWS::Logs::MetricFilter').map(([, f]) => [f.Properties.MetricTransformations[0].MetricName, f.Properties.FilterPattern, f.Properties.LogGroupName]);
  const logGroupOf = (name: string) => ({ Ref: functionNamed(name)[1].Properties.LoggingConfig.LogGroup.Ref });

  it('counts refusals, auth failures and rate waits from the functions’ log lines and the access log, per stack', () => {
    const accessLogs = { Ref: resources('AWS::Logs::LogGroup').find(([id]) => id.startsWith('CallbackApiAccessLogs'))![0] };
    expect(filters()).toEqual(
      expect.arrayContaining([
        ['CallbackRefusedSignature', '{ $.callbackRefusal = "signature" }', logGroupOf('callback-auth')],
        ['ScaleAuthFailures', '{ $.failureKind = "scale_auth" }', logGroupOf('create-task')],
        ['CallbackRefusedAuth', '{ $.callbackRefusal = "auth" }', logGroupOf('callback-auth')],
        ['CallbackRefusedBody', '{ $.callbackRefusal = "body" }', logGroupOf('callback')],
        ['CallbackRefusedSize', '{ $.status = "413" }', accessLogs],
        ['CallbackRefusedUrl', '{ $.callbackRefusal = "url" }', logGroupOf('callback-auth')],
        ['CallbackThrottled', '{ $.status = "429" }', accessLogs],
        ['ScaleRateWaits', '{ $.waitingFor = "scale_rate_limit" }', logGroupOf('create-task')],
      ]),
    );
    expect(filters()).toHaveLength(12); // and the reconciler's four (their own test)
    for (const [, f] of resources('AWS::Logs::MetricFilter')) {
      const transformation = f.Properties.MetricTransformations[0];
      const reconciler: Record<string, string> = { MissingStates: '$.missingStates', ReconciledTasks: '$.checked', Resubmissions: '$.resubmitted', RetriedErrors: '$.retriedErrors' };
      expect(transformation).toMatchObject({ MetricNamespace: namespace, MetricValue: reconciler[transformation.MetricName] ?? '1' });
    }
  });

  it('pages within one period on a wrong callback auth or signing key, throttling, refused bodies and sizes, dead letters, errors and 5xx', () => {
    const alarmed = resources('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    expect(alarmed.map((a) => a.MetricName).sort()).toEqual(
      [
        'ApproximateNumberOfMessagesVisible',
        'ApproximateNumberOfMessagesVisible',
        'ApproximateNumberOfMessagesVisible',
        '5XXError',
        'CallbackRefusedAuth',
        'CallbackRefusedBody',
        'CallbackRefusedSize',
        'CallbackRefusedUrl',
        'CallbackThrottled',
        'Errors',
        'Errors',
        'Errors',
        'MissingStates',
        'ScaleAuthFailures',
      ].sort(),
    );
    for (const alarm of alarmed.filter((a) => a.MetricName !== 'MissingStates')) {
      expect(alarm).toMatchObject({ Threshold: 1, EvaluationPeriods: 1, Period: 300, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
    }
    expect(alarmed.find((a) => a.MetricName === 'CallbackRefusedAuth')).toMatchObject({ Namespace: namespace, Statistic: 'Sum' });
    // API Gateway's metrics are keyed by API name: this stack's, not any API called "Api".
    expect(alarmed.find((a) => a.MetricName === '5XXError')).toMatchObject({ Namespace: 'AWS/ApiGateway', Dimensions: [{ Name: 'ApiName', Value: 'Test-scale-callbacks' }] });
    expect(alarmed.every((a) => a.AlarmActions === undefined)).toBe(true);

    const topicArn = 'arn:aws:sns:eu-west-1:123456789012:perception-oncall';
    const withTopic = Object.values(synth({ alarmTopicArn: topicArn }).template.findResources('AWS::CloudWatch::Alarm'));
    expect(withTopic.map((a) => a.Properties.AlarmActions)).toEqual(withTopic.map(() => [topicArn]));
  });
});
