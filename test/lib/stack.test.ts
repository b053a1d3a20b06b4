import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readPipelineConfig } from '../../lib/config.js';
import { PipelineStack } from '../../lib/pipeline-stack.js';

const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as { context: Record<string, unknown> };

/** The stack as `cdk synth` builds it, with cdk.json's context; bundling skipped (the bundles are tested elsewhere). */
function synth(pipeline: Record<string, unknown> = {}, options: { nag?: boolean } = {}) {
  const base = cdkJson.context.pipeline as Record<string, unknown>;
  const app = new App({ context: { ...cdkJson.context, pipeline: { ...base, ...pipeline }, 'aws:cdk:bundling-stacks': [] } });
  const stack = new PipelineStack(app, 'Test', { config: readPipelineConfig(app) });
  if (options.nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  // Template.fromStack synthesizes; a nag run must synthesize itself, once.
  return { app, stack, get template() { return Template.fromStack(stack); } };
}

const { template } = synth();
const resources = (type: string) => Object.entries(template.findResources(type)) as Array<[string, { Properties: Record<string, any> }]>; // eslint-disable-line @typescript-eslint/no-explicit-any -- CloudFormation JSON
const projectFunctions = () => resources('AWS::Lambda::Function').filter(([, r]) => r.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME);
const functionNamed = (name: string) => projectFunctions().find(([, r]) => r.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === name)!;

describe('scenes ingest', () => {
  it('notifies the queue of every created and removed .sfs object and frame manifest', () => {
    const [uploadsId] = resources('AWS::SQS::Queue').find(([, q]) => q.Properties.RedrivePolicy)!;
    const toUploads = (event: 'Created' | 'Removed', suffix: string) => ({
      Events: [`s3:Object${event}:*`],
      Filter: { Key: { FilterRules: [{ Name: 'suffix', Value: suffix }] } },
      QueueArn: { 'Fn::GetAtt': [uploadsId, 'Arn'] },
    });
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        QueueConfigurations: [toUploads('Created', '.sfs'), toUploads('Removed', '.sfs'), toUploads('Created', '.frames.json'), toUploads('Removed', '.frames.json')],
      },
    });
    // Without cancel-on-delete the removals are not needed, and not sent.
    synth({ routing: { project: 'p', frameManifestSuffix: '.lidar.json' }, cancelOnDelete: false }).template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: { QueueConfigurations: [toUploads('Created', '.sfs'), toUploads('Created', '.lidar.json')] },
    });
  });

  it('keeps scenes in a versioned, encrypted, private, access-logged bucket that refuses plain HTTP', () => {
    const [scenesId] = resources('AWS::S3::Bucket').find(([id]) => id.startsWith('IngestScenes'))!;
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LoggingConfiguration: { DestinationBucketName: Match.anyValue(), LogFilePrefix: 'scenes/' },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: scenesId },
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  it('queues uploads encrypted, TLS only, with a dead-letter queue after the configured receives', () => {
    template.resourceCountIs('AWS::SQS::Queue', 2);
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
    });
    expect(synth({ maxReceiveCount: 3 }).template.findResources('AWS::SQS::Queue', { Properties: { RedrivePolicy: { maxReceiveCount: 3 } } })).not.toEqual({});
    for (const [id] of resources('AWS::SQS::Queue')) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      });
    }
  });

  it('feeds create-task in batches with partial failures and bounded concurrency, hidden for 6x its timeout', () => {
    const [createTaskId, createTask] = functionNamed('create-task');
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: createTaskId },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
      BatchSize: 10,
    });
    const [, uploads] = resources('AWS::SQS::Queue').find(([, q]) => q.Properties.RedrivePolicy)!;
    expect(uploads.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * createTask.Properties.Timeout);
    expect(synth({ maxConcurrency: 20 }).template.findResources('AWS::Lambda::EventSourceMapping', { Properties: { ScalingConfig: { MaximumConcurrency: 20 } } })).not.toEqual({});
  });

  it('watches an existing bucket instead of creating one when configured', () => {
    const other = synth({ existingScenesBucketName: 'team-scenes' }).template;
    expect(Object.keys(other.findResources('AWS::S3::Bucket')).some((id) => id.startsWith('IngestScenes'))).toBe(false);
    other.hasResourceProperties('Custom::S3BucketNotifications', { BucketName: 'team-scenes' });
  });
});

