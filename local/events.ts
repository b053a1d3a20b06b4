import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, SQSEvent, SQSRecord } from 'aws-lambda';

/** Encodes a key the way S3 event notifications do: form-encoded, so a space becomes '+'. */
export function encodeS3Key(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

export interface ObjectCreated {
  bucket: string;
  key: string;
  size: number;
  eTag?: string;
  versionId?: string;
  eventName?: string;
  sequencer?: string;
}

/** An S3 event notification body as AWS sends it to SQS. */
export function s3NotificationBody(objects: ObjectCreated[]): string {
  return JSON.stringify({
    Records: objects.map((o) => ({
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      awsRegion: 'us-east-1',
      eventTime: new Date().toISOString(),
      eventName: o.eventName ?? 'ObjectCreated:Put',
      s3: {
        s3SchemaVersion: '1.0',
        configurationId: 'scenes',
        bucket: { name: o.bucket, arn: `arn:aws:s3:::${o.bucket}` },
        object: {
          key: encodeS3Key(o.key),
          size: o.size,
          ...(o.eTag ? { eTag: o.eTag } : {}),
          ...(o.versionId ? { versionId: o.versionId } : {}),
          sequencer: o.sequencer ?? Date.now().toString(16).toUpperCase(),
        },
      },
    })),
  });
}

export function sqsRecord(body: string, receiveCount = 1, messageId: string = randomUUID()): SQSRecord {
  return {
    messageId,
    receiptHandle: `rh-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(Date.now()),
      SenderId: 'local',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:ingest',
    awsRegion: 'us-east-1',
  };
}

export function sqsEvent(records: SQSRecord[]): SQSEvent {
  return { Records: records };
}

/** A REST API (v1) proxy event for POST /callback. */
export function callbackEvent(input: { body: string; headers?: Record<string, string>; query?: Record<string, string>; sourceIp?: string }): APIGatewayProxyEvent {
  return {
    resource: '/callback',
    path: '/callback',
    httpMethod: 'POST',
    headers: input.headers ?? {},
    multiValueHeaders: Object.fromEntries(Object.entries(input.headers ?? {}).map(([k, v]) => [k, [v]])),
    queryStringParameters: input.query && Object.keys(input.query).length > 0 ? input.query : null,
    multiValueQueryStringParameters: input.query && Object.keys(input.query).length > 0 ? Object.fromEntries(Object.entries(input.query).map(([k, v]) => [k, [v]])) : null,
    pathParameters: null,
    stageVariables: null,
    body: input.body,
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: null,
      protocol: 'HTTP/1.1',
      httpMethod: 'POST',
      path: '/prod/callback',
      stage: 'prod',
      requestId: randomUUID(),
      requestTimeEpoch: Date.now(),
      resourceId: 'local',
      resourcePath: '/callback',
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: input.sourceIp ?? '127.0.0.1',
        user: null,
        userAgent: 'local',
        userArn: null,
      },
    },
  };
}
