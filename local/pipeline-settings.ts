import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { parseConfig, PipelineConfigSchema, type PipelineConfig } from '../lambdas/core/shared/config.js';
import { PROJECT_ROOT, type FunctionName } from '../lib/bundling.js';
import { CONTEXT_KEY, mergePatch, readCdkJsonPipeline } from '../lib/config.js';
import type { VersioningMode } from './emulators/s3.js';
import type { Credentials } from './presign-check.js';
import type { DeliveryFaults } from './queue.js';
import type { LocalReconcileOptions } from './reconciler.js';
import type { SimulatorConfigPatch } from './scale-simulator/config.js';

/** What the local pipeline can be started with, what it tells its users (the info file), and its configuration. */

export interface LocalPipelineOptions extends LocalReconcileOptions {
  /** Where bundles, emulator data and the dead-letter file go (a fresh temporary folder by default). */
  workDir?: string;
  /** Where the functions' logs go (default stderr). */
  logs?: Writable;
  /** Overrides of the stack configuration read from cdk.json. */
  config?: Partial<PipelineConfig>;
  visibilityTimeoutMs?: number;
  simulator?: SimulatorConfigPatch;
  /**
   * Credentials the functions sign with. Different ones are accepted on the functions' own S3 calls, but URLs
   * presigned with them are refused, as S3 refuses a URL whose role credentials expired before it was used.
   */
  functionCredentials?: Credentials;
  /** The buckets' versioning (default 'enabled', as the stack's). */
  s3Versioning?: VersioningMode;
  /** Already built bundles, to skip building. */
  bundles?: Record<FunctionName, { path: string }>;
  /** SQS's at-least-once behaviours for the ingest queue (duplicates, in-flight redelivery); off by default. */
  delivery?: Partial<DeliveryFaults>;
  /** The same for the callback queue. */
  callbackDelivery?: Partial<DeliveryFaults>;
  /** Function timeouts in seconds instead of the stack's (FUNCTION_TIMEOUT_SECONDS). */
  functionTimeoutSeconds?: Partial<Record<FunctionName, number>>;
  /** Where the bus also POSTs each task event (the events file is written either way). */
  eventsUrl?: string;
}

export interface LocalInfo {
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  s3Endpoint: string;
  bucket: string;
  resultsBucket: string;
  dynamodbEndpoint: string;
  tasksTable: string;
  /** The table of the Scale rate the create-task instances share (absent with sharedRateLimit false). */
  rateTable?: string;
  secretsManagerEndpoint: string;
  callbackUrl: string;
  scaleApiUrl: string;
  scaleApiKey: string;
  deadLetterFile: string;
  /** Dead letters of the callback queue (stored callbacks that could not be applied). */
  callbackDeadLetterFile: string;
  /** Every task event put on the bus, one EventBridge event (JSON) a line. */
  eventsFile: string;
  /**
   * The local pipeline's own controls: `POST ${controlUrl}/reconcile` runs the reconciler, answering its report;
   * `POST ${controlUrl}/redrive` moves the ingest dead letters back into the queue, answering `{moved}`.
   */
  controlUrl: string;
  /** SQS's API (SendMessage) and the ingest queue's URL there: what the reconciler and a retry send to. */
  sqsEndpoint: string;
  ingestQueueUrl: string;
  /** Secrets Manager ids of the secrets, as the stack's outputs name them. */
  scaleApiKeySecretId: string;
  /** The routing settings operators' commands depend on, as the stack's outputs give them. */
  frameManifestSuffix: string;
  clearUniqueIdOnError: boolean;
}

/** The Scale project of the local pipeline when cdk.json names none (a deployed stack must name its own). */
export const LOCAL_PROJECT = 'local-project';

/**
 * The stack's configuration as cdk.json gives it: the local pipeline runs with the same settings. Without a
 * project there (none ships with the code), tasks go to LOCAL_PROJECT, which the Scale simulator then has.
 */
export function readCdkJsonConfig(): PipelineConfig {
  const pipeline = readCdkJsonPipeline(join(PROJECT_ROOT, 'cdk.json'));
  const withProject = mergePatch({ routing: { project: LOCAL_PROJECT } }, pipeline ?? {});
  return parseConfig(PipelineConfigSchema, withProject, `cdk.json context "${CONTEXT_KEY}"`);
}
