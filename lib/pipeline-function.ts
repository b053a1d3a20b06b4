import type { Duration} from 'aws-cdk-lib';
import { RemovalPolicy } from 'aws-cdk-lib';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { BUNDLING, FUNCTION_ENTRIES, FUNCTION_MEMORY_MB, type FunctionName } from './bundling.js';

export interface PipelineFunctionProps {
  name: FunctionName;
  description: string;
  timeout: Duration;
  environment?: Record<string, string>;
}

/** A project function with the shared defaults baked in once: Node.js 24 on arm64, ESM bundle, logs, tracing. */
export class PipelineFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    super(scope, id, {
      entry: FUNCTION_ENTRIES[props.name],
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: FUNCTION_MEMORY_MB[props.name],
      timeout: props.timeout,
      tracing: Tracing.ACTIVE,
      logGroup,
      bundling: BUNDLING,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: props.name,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        ...props.environment,
      },
    });
  }

  /** Grants item reads and writes on the table, and queries on the named indexes only. */
  bindTable(table: ITableV2, queryIndexes: string[] = []): this {
    this.addToRolePolicy(new PolicyStatement({ actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], resources: [table.tableArn] }));
    if (queryIndexes.length > 0) {
      this.addToRolePolicy(new PolicyStatement({ actions: ['dynamodb:Query'], resources: queryIndexes.map((index) => `${table.tableArn}/index/${index}`) }));
    }
    this.addEnvironment('TASKS_TABLE', table.tableName);
    return this;
  }

  /** Grants reading the secret and tells the function which one it is, under `envName`. */
  bindSecret(secret: ISecret, envName: string): this {
    secret.grantRead(this);
    this.addEnvironment(envName, secret.secretArn);
    return this;
  }

  /** Grants PutObject under `prefix` only, and tells the function the bucket's name under `envName`. */
  bindWritableBucket(bucket: IBucket, prefix: string, envName: string): this {
    this.addToRolePolicy(new PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(`${prefix}*`)] }));
    this.addEnvironment(envName, bucket.bucketName);
    return this;
  }

  /**
   * Grants reading any version of the bucket's objects, and listing the bucket: without s3:ListBucket a HEAD on a
   * deleted object answers 403 instead of 404, and a vanished upload would look like a permissions failure.
   */
  bindReadableBucket(bucket: IBucket): this {
    this.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: [bucket.arnForObjects('*')] }));
    this.addToRolePolicy(new PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
    return this;
  }
}
