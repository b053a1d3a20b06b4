import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { documentClient } from '../../lambdas/core/tasks/dynamo-task-store.js';
import type { TaskRecord } from '../../lambdas/core/tasks/task-record.js';
import { TaskReader } from '../../lambdas/core/tasks/task-reader.js';
import { startLocalPipeline, type LocalPipeline, type LocalPipelineOptions } from '../../local/pipeline.js';
import { eventually } from './http.js';
import { expectedUniqueId } from './identity.js';

const run = promisify(execFile);

/**
 * A local pipeline for a file of `sfs-pipeline` tests: quiet logs, quick redelivery and completion, the reconciler
 * only on demand; with its clients, its info file for `--local`, and a close that removes its folder.
 */
export async function startCliPipeline(folderPrefix: string, options: LocalPipelineOptions = {}) {
  const workDir = await mkdtemp(join(tmpdir(), folderPrefix));
  const pipeline = await startLocalPipeline({ workDir, logs: { write: () => true } as never, visibilityTimeoutMs: 300, simulator: { completionDelayMs: 50 }, reconcileEveryMs: 3_600_000, ...options });
  return {
    workDir,
    pipeline,
    c: clientsFor(pipeline),
    info: await writeInfoFile(pipeline, workDir),
    close: async () => {
      await pipeline.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** Writes the pipeline's info as `npm run local -- --info-file` does, for commands that take `--local <file>`. */
export async function writeInfoFile(pipeline: LocalPipeline, dir: string): Promise<string> {
  const path = join(dir, 'local-info.json');
  await writeFile(path, `${JSON.stringify(pipeline.info)}\n`);
  return path;
}

/** Clients of a running local pipeline, as a user of `npm run local` would make them from its info. */
export function clientsFor(pipeline: LocalPipeline) {
  const { info } = pipeline;
  const aws = { region: info.region, credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey } };
  const s3 = new S3Client({ ...aws, endpoint: info.s3Endpoint, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED' });
  const dynamo = new DynamoDBClient({ ...aws, endpoint: info.dynamodbEndpoint });
  const reader = new TaskReader(documentClient(dynamo), info.tasksTable);
  let awsConfigDir: string | undefined;

  return {
    s3,
    reader,
    async put(key: string, body: Uint8Array | string) {
      const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
      // The length given: the SDK sends none for an empty string and warns about a stream of unknown length.
      const out = await s3.send(new PutObjectCommand({ Bucket: info.bucket, Key: key, Body: body, ContentLength: size }));
      const eTag = out.ETag!.replace(/"/g, '');
      // S3 notifies before it answers: a scene's notification is already there, with the sequencer it gave the write.
      const notified = pipeline.notified.findLast((n) => n.key === key && n.eventName?.startsWith('ObjectCreated:') && n.eTag === eTag && n.versionId === out.VersionId);
      const object = { bucket: info.bucket, key, eTag, ...(out.VersionId ? { versionId: out.VersionId } : {}), ...(notified?.sequencer ? { sequencer: notified.sequencer } : {}) };
      return { ...object, size, uniqueId: expectedUniqueId(object) };
    },
    /** The AWS CLI, configured only from the pipeline's info (plus a multipart threshold small enough to test). */
    async awsCli(args: string[]) {
      awsConfigDir ??= await mkdtemp(join(tmpdir(), 'aws-cli-'));
      const config = join(awsConfigDir, 'config');
      await writeFile(config, `[default]\nregion = ${info.region}\ns3 =\n  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n`);
      return run('aws', ['--endpoint-url', info.s3Endpoint, ...args], {
        env: {
          PATH: process.env.PATH,
          HOME: awsConfigDir,
          AWS_CONFIG_FILE: config,
          AWS_SHARED_CREDENTIALS_FILE: join(awsConfigDir, 'credentials'),
          AWS_ACCESS_KEY_ID: info.accessKeyId,
          AWS_SECRET_ACCESS_KEY: info.secretAccessKey,
          AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
          AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
        },
      });
    },
    async recordCount(): Promise<number> {
      return (await dynamo.send(new ScanCommand({ TableName: info.tasksTable, Select: 'COUNT' }))).Count ?? 0;
    },
    async archived(prefix: string): Promise<string[]> {
      const list = await s3.send(new ListObjectsV2Command({ Bucket: info.resultsBucket, Prefix: prefix }));
      return (list.Contents ?? []).map((o) => o.Key!);
    },
    /** Waits until the upload's record reaches `status` (or any final state, then compares). */
    async settled(uniqueId: string, timeoutMs = 20_000): Promise<TaskRecord> {
      return eventually(async () => {
        const record = await reader.get(uniqueId);
        return record && ['completed', 'error', 'rejected', 'create_failed', 'canceled'].includes(record.status) ? record : undefined;
      }, timeoutMs, `record ${uniqueId} to settle`);
    },
    tasksFor: (uniqueId: string) => pipeline.scale.state().tasks.filter((t) => t.unique_id === uniqueId),
  };
}
