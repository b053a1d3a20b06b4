import { Match } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { inspect, synth } from '../helpers/synth.js';

const { template } = synth();
const { resources, projectFunctions, functionNamed, permissionsOf } = inspect(template);

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

  it('queues uploads and stored callbacks encrypted, TLS only, each with a dead-letter queue after the configured receives', () => {
    template.resourceCountIs('AWS::SQS::Queue', 5);
    expect(resources('AWS::SQS::Queue').filter(([, q]) => q.Properties.RedrivePolicy?.maxReceiveCount === 5)).toHaveLength(2);
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
    });
    expect(Object.keys(synth({ maxReceiveCount: 3 }).template.findResources('AWS::SQS::Queue', { Properties: { RedrivePolicy: { maxReceiveCount: 3 } } }))).toHaveLength(2);
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
    const [, uploads] = resources('AWS::SQS::Queue').find(([id, q]) => id.startsWith('IngestUploads') && q.Properties.RedrivePolicy)!;
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
    expect(projectFunctions().map(([, f]) => f.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME).sort()).toEqual(['callback', 'callback-auth', 'create-task', 'reconcile', 'task-events']);
    for (const [, fn] of projectFunctions()) {
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], TracingConfig: { Mode: 'Active' }, Handler: 'index.handler' });
      expect(fn.Properties.LoggingConfig.LogGroup).toBeDefined();
    }
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: Match.anyValue() });
    // create-task gets the memory (and so the CPU) to parse an 8 MiB header of millions of tiny objects.
    expect(functionNamed('create-task')[1].Properties).toMatchObject({ MemorySize: 1024, Timeout: 60 });
    expect(functionNamed('callback')[1].Properties).toMatchObject({ MemorySize: 1024, Timeout: 300 });
    expect(functionNamed('callback-auth')[1].Properties).toMatchObject({ MemorySize: 512, Timeout: 10 });
    expect(functionNamed('task-events')[1].Properties).toMatchObject({ MemorySize: 512, Timeout: 30 });
  });

  it('gives create-task its routing, the Scale URL and the signed callback base', () => {
    const [, fn] = functionNamed('create-task');
    const vars = fn.Properties.Environment.Variables;
    expect(JSON.parse(vars.ROUTING)).toMatchObject({ project: 'my-scale-project', clearUniqueIdOnError: true, presignExpiresSeconds: 21_600 }); // synth()'s project
    expect(vars.SCALE_API_URL).toBe('https://api.scale.com/v1');
    expect(JSON.stringify(vars.CALLBACK_URL)).toContain('/callback');
    expect(Object.keys(vars)).toEqual(expect.arrayContaining(['TASKS_TABLE', 'SCALE_API_KEY_SECRET_ID', 'CALLBACK_SIGNING_SECRET_ID']));
    expect(vars).toMatchObject({ MAX_RECEIVE_COUNT: '5', CANCEL_ON_DELETE: 'true' });
    // The queue an upload waiting for its turn at Scale goes back to: the one create-task consumes.
    expect(vars.INGEST_QUEUE_URL).toEqual({ Ref: expect.stringMatching(/^IngestUploads[0-9A-F]{8}$/) });
    const other = synth({ maxReceiveCount: 3, cancelOnDelete: false }).template;
    expect(Object.keys(other.findResources('AWS::Lambda::Function', { Properties: { Environment: { Variables: { MAX_RECEIVE_COUNT: '3', CANCEL_ON_DELETE: 'false' } } } }))).toHaveLength(1);
  });

  it('grants each function exactly its own actions on its own resources', () => {
    // Logical ids without CDK's hash suffix, so the list reads as names.
    const readable = (name: string) => permissionsOf(name).map(({ actions, resources: res }) => `${actions.join(',')} on ${res.replace(/([A-Za-z]+?)[0-9A-F]{8}\b/g, '$1').replace(/[{}"[\]]|Fn::|Arn/g, '')}`);
    const xray = 'xray:PutTelemetryRecords,xray:PutTraceSegments on *';
    const items = 'dynamodb:GetItem,dynamodb:PutItem,dynamodb:UpdateItem on GetAtt:TaskStoreTasks,';
    const consume = (queue: string) => `sqs:ChangeMessageVisibility,sqs:DeleteMessage,sqs:GetQueueAttributes,sqs:GetQueueUrl,sqs:ReceiveMessage on GetAtt:${queue},`;
    const secret = (id: string) => `secretsmanager:DescribeSecret,secretsmanager:GetSecretValue on Ref:${id}`;
    expect(readable('create-task')).toEqual([
      xray,
      items,
      'dynamodb:Query on Join:,GetAtt:TaskStoreTasks,,/index/byKey',
      secret('SecretsScaleApiKey'),
      secret('SecretsCallbackSigningKey'),
      's3:GetObject,s3:GetObjectVersion on Join:,GetAtt:IngestScenes,,/*',
      's3:ListBucket on GetAtt:IngestScenes,',
      // An upload waiting for its turn at Scale goes back to its own queue: send, to that queue only.
      'sqs:SendMessage on GetAtt:IngestUploads,',
      // The shared Scale rate: read it, take tickets and write decreases, on its own table only.
      'dynamodb:GetItem,dynamodb:UpdateItem on GetAtt:TaskCreationRateTable,',
      consume('IngestUploads'),
    ]);
    expect(readable('callback')).toEqual([
      xray,
      items,
      secret('SecretsScaleApiKey'),
      's3:GetObject on Join:,GetAtt:Results,,/callbacks/*',
      's3:PutObject on Join:,GetAtt:Results,,/results/*',
      consume('CallbackProcessingStored'),
    ]);
    expect(readable('callback-auth')).toEqual([xray, secret('SecretsScaleCallbackAuthKey'), secret('SecretsCallbackSigningKey')]);
    // Pure computation: nothing but its logs and traces.
    expect(readable('task-events')).toEqual([xray]);
    expect(readable('reconcile')).toEqual([
      xray,
      secret('SecretsScaleApiKey'),
      items,
      'dynamodb:Query on Join:,GetAtt:TaskStoreTasks,,/index/byStatus',
      's3:PutObject on Join:,GetAtt:Results,,/callbacks/*',
      'sqs:SendMessage on GetAtt:IngestUploads,',
    ]);
  });
});

