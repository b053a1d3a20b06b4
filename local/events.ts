import { randomUUID } from 'node:crypto';
import type { APIGatewayEventIdentity, APIGatewayRequestAuthorizerEvent, AttributeValue, DynamoDBRecord, EventBridgeEvent, SQSEvent, SQSRecord } from 'aws-lambda';

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

/** `configurationId` names the bucket's notification configuration that matched (the stack's id for it). */
export function s3EventRecord(o: S3ObjectEvent, configurationId = 'scenes'): S3EventRecord {
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
      configurationId,
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
export function s3NotificationBody(objects: S3ObjectEvent[], configurationId = 'scenes'): string {
  return JSON.stringify({ Records: objects.map((o) => s3EventRecord(o, configurationId)) });
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

/** What API Gateway knows of an unauthenticated caller: its address and user agent. */
function callerIdentity(sourceIp: string, userAgent: string | null): APIGatewayEventIdentity {
  return {
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
    sourceIp,
    user: null,
    userAgent,
    userArn: null,
  };
}

/** The method ARN of POST /callback on the local API (the local stand-in's account, API id and stage). */
export const CALLBACK_METHOD_ARN = 'arn:aws:execute-api:us-east-1:000000000000:local/prod/POST/callback';

/** An HTTP request as the API front received it. */
export interface ReceivedRequest {
  /** Name/value pairs as sent, names in their original case (Node's `rawHeaders`). */
  rawHeaders: string[];
  query: URLSearchParams;
  sourceIp: string;
  /** API Gateway's id for the request (a UUID). */
  requestId: string;
  requestTimeEpoch: number;
}

/**
 * The single-value map keeps the last value sent, as API Gateway's `headers` and `queryStringParameters` do; the
 * multi-value map keeps all. Header names that differ only in case are one header, named as first sent.
 */
function singleAndMulti(pairs: Array<[string, string]>, foldCase: boolean) {
  if (pairs.length === 0) return { single: null, multi: null };
  const names = new Map<string, string>();
  const multi: Record<string, string[]> = {};
  for (const [name, value] of pairs) {
    const id = foldCase ? name.toLowerCase() : name;
    const shown = names.get(id) ?? name;
    names.set(id, shown);
    (multi[shown] ??= []).push(value);
  }
  const single = Object.fromEntries(Object.entries(multi).map(([name, values]) => [name, values.at(-1)!]));
  return { single, multi };
}

/** API Gateway's request time format: `09/Apr/2015:12:34:56 +0000`. */
function requestTime(epochMs: number): string {
  const [, day, month, year, time] = /^\w+, (\d+) (\w+) (\d+) ([\d:]+) GMT$/.exec(new Date(epochMs).toUTCString())!;
  return `${day!.padStart(2, '0')}/${month}/${year}:${time} +0000`;
}

/** The event a REST API's REQUEST authorizer receives for POST /callback (no body: authorizers never see it). */
export function callbackAuthorizerEvent(request: ReceivedRequest): APIGatewayRequestAuthorizerEvent {
  const headerPairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) headerPairs.push([request.rawHeaders[i]!, request.rawHeaders[i + 1]!]);
  const headers = singleAndMulti(headerPairs, true);
  const query = singleAndMulti([...request.query.entries()], false);
  const userAgent = headerPairs.findLast(([name]) => name.toLowerCase() === 'user-agent')?.[1] ?? null;
  return {
    type: 'REQUEST',
    methodArn: CALLBACK_METHOD_ARN,
    resource: '/callback',
    path: '/callback',
    httpMethod: 'POST',
    headers: headers.single,
    multiValueHeaders: headers.multi,
    queryStringParameters: query.single,
    multiValueQueryStringParameters: query.multi,
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: undefined,
      protocol: 'HTTP/1.1',
      httpMethod: 'POST',
      path: '/prod/callback',
      stage: 'prod',
      requestId: request.requestId,
      extendedRequestId: request.requestId,
      requestTime: requestTime(request.requestTimeEpoch),
      requestTimeEpoch: request.requestTimeEpoch,
      resourceId: 'local',
      resourcePath: '/callback',
      domainName: '127.0.0.1',
      identity: callerIdentity(request.sourceIp, userAgent),
    },
  };
}

/** An item as DynamoDB's JSON protocol (and a stream record) writes it. */
export type DynamoItem = Record<string, AttributeValue>;

/** One committed change of one item, as the table's stream (view NEW_AND_OLD_IMAGES) describes it. */
export interface ItemChange {
  keys: DynamoItem;
  /** Absent for an insert. */
  oldImage?: DynamoItem;
  /** Absent for a removal. */
  newImage?: DynamoItem;
  /** Decimal digits; grows with every record of the stream. */
  sequenceNumber: string;
  /** The table's stream ARN (its label is the time the stream was enabled). */
  streamArn: string;
  region: string;
  /** Epoch milliseconds of the write (default now). */
  at?: number;
}

/**
 * A stream record as Lambda and EventBridge Pipes deliver it: eventName from which images exist, the images in
 * AttributeValue JSON, ApproximateCreationDateTime in epoch seconds, SizeBytes of keys and images together.
 */
export function dynamodbStreamRecord(change: ItemChange): DynamoDBRecord {
  const { keys, oldImage, newImage } = change;
  const eventName = !oldImage ? 'INSERT' : !newImage ? 'REMOVE' : 'MODIFY';
  return {
    eventID: randomUUID().replace(/-/g, ''),
    eventName,
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: change.region,
    dynamodb: {
      ApproximateCreationDateTime: Math.floor((change.at ?? Date.now()) / 1000),
      Keys: keys,
      ...(newImage ? { NewImage: newImage } : {}),
      ...(oldImage ? { OldImage: oldImage } : {}),
      SequenceNumber: change.sequenceNumber,
      SizeBytes: Buffer.byteLength(JSON.stringify([keys, newImage ?? {}, oldImage ?? {}])),
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
    eventSourceARN: change.streamArn,
  };
}

/** An event as EventBridge delivers it to a rule's target; `time` to the second, as EventBridge writes it. */
export function eventBridgeEvent<T>(
  detail: T,
  options: { source: string; detailType: string; region: string; account?: string; at?: number },
): EventBridgeEvent<string, T> {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': options.detailType,
    source: options.source,
    account: options.account ?? '000000000000',
    time: new Date(options.at ?? Date.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: options.region,
    resources: [],
    detail,
  };
}
