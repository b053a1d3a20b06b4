import type { RemovalPolicy } from 'aws-cdk-lib';
import { Duration } from 'aws-cdk-lib';
import { Bucket, EventType, type IBucket } from 'aws-cdk-lib/aws-s3';
import { SqsDestination } from 'aws-cdk-lib/aws-s3-notifications';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { SCENE_SUFFIX } from '../lambdas/core/shared/config.js';
import { secureBucket } from './secure-bucket.js';

export { SCENE_SUFFIX };

/** The key suffixes that make an upload a scene: .sfs files and frame manifests. */
export function sceneSuffixes(frameManifestSuffix: string): string[] {
  return [SCENE_SUFFIX, frameManifestSuffix];
}

export interface ScenesIngestProps {
  removalPolicy: RemovalPolicy;
  accessLogs: IBucket;
  /** Watch this bucket instead of creating one. */
  existingBucketName?: string;
  maxReceiveCount: number;
  /** Key suffixes that trigger the pipeline (one notification each, to the same queue). */
  suffixes: string[];
  /** Also notify removals (delete markers, deleted versions) of those keys: a delete cancels an open task. */
  notifyRemovals: boolean;
  /** The consumer's timeout: the queue's visibility timeout is six times this, as AWS advises. */
  consumerTimeout: Duration;
}

/** Uploads of scenes → S3 notification → an encrypted queue with a dead-letter queue. */
export class ScenesIngest extends Construct {
  readonly bucket: IBucket;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: ScenesIngestProps) {
    super(scope, id);
    this.bucket = props.existingBucketName
      ? Bucket.fromBucketName(this, 'Scenes', props.existingBucketName)
      : secureBucket(this, 'Scenes', { removalPolicy: props.removalPolicy, accessLogs: props.accessLogs, accessLogsPrefix: 'scenes/' });

    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, 'Uploads', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * 6),
      retentionPeriod: Duration.days(14),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
    const destination = new SqsDestination(this.queue);
    for (const suffix of props.suffixes) {
      this.bucket.addEventNotification(EventType.OBJECT_CREATED, destination, { suffix });
      // A different event type, so the same suffix does not overlap the created filter.
      if (props.notifyRemovals) this.bucket.addEventNotification(EventType.OBJECT_REMOVED, destination, { suffix });
    }
  }
}