describe('every IAM role', () => {
  it('is one of a known set, each trusting one service, with exactly the managed and attached policies listed here', () => {
    const bare = (id: string) => id.replace(/[0-9A-F]{8}$/, '');
    const managed = (arns: Array<{ 'Fn::Join': [string, unknown[]] }> = []) => arns.map((arn) => String(arn['Fn::Join'][1].at(-1)).replace(/^:iam::aws:policy\//, ''));
    const policies = resources('AWS::IAM::Policy');
    const roles = Object.fromEntries(
      resources('AWS::IAM::Role').map(([id, role]) => [
        bare(id),
        {
          trusts: role.Properties.AssumeRolePolicyDocument.Statement.map((s: { Principal: { Service: string } }) => s.Principal.Service),
          managed: managed(role.Properties.ManagedPolicyArns),
          inline: (role.Properties.Policies ?? []).length,
          attached: policies.filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === id)).length,
        },
      ]),
    );
    const lambda = (attached: number) => ({ trusts: ['lambda.amazonaws.com'], managed: ['service-role/AWSLambdaBasicExecutionRole'], inline: 0, attached });
    expect(roles).toEqual({
      // CDK's own handler that writes the buckets' notification configuration (s3:PutBucketNotification only).
      BucketNotificationsHandler050a0587b7544547bf325f094a3db834Role: lambda(2),
      TaskCreationCreateTaskServiceRole: lambda(1),
      CallbackApiCallbackAuthServiceRole: lambda(1),
      CallbackProcessingCallbackServiceRole: lambda(1),
      TaskEventsServiceRole: lambda(1),
      ReconcilerReconcileServiceRole: lambda(1),
      CallbackApiCloudWatchRole: { trusts: ['apigateway.amazonaws.com'], managed: ['service-role/AmazonAPIGatewayPushToCloudWatchLogs'], inline: 0, attached: 0 },
      CallbackApiStoreRole: { trusts: ['apigateway.amazonaws.com'], managed: [], inline: 0, attached: 1 },
      TaskEventsPipeRole: { trusts: ['pipes.amazonaws.com'], managed: [], inline: 0, attached: 1 },
      ReconcilerSchedulerRole: { trusts: ['scheduler.amazonaws.com'], managed: [], inline: 0, attached: 1 },
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
    const tasksTable = (t: typeof template) => Object.entries(t.findResources('AWS::DynamoDB::GlobalTable')).find(([id]) => id.startsWith('TaskStoreTasks'))![1];
    expect(tasksTable(template)).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    expect(tasksTable(synth({ removalPolicy: 'destroy' }).template)).toMatchObject({ DeletionPolicy: 'Delete' });
  });
});

describe('shared Scale rate', () => {
  const rateTables = (t: typeof template) => Object.entries(t.findResources('AWS::DynamoDB::GlobalTable')).filter(([id]) => id.startsWith('TaskCreationRateTable'));

  it('is one table of its own, keyed by id, on demand, with no stream and no PITR, deleted with the stack whatever removalPolicy says', () => {
    const [[id, table]] = rateTables(template) as [[string, { Properties: Record<string, unknown>; DeletionPolicy: string }]];
    expect(table).toMatchObject({ DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
    expect(table.Properties).toEqual({
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      // DynamoDB's default encryption at rest (an AWS-owned key): no SSESpecification.
      Replicas: [{ Region: { Ref: 'AWS::Region' } }],
    });
    expect(functionNamed('create-task')[1].Properties.Environment.Variables.SCALE_RATE_TABLE).toEqual({ Ref: id });
    // No other function is told of it (the reconciler keeps its own flow control).
    for (const name of ['callback', 'callback-auth', 'task-events', 'reconcile']) expect(functionNamed(name)[1].Properties.Environment.Variables.SCALE_RATE_TABLE).toBeUndefined();
  });

  it('is left out with sharedRateLimit false: no table, no variable, no grant', () => {
    const other = synth({ sharedRateLimit: false }).template;
    expect(rateTables(other)).toEqual([]);
    const { functionNamed: named, permissionsOf } = inspect(other);
    expect(named('create-task')[1].Properties.Environment.Variables.SCALE_RATE_TABLE).toBeUndefined();
    expect(permissionsOf('create-task').filter((p) => p.resources.includes('RateTable'))).toEqual([]);
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
        'CallbackDeadLetterQueueArn',
        'ClearUniqueIdOnError',
        'DeadLetterQueueArn',
        'DeadLetterQueueUrl',
        'FrameManifestSuffix',
        'IngestQueueUrl',
        'ResultsBucketName',
        'ScaleApiKeySecretName',
        'ScaleApiUrl',
        'ScaleCallbackAuthKeySecretName',
        'ScenesBucketName',
        'TaskEventBusArn',
        'TaskEventBusName',
        'TasksTableName',
        'TasksTableStreamArn',
      ].sort(),
    );
    expect(JSON.stringify(outputs)).not.toMatch(/SecretString|SET-ME/);
    // What the sfs-pipeline command reads of the deployed configuration.
    expect([outputs.FrameManifestSuffix?.Value, outputs.ClearUniqueIdOnError?.Value, outputs.ScaleApiUrl?.Value]).toEqual(['.frames.json', 'true', 'https://api.scale.com/v1']);
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
