import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { CALLBACK_ARCHIVE_PREFIX } from '../core/callbacks/callback-auth.js';
import { ScaleClient } from '../core/scale/client.js';
import { FlowControl } from '../core/scale/flow-control.js';
import { projectsOf } from '../core/scenes/routing.js';
import { parseConfig, requireEnv, RoutingSchema } from '../core/shared/config.js';
import { logger } from '../core/shared/logger.js';
import { readSecret } from '../core/shared/secrets.js';
import { documentClient, DynamoTaskStore } from '../core/tasks/dynamo-task-store.js';
import { reconcile, type ReconcileReport } from '../core/tasks/reconcile.js';
import { TaskReader } from '../core/tasks/task-reader.js';

const routing = parseConfig(RoutingSchema, JSON.parse(requireEnv('ROUTING')), 'ROUTING environment variable');
const resultsBucket = requireEnv('RESULTS_BUCKET');
const ingestQueueUrl = requireEnv('INGEST_QUEUE_URL');
const scaleApiUrl = requireEnv('SCALE_API_URL');
const apiKeySecret = requireEnv('SCALE_API_KEY_SECRET_ID');
const afterMinutes = Number(requireEnv('RECONCILE_AFTER_MINUTES'));
const lookBackHours = Number(requireEnv('RECONCILE_LOOKBACK_HOURS'));
const doc = documentClient(new DynamoDBClient({}));
const records = new TaskReader(doc, requireEnv('TASKS_TABLE'));
const store = new DynamoTaskStore(doc, requireEnv('TASKS_TABLE'));
// A new task for the same upload needs Scale to have freed its unique_id on error.
const errorResubmissions = routing.clearUniqueIdOnError ? Number(requireEnv('ERROR_RESUBMISSIONS')) : 0;
const s3 = new S3Client({});
const sqs = new SQSClient({});
const projects = projectsOf(routing);
// The reconciler shares the API key's rate limit with task creation: after a 429 it paces itself rather than
// spend its retries (and its run) on more 429s. Kept across runs, as a warm instance keeps it.
const flowControl = new FlowControl();

/**
 * Runs on a schedule: asks Scale what changed and hands what the records miss to the callback path; resubmits
 * uploads that never reached Scale. The report is logged as one line the stack's metric filters count.
 */
export const handler = async (_event: unknown, context: Context): Promise<ReconcileReport> => {
  logger.addContext(context);
  const apiKey = await readSecret(apiKeySecret, 'the Scale API key');
  const scale = new ScaleClient({ apiKey, baseUrl: scaleApiUrl, deadline: Date.now() + context.getRemainingTimeInMillis() - 10_000, flowControl });
  const report = await reconcile({
    scale,
    records,
    projects,
    afterMinutes,
    lookBackHours,
    errorResubmissions,
    prepareResubmission: (uniqueId, taskId, now) => store.prepareResubmission(uniqueId, taskId, now),
    storeState: async (uniqueId, name, body) => {
      await s3.send(
        new PutObjectCommand({ Bucket: resultsBucket, Key: `${CALLBACK_ARCHIVE_PREFIX}${uniqueId}/${name}`, Body: body, ContentLength: Buffer.byteLength(body), ContentType: 'application/json' }),
      );
    },
    resubmit: async (notification) => {
      await sqs.send(new SendMessageCommand({ QueueUrl: ingestQueueUrl, MessageBody: notification }));
    },
  });
  logger.info('reconciled', { reconcileReport: true, ...report });
  // The rest was reconciled; failing now makes the run an error, which is alarmed (ReconcileErrors).
  if (report.failedProjects > 0) throw new Error(`reconciling failed for ${report.failedProjects} project(s): ${report.errors.join('; ')}`);
  return report;
};