describe('functions', () => {
  it('runs every project function on Node.js 24, arm64, traced, with a log group that expires', () => {
    expect(projectFunctions().map(([, f]) => f.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME).sort()).toEqual(['callback', 'create-task']);
    for (const [, fn] of projectFunctions()) {
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], TracingConfig: { Mode: 'Active' }, Handler: 'index.handler' });
      expect(fn.Properties.LoggingConfig.LogGroup).toBeDefined();
    }
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: Match.anyValue() });
    // create-task gets the memory (and so the CPU) to parse an 8 MiB header of millions of tiny objects.
    expect(functionNamed('create-task')[1].Properties).toMatchObject({ MemorySize: 1024, Timeout: 60 });
    expect(functionNamed('callback')[1].Properties).toMatchObject({ MemorySize: 512, Timeout: 15 });
  });

  it('gives create-task its routing, the Scale URL and the signed callback base', () => {
    const [, fn] = functionNamed('create-task');
    const vars = fn.Properties.Environment.Variables;
    expect(JSON.parse(vars.ROUTING)).toMatchObject({ project: 'my-scale-project', clearUniqueIdOnError: true, presignExpiresSeconds: 21_600 });
    expect(vars.SCALE_API_URL).toBe('https://api.scale.com/v1');
    expect(JSON.stringify(vars.CALLBACK_URL)).toContain('/callback');
    expect(Object.keys(vars)).toEqual(expect.arrayContaining(['TASKS_TABLE', 'SCALE_API_KEY_SECRET_ID', 'CALLBACK_SIGNING_SECRET_ID']));
    expect(vars).toMatchObject({ MAX_RECEIVE_COUNT: '5', CANCEL_ON_DELETE: 'true' });
    const other = synth({ maxReceiveCount: 3, cancelOnDelete: false }).template;
    expect(Object.keys(other.findResources('AWS::Lambda::Function', { Properties: { Environment: { Variables: { MAX_RECEIVE_COUNT: '3', CANCEL_ON_DELETE: 'false' } } } }))).toHaveLength(1);
  });

  it('grants each function only its own resources, and no * other than X-Ray', () => {
    const statementsOf = (name: string) => {
      const [fnId, fn] = functionNamed(name);
      const role = fn.Properties.Role['Fn::GetAtt'][0];
      const policies = resources('AWS::IAM::Policy').filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === role));
      expect(policies.length, fnId).toBe(1);
      return policies[0]![1].Properties.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>;
    };
    const summary = (name: string) =>
      statementsOf(name).map((s) => ({ actions: [s.Action].flat().sort(), resources: JSON.stringify(s.Resource) }));
    for (const name of ['create-task', 'callback']) {
      for (const { actions, resources: res } of summary(name)) {
        expect(actions.some((a) => a === '*' || a.endsWith(':*')), `${name}: ${actions}`).toBe(false);
        if (res === '"*"') expect(actions, name).toEqual(['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
      }
    }
    const create = JSON.stringify(summary('create-task'));
    const callback = JSON.stringify(summary('callback'));
    expect(create).toContain('s3:GetObjectVersion');
    expect(create).toContain('ScaleApiKey');
    expect(create).not.toMatch(/s3:PutObject|ScaleCallbackAuthKey|Results/);
    expect(callback).toContain('s3:PutObject');
    expect(callback).toMatch(/callbacks\/\*/);
    expect(callback).toContain('ScaleCallbackAuthKey');
    expect(callback).not.toMatch(/s3:GetObject|ScaleApiKey|IngestScenes/);
    for (const text of [create, callback]) {
      expect(text).toContain('dynamodb:UpdateItem');
      expect(text).not.toMatch(/dynamodb:Scan|dynamodb:DeleteItem/);
    }
    // create-task queries one index (a delete finds the uploads of its key); nothing else reads an index.
    const queries = summary('create-task').filter((s) => s.actions.includes('dynamodb:Query'));
    expect(queries).toEqual([{ actions: ['dynamodb:Query'], resources: expect.stringMatching(/^\{"Fn::Join":.*\/index\/byKey"\]\]\}$/) }]);
    expect(callback).not.toMatch(/index|dynamodb:Query/);
  });
});

describe('callback API', () => {
  it('exposes only POST /callback, validated, throttled and access-logged', () => {
    template.resourceCountIs('AWS::ApiGateway::Method', 1);
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'POST',
      AuthorizationType: 'NONE',
      RequestParameters: { 'method.request.querystring.ref': true, 'method.request.querystring.sig': true },
      Integration: { Type: 'AWS_PROXY' },
    });
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'callback' });
    template.hasResourceProperties('AWS::ApiGateway::RequestValidator', { ValidateRequestBody: true, ValidateRequestParameters: true });
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.anyValue() },
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 })],
    });
  });
});

describe('task store', () => {
  it('keys by uniqueId with the byTaskId and byStatus indexes, on demand, encrypted, with PITR and a stream', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [{ AttributeName: 'uniqueId', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      SSESpecification: { SSEEnabled: true },
      GlobalSecondaryIndexes: Match.arrayWith([
        Match.objectLike({ IndexName: 'byTaskId', KeySchema: [{ AttributeName: 'taskId', KeyType: 'HASH' }] }),
        Match.objectLike({ IndexName: 'byStatus', KeySchema: [{ AttributeName: 'status', KeyType: 'HASH' }, { AttributeName: 'updatedAt', KeyType: 'RANGE' }] }),
        Match.objectLike({ IndexName: 'byKey', KeySchema: [{ AttributeName: 'key', KeyType: 'HASH' }, { AttributeName: 'createdAt', KeyType: 'RANGE' }] }),
      ]),
      Replicas: [Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true }, DeletionProtectionEnabled: true })],
    });
    template.hasResource('AWS::DynamoDB::GlobalTable', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    synth({ removalPolicy: 'destroy' }).template.hasResource('AWS::DynamoDB::GlobalTable', { DeletionPolicy: 'Delete' });
  });
});

