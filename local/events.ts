import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, SQSEvent, SQSRecord } from 'aws-lambda';

/** Encodes a key the way S3 event notifications do: form-encoded, so a space becomes '+'. */
export function encodeS3Key(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

/** One object event as S3 reports it, with the key decoded (records carry it URL-encoded). */
export interface S3ObjectEvent {
  bucket: string;
  key: string;
  /** `ObjectCreated:Put|Post|Copy|CompleteMultipartUpload`, `ObjectRemoved:Delete|DeleteMarkerCreated`. */
  eventName?: string;
  /** Created events only. */
  size?: number;
  eTag?: string;
  /** The new version's, the delete marker's or the deleted version's id; "null" when versioning is suspended. */
  versionId?: string;
  /** Uppercase hex that grows per key; compare after left-padding to equal length. */
  sequencer?: string;
  eventTime?: string;
}

export interface ObjectCreated extends S3ObjectEvent {
  size: number;
}

/** One record of an S3 event notification, as AWS writes it. */
export interface S3EventRecord {
  eventVersion: string;
  eventSource: 'aws:s3';
  awsRegion: string;
  eventTime: string;
  eventName: string;
  userIdentity: { principalId: string };
  requestParameters: { sourceIPAddress: string };
  responseElements: Record<string, string>;
  s3: {
    s3SchemaVersion: string;
    configurationId: string;
    bucket: { name: string; ownerIdentity: { principalId: string }; arn: string };
    object: { key: string; size?: number; eTag?: string; versionId?: string; sequencer: string };
  };
}

export function s3EventRecord(o: S3ObjectEvent): S3EventRecord {
  const eventName = o.eventName ?? 'ObjectCreated:Put';
  // Removal records carry no size or ETag.
  const created = eventName.startsWith('ObjectCreated:');
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'us-east-1',
    eventTime: o.eventTime ?? new Date().toISOString(),
    eventName,
    userIdentity: { principalId: 'AWS:LOCAL' },
    requestParameters: { sourceIPAddress: '127.0.0.1' },
    responseElements: { 'x-amz-request-id': 'LOCAL', 'x-amz-id-2': 'LOCAL' },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'scenes',
      bucket: { name: o.bucket, ownerIdentity: { principalId: 'LOCAL' }, arn: `arn:aws:s3:::${o.bucket}` },
      object: {
        key: encodeS3Key(o.key),
        ...(created ? { size: o.size ?? 0 } : {}),
        ...(created && o.eTag ? { eTag: o.eTag } : {}),
        ...(o.versionId ? { versionId: o.versionId } : {}),
        sequencer: o.sequencer ?? Date.now().toString(16).toUpperCase(),
      },
    },
  };
}

/** An S3 event notification body as AWS sends it to SQS. */
export function s3NotificationBody(objects: S3ObjectEvent[]): string {
  return JSON.stringify({ Records: objects.map(s3EventRecord) });
}

/** The event a record describes, key decoded (form-encoded: '+' is a space). */
export function s3ObjectEvent(record: S3EventRecord): S3ObjectEvent {
  const { key, size, eTag, versionId, sequencer } = record.s3.object;
  return {
    bucket: record.s3.bucket.name,
    key: decodeURIComponent(key.replace(/\+/g, ' ')),
    eventName: record.eventName,
    ...(size !== undefined ? { size } : {}),
    ...(eTag ? { eTag } : {}),
    ...(versionId ? { versionId } : {}),
    sequencer,
    eventTime: record.eventTime,
  };
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
