import { Stack, Validations } from 'aws-cdk-lib';
import { CfnBucket, type IBucket } from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import type { CallbackApi } from './callback-api.js';
import type { CallbackProcessing } from './callback-processing.js';
import type { ScenesIngest } from './scenes-ingest.js';
import type { PipelineSecrets } from './secrets.js';
import type { TaskCreation } from './task-creation.js';
import type { Reconciler } from './reconciler.js';
import type { TaskEvents } from './task-events.js';

const LAMBDA_BASIC_EXECUTION = 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]';

function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/** How cdk-nag names a wildcard over a bucket's objects: by logical id for a bucket of this stack, else by ARN. */
function objectsFinding(bucket: IBucket, suffix: string): string {
  const cfn = bucket.node.defaultChild;
  const arn = cfn instanceof CfnBucket ? `<${Stack.of(bucket).resolve(Stack.of(bucket).getLogicalId(cfn))}.Arn>` : `arn:<AWS::Partition>:s3:::${bucket.bucketName}`;
  return `AwsSolutions-IAM5[Resource::${arn}/${suffix}]`;
}

export interface Acknowledged {
  stack: Stack;
  ingest: ScenesIngest;
  creation: TaskCreation;
  callbacks: CallbackApi;
  processing: CallbackProcessing;
  results: IBucket;
  secrets: PipelineSecrets;
  taskEvents: TaskEvents;
  reconciler: Reconciler;
}

/** Every cdk-nag finding this stack accepts, on the construct it concerns, with the reason. */
export function acknowledgeFindings({ stack, ingest, creation, callbacks, processing, results, secrets, taskEvents, reconciler }: Acknowledged): void {
  for (const fn of [creation.function, processing.function, callbacks.authorizer, taskEvents.function, reconciler.function]) {
    acknowledge(fn, LAMBDA_BASIC_EXECUTION, "Lambda's managed logging policy (create log streams, put log events); retention is set on the log group the stack creates.");
    acknowledge(fn, 'AwsSolutions-IAM5[Resource::*]', 'X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords take no narrower resource.');
  }
  acknowledge(creation.function, objectsFinding(ingest.bucket, '*'), 'Reads any uploaded scene (HEAD, ranged GET, presigned GET): uploads have arbitrary keys.');
  acknowledge(processing.function, objectsFinding(results, 'results/*'), 'Copies each result file to its own key below results/<uniqueId>/; the prefix is as narrow as it gets.');
  acknowledge(processing.function, objectsFinding(results, 'callbacks/*'), 'Reads the callbacks API Gateway stored, each under its own key below callbacks/; the prefix is as narrow as it gets.');
  acknowledge(reconciler.function, objectsFinding(results, 'callbacks/*'), "Hands reconciled states to the callback path under callbacks/<ref>/; the prefix is as narrow as it gets.");
  acknowledge(callbacks.storeRole, objectsFinding(results, 'callbacks/*'), 'API Gateway stores each callback under its own key (callbacks/<ref>/<request id>.json); the prefix is as narrow as it gets.');

  acknowledge(taskEvents.deadLetterQueue, 'AwsSolutions-SQS3', "It is the task-events pipe's dead-letter target (the pipe's deadLetterConfig, which cdk-nag does not follow); a dead-letter queue has none of its own.");
  acknowledge(
    callbacks.api,
    'AwsSolutions-APIG2',
    'Request parameters are validated (ref and sig required); the body is deliberately not: it is stored as sent, before any check, so no callback is lost to a model. It is validated when applied, and refusals are counted and alarmed.',
  );
  acknowledge(callbacks.api, 'AwsSolutions-COG4', "Scale cannot use Cognito: a request authorizer checks the per-task HMAC in the URL and Scale's callback auth header before anything is stored.");
  if (!callbacks.rateLimited) {
    acknowledge(
      callbacks.api,
      'AwsSolutions-APIG3',
      "WAF has a monthly cost, so it is opt-in (callbackWafRateLimit). Without it, calls lacking the header, ref or sig are refused by API Gateway itself, and the authorizer's answers are cached per (header, ref, sig).",
    );
  }
  acknowledge(
    callbacks.api,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
    "API Gateway's account-level role for execution logs; AWS provides only this managed policy for it.",
  );

  acknowledge(secrets.scaleApiKey, 'AwsSolutions-SMG4', 'Issued by Scale, not rotatable from AWS: rotate it in Scale and put the new value.');
  acknowledge(secrets.callbackAuthKey, 'AwsSolutions-SMG4', "Issued by Scale (account callback auth key), not rotatable from AWS: rotate it in Scale's dashboard and put the new value.");
  acknowledge(
    secrets.signingKey,
    'AwsSolutions-SMG4',
    'Rotating invalidates the callback URLs of tasks still open at Scale; rotate by hand between batches (see README).',
  );

  // The singleton function CDK uses to configure bucket notifications.
  const notifications = stack.node.children.find((child) => child.node.id.startsWith('BucketNotificationsHandler'));
  if (notifications) {
    acknowledge(notifications, LAMBDA_BASIC_EXECUTION, "CDK's bucket-notification helper runs once per deployment with Lambda's managed logging policy.");
    acknowledge(notifications, 'AwsSolutions-IAM5[Resource::*]', "CDK's bucket-notification helper: s3:PutBucketNotification is granted on * by aws-cdk-lib.");
  }
}