describe('alarms', () => {
  it('raises an alarm on dead letters, function errors and callback 5xx, notifying a topic when given', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 5);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: '5XXError', Namespace: 'AWS/ApiGateway', Threshold: 1 });
    expect(Object.keys(template.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'Errors', Namespace: 'AWS/Lambda' } }))).toHaveLength(2);
    expect(Object.values(template.findResources('AWS::CloudWatch::Alarm')).every((a) => a.Properties.AlarmActions === undefined)).toBe(true);

    const topicArn = 'arn:aws:sns:eu-west-1:123456789012:perception-oncall';
    const withTopic = Object.values(synth({ alarmTopicArn: topicArn }).template.findResources('AWS::CloudWatch::Alarm'));
    expect(withTopic.map((a) => a.Properties.AlarmActions)).toEqual(withTopic.map(() => [topicArn]));
  });
});

describe('Scale auth failure alarm', () => {
  it('counts create-task’s scale_auth failure lines and alarms on the first one within a period', () => {
    const [, createTask] = functionNamed('create-task');
    const [filterId, filter] = resources('AWS::Logs::MetricFilter')[0]!;
    expect(resources('AWS::Logs::MetricFilter')).toHaveLength(1);
    expect(filter.Properties).toMatchObject({
      LogGroupName: { Ref: createTask.Properties.LoggingConfig.LogGroup.Ref },
      FilterPattern: '{ $.failureKind = "scale_auth" }',
      MetricTransformations: [{ MetricName: 'ScaleAuthFailures', MetricNamespace: 'ScaleSfsPipeline/Test', MetricValue: '1' }],
    });
    expect(filterId).toMatch(/ScaleAuthFailure/);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ScaleAuthFailures',
      Namespace: 'ScaleSfsPipeline/Test',
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
  });
});

describe('secrets and outputs', () => {
  it('creates the Scale secrets with a placeholder and generates the signing key', () => {
    template.resourceCountIs('AWS::SecretsManager::Secret', 3);
    expect(resources('AWS::SecretsManager::Secret').filter(([, s]) => s.Properties.SecretString === 'SET-ME')).toHaveLength(2);
    template.hasResourceProperties('AWS::SecretsManager::Secret', { GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true } });
  });

  it('outputs what an operator needs, and no secret value', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs).sort()).toEqual(
      [
        'CallbackSigningKeySecretName',
        'CallbackUrl',
        'DeadLetterQueueArn',
        'DeadLetterQueueUrl',
        'ResultsBucketName',
        'ScaleApiKeySecretName',
        'ScaleCallbackAuthKeySecretName',
        'ScenesBucketName',
        'TasksTableName',
        'TasksTableStreamArn',
      ].sort(),
    );
    expect(JSON.stringify(outputs)).not.toMatch(/SecretString|SET-ME/);
  });
});

describe('configuration and checks', () => {
  it('refuses bad context, naming the key', () => {
    expect(() => synth({ maxConcurrency: 1, routing: { project: '', tags: ['1', '2', '3', '4', '5', '6'] } })).toThrow(
      /invalid CDK context "pipeline":[\s\S]*routing\.project: must not be empty[\s\S]*routing\.tags: must hold at most 5 tags[\s\S]*maxConcurrency: must be at least 2/,
    );
  });

  it.each([
    [{ routing: { project: 'p', frameManifestSuffix: '.frames.sfs' } }, 'routing.frameManifestSuffix: ".frames.sfs" overlaps the scene suffix ".sfs"'],
    [{ routing: { project: 'p', routes: [{ prefix: '/highway/' }] } }, "routing.routes[0].prefix: must not start with '/'"],
    [{ routing: { project: 'p', routes: [{ prefix: 'a/' }, { prefix: 'a/', project: 'q' }] } }, 'routing.routes[1].prefix: repeats routes[0].prefix "a/"'],
    [{ routing: { project: 'p', tags: ['x', 'x'] } }, 'routing.tags: repeats "x"'],
    [{ routing: { project: 'p', instruction: 'x'.repeat(3_500) } }, "routing: is 3730 bytes as JSON; create-task's environment allows about 3072"],
    [{ routing: { project: 'p' }, scaleApiUrl: 'https://user:pass@api.scale.com/v1' }, 'scaleApiUrl: must not hold credentials'],
  ])('refuses config S3 or Scale would refuse or never use: %j', (pipeline, message) => {
    expect(() => synth(pipeline)).toThrow(message);
  });

  it('passes the AWS Solutions checks with every finding acknowledged', () => {
    const { app } = synth({}, { nag: true });
    const assembly = app.synth();
    expect(JSON.parse(readFileSync(`${assembly.directory}/validation-report.json`, 'utf8'))).toMatchObject({ pluginReports: [] });
  });

  it('fails the AWS Solutions checks when something unacknowledged is added', () => {
    const { app, stack } = synth({}, { nag: true });
    new Bucket(stack, 'Careless');
    expect(() => app.synth()).toThrow(/AwsSolutions-S1|AwsSolutions-S10/);
  });
});
