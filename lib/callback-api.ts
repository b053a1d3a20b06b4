import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat, EndpointType, JsonSchemaType, JsonSchemaVersion, LambdaIntegration, LogGroupLogDestination, MethodLoggingLevel, RestApi } from 'aws-cdk-lib/aws-apigateway';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { CALLBACK_ARCHIVE_PREFIX } from '../lambdas/core/apply-callback.js';
import { FUNCTION_TIMEOUT_SECONDS } from './bundling.js';
import { PipelineFunction } from './pipeline-function.js';

export interface CallbackApiProps {
  table: ITableV2;
  results: IBucket;
  callbackAuthKey: ISecret;
  signingKey: ISecret;
}

/** POST /callback on a REST API, answered by the callback function, which does its own authentication. */
export class CallbackApi extends Construct {
  readonly function: PipelineFunction;
  readonly api: RestApi;
  /** The URL Scale posts to, without the per-task query. */
  readonly callbackUrl: string;
  readonly results: IBucket;

  constructor(scope: Construct, id: string, props: CallbackApiProps) {
    super(scope, id);
    this.results = props.results;
    this.function = new PipelineFunction(this, 'Callback', {
      name: 'callback',
      description: 'Verifies Scale callbacks and stores their results',
      // Scale's callback timeout is not documented: answer fast.
      timeout: Duration.seconds(FUNCTION_TIMEOUT_SECONDS.callback),
    })
      .bindTable(props.table)
      .bindWritableBucket(props.results, CALLBACK_ARCHIVE_PREFIX, 'RESULTS_BUCKET')
      .bindSecret(props.callbackAuthKey, 'CALLBACK_AUTH_SECRET_ID')
      .bindSecret(props.signingKey, 'CALLBACK_SIGNING_SECRET_ID');

    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.DESTROY });
    this.api = new RestApi(this, 'Api', {
      description: 'Receives Scale task callbacks',
      endpointTypes: [EndpointType.REGIONAL],
      cloudWatchRole: true,
      deployOptions: {
        stageName: 'prod',
        throttlingRateLimit: 50,
        throttlingBurstLimit: 100,
        loggingLevel: MethodLoggingLevel.ERROR,
        tracingEnabled: true,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
      },
    });
    // API Gateway turns away calls without the per-task query or without a callback's shape before they cost an
    // invocation; the function still authenticates and validates everything itself.
    const callbackModel = this.api.addModel('ScaleCallback', {
      contentType: 'application/json',
      schema: {
        schema: JsonSchemaVersion.DRAFT4,
        type: JsonSchemaType.OBJECT,
        required: ['task_id', 'status', 'task'],
        properties: { task_id: { type: JsonSchemaType.STRING }, status: { type: JsonSchemaType.STRING }, task: { type: JsonSchemaType.OBJECT } },
      },
    });
    this.api.root.addResource('callback').addMethod('POST', new LambdaIntegration(this.function), {
      requestParameters: { 'method.request.querystring.ref': true, 'method.request.querystring.sig': true },
      requestModels: { 'application/json': callbackModel },
      requestValidatorOptions: { requestValidatorName: 'scale-callback', validateRequestParameters: true, validateRequestBody: true },
    });
    this.callbackUrl = this.api.urlForPath('/callback');
    // The stack outputs the callback URL itself; the API's own root-URL output would only confuse.
    this.api.node.tryRemoveChild('Endpoint');
  }
}
