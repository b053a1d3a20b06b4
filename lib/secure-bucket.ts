import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, type IBucket } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

export interface SecureBucketProps {
  removalPolicy: RemovalPolicy;
  /** Where server access logs go; absent only for the access-log bucket itself. */
  accessLogs?: IBucket;
  accessLogsPrefix?: string;
}

/** A bucket with the defaults every bucket here gets: versioned, encrypted, private, TLS only, access logged. */
export function secureBucket(scope: Construct, id: string, props: SecureBucketProps): Bucket {
  return new Bucket(scope, id, {
    versioned: true,
    encryption: BucketEncryption.S3_MANAGED,
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
    serverAccessLogsBucket: props.accessLogs,
    serverAccessLogsPrefix: props.accessLogsPrefix,
    removalPolicy: props.removalPolicy,
    autoDeleteObjects: props.removalPolicy === RemovalPolicy.DESTROY,
    // Old versions are history, not the working set: keep them a while, not forever.
    lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(90), abortIncompleteMultipartUploadAfter: Duration.days(7) }],
  });
}
