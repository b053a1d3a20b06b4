import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AwsIntegration,
  EndpointType,
  IdentitySource,
  LogGroupLogDestination,
  MethodLoggingLevel,
  PassthroughBehavior,
  RequestAuthorizer,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { CfnWebACL, CfnWebACLAssociation } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { CALLBACK_ARCHIVE_PREFIX } from '../lambdas/core/callbacks/callback-auth.js';
import { FUNCTION_TIMEOUT_SECONDS } from './bundling.js';
import { PipelineFunction } from './pipeline-function.js';

export interface CallbackApiProps {
  results: IBucket;
  callbackAuthKey: ISecret;
  signingKey: ISecret;
  /** Requests per 5 minutes one IP may make before a WAF rule blocks it; no WAF (and no WAF cost) without it. */
  wafRateLimit?: number;
}

/** How long API Gateway keeps an authorizer's answer per (header, ref, sig): a rotated key is seen within this. */
export const AUTHORIZER_CACHE = Duration.minutes(5);

/**
 * POST /callback: a request authorizer checks the per-task signature and Scale's header (no body needed, answers
 * cached), then API Gateway stores the raw body in the results bucket itself — so nothing on the way can fail on
 * the body's size below API Gateway's own 10 MB limit, and a callback is stored before anything is applied.
 */
export class CallbackApi extends Construct {
  readonly authorizer: PipelineFunction;
  readonly api: RestApi;
  readonly accessLogs: LogGroup;
  /** The URL Scale posts to, without the per-task query. */
  readonly callbackUrl: string;
  readonly storeRole: Role;
  /** True when a WAF rate-based rule guards the API. */
  readonly rateLimited: boolean;

  constructor(scope: Construct, id: string, props: CallbackApiProps) {
    super(scope, id);
    this.authorizer = new PipelineFunction(this, 'CallbackAuth', {
      name: 'callback-auth',
      description: "Lets in only Scale's callbacks: per-task URL signature and Scale's callback auth header",
      timeout: Duration.seconds(FUNCTION_TIMEOUT_SECONDS['callback-auth']),
    })
      .bindSecret(props.callbackAuthKey, 'CALLBACK_AUTH_SECRET_ID')
      .bindSecret(props.signingKey, 'CALLBACK_SIGNING_SECRET_ID');

    this.accessLogs = new LogGroup(this, 'AccessLogs', { retention: RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.DESTROY });
    this.api = new RestApi(this, 'Api', {
      // Unique per stack: CloudWatch's API Gateway metrics (and so the alarms) are keyed by this name.
      restApiName: `${Stack.of(this).stackName}-scale-callbacks`,
      description: 'Receives Scale task callbacks',
      endpointTypes: [EndpointType.REGIONAL],
      // Bodies pass to S3 byte for byte, whatever their content type says.
      binaryMediaTypes: ['*/*'],
      cloudWatchRole: true,
      deployOptions: {
        stageName: 'prod',
        throttlingRateLimit: 50,
        throttlingBurstLimit: 100,
        // Execution logs without request data, and no X-Ray: a trace records the full URL, signature included.
        loggingLevel: MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        tracingEnabled: false,
        // The standard fields name the resource path, never the query string (which holds the signature).
        accessLogDestination: new LogGroupLogDestination(this.accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
      },
    });

    const authorizer = new RequestAuthorizer(this, 'Authorizer', {
      handler: this.authorizer,
      // A request without any of these is refused (401) by API Gateway itself, without invoking anything.
      identitySources: [IdentitySource.header('scale-callback-auth'), IdentitySource.queryString('ref'), IdentitySource.queryString('sig')],
      resultsCacheTtl: AUTHORIZER_CACHE,
    });

    this.storeRole = new Role(this, 'StoreRole', { assumedBy: new ServicePrincipal('apigateway.amazonaws.com'), description: 'API Gateway stores Scale callbacks' });
    this.storeRole.addToPolicy(new PolicyStatement({ actions: ['s3:PutObject'], resources: [props.results.arnForObjects(`${CALLBACK_ARCHIVE_PREFIX}*`)] }));
    const store = new AwsIntegration({
      service: 's3',
      integrationHttpMethod: 'PUT',
      // The ref the authorizer verified (its principalId: sfs- and 40 hex digits), not the query's, which a
      // repeated parameter could make another: safe in the key, and always the one that was checked.
      path: `${props.results.bucketName}/${CALLBACK_ARCHIVE_PREFIX}{ref}/{requestId}.json`,
      options: {
        credentialsRole: this.storeRole,
        passthroughBehavior: PassthroughBehavior.WHEN_NO_TEMPLATES,
        requestParameters: {
          'integration.request.path.ref': 'context.authorizer.principalId',
          'integration.request.path.requestId': 'context.requestId',
          'integration.request.header.Content-Type': "'application/json'",
        },
        integrationResponses: [
          { statusCode: '200', selectionPattern: '2\\d{2}', responseTemplates: { 'application/json': '{"ok":true}' } },
          // Storing failed: a 5xx, so Scale retries (up to 20 times in 24 hours).
          { statusCode: '500', selectionPattern: '(4|5)\\d{2}', responseTemplates: { 'application/json': '{"error":"storing the callback failed; retry later"}' } },
        ],
      },
    });
    this.api.root.addResource('callback').addMethod('POST', store, {
      authorizer,
      requestParameters: { 'method.request.querystring.ref': true, 'method.request.querystring.sig': true },
      // Parameters only: a body is stored as sent and checked when it is applied (so nothing is lost to a model).
      requestValidatorOptions: { requestValidatorName: 'scale-callback', validateRequestParameters: true, validateRequestBody: false },
      methodResponses: [{ statusCode: '200' }, { statusCode: '500' }],
    });
    this.callbackUrl = this.api.urlForPath('/callback');
    // The stack outputs the callback URL itself; the API's own root-URL output would only confuse.
    this.api.node.tryRemoveChild('Endpoint');

    this.rateLimited = props.wafRateLimit !== undefined;
    if (props.wafRateLimit !== undefined) this.addRateLimit(props.wafRateLimit);
  }

  /** A WAF rule that blocks an IP past `limit` requests in 5 minutes, so a flood cannot take Scale's throttle budget. */
  private addRateLimit(limit: number): void {
    const metric = (name: string) => ({ cloudWatchMetricsEnabled: true, metricName: name, sampledRequestsEnabled: false });
    const acl = new CfnWebACL(this, 'RateLimit', {
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: metric(`${Stack.of(this).stackName}-callbacks`),
      rules: [
        {
          name: 'per-ip-rate',
          priority: 0,
          action: { block: {} },
          statement: { rateBasedStatement: { limit, aggregateKeyType: 'IP' } },
          visibilityConfig: metric(`${Stack.of(this).stackName}-callbacks-rate`),
        },
      ],
    });
    new CfnWebACLAssociation(this, 'RateLimitAssociation', { resourceArn: this.api.deploymentStage.stageArn, webAclArn: acl.attrArn });
  }
}
