import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RATE_ITEM_ID } from '../../lambdas/core/scale/dynamo-rate-store.js';
import { encodeSfsToBuffer } from '../../lambdas/core/scenes/sfs/writer.js';
import { documentClient } from '../../lambdas/core/tasks/dynamo-task-store.js';
import { createRateTable } from '../../local/emulators/dynamodb.js';
import { s3NotificationBody, sqsEvent, sqsRecord, type S3ObjectEvent } from '../../local/events.js';
import { buildSampleScene } from '../../local/sample-scenes.js';
import { startRecorder } from '../helpers/http.js';
import { expectedUniqueId } from '../helpers/identity.js';
import { startPipelineEnv } from '../helpers/pipeline-env.js';

// create-task with the stack's rate table named in SCALE_RATE_TABLE: its Scale calls keep to the rate shared
// through that table (against dynalite and the Scale simulator's rate limit).
let env: Awaited<ReturnType<typeof startPipelineEnv>>;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
const scene = encodeSfsToBuffer(buildSampleScene());
const contextWith = (remainingMs: number) => {
  const deadline = Date.now() + remainingMs;
  return { functionName: 'create-task', awsRequestId: 'test', getRemainingTimeInMillis: () => deadline - Date.now() } as Context;
};

beforeAll(async () => {
  recorder = await startRecorder();
  env = await startPipelineEnv({ callbackUrl: `${recorder.url}/callback` });
  await createRateTable(new DynamoDBClient({}), 'scale-rate');
  process.env.SCALE_RATE_TABLE = 'scale-rate';
  ({ handler } = await import('../../lambdas/create-task/handler.js'));
});
afterAll(async () => {
  delete process.env.SCALE_RATE_TABLE;
  await env.close();
  await recorder.close();
});

describe('create-task with a shared rate table', () => {
  it('writes what Scale’s 429s taught it to the table, and still creates every task once', async () => {
    env.scale.configure({ rateLimit: { requestsPerSecond: 2, retryAfterSeconds: 1 } });
    const uploads: S3ObjectEvent[] = [];
    for (let i = 0; i < 6; i++) uploads.push({ ...(await env.put(`shared/${i}.sfs`, scene)), eventName: 'ObjectCreated:Put' });
    const answer = await handler(sqsEvent(uploads.map((u) => sqsRecord(s3NotificationBody([u])))), contextWith(60_000));
    expect(answer.batchItemFailures).toEqual([]);
    for (const upload of uploads) expect(env.scale.state().tasks.filter((t) => t.unique_id === expectedUniqueId(upload))).toHaveLength(1);
    expect(env.scale.state().requests.rateLimited).toBeGreaterThan(0);
    const { Item } = await documentClient(new DynamoDBClient({})).send(new GetCommand({ TableName: 'scale-rate', Key: { id: RATE_ITEM_ID } }));
    // Limited at what Scale accepted in a second (2), schedule and epoch written by this instance.
    expect(Item).toMatchObject({ epoch: 1, base: 2, reporters: new Set([expect.any(String)]) });
    expect(Item!.version).toBeGreaterThan(1);
  });

  it('creates the tasks when the table is out of reach, on the instance’s own flow control, and says so', async () => {
    env.scale.configure({ rateLimit: null });
    // A fresh instance whose table does not exist: every store request fails.
    vi.resetModules();
    process.env.SCALE_RATE_TABLE = 'no-such-table';
    const fresh = (await import('../../lambdas/create-task/handler.js')).handler;
    const { logger } = await import('../../lambdas/core/shared/logger.js');
    const warnings: unknown[][] = [];
    vi.spyOn(logger, 'warn').mockImplementation((...args: unknown[]) => void warnings.push(args));
    const upload = { ...(await env.put('shared/fallback.sfs', scene)), eventName: 'ObjectCreated:Put' };
    expect((await fresh(sqsEvent([sqsRecord(s3NotificationBody([upload]))]), contextWith(60_000))).batchItemFailures).toEqual([]);
    expect(env.scale.state().tasks.filter((t) => t.unique_id === expectedUniqueId(upload))).toHaveLength(1);
    expect(warnings.map(([message]) => message)).toEqual(["the shared Scale rate cannot be used (see error): keeping to this instance's own flow control for 30 s"]);
    expect(String((warnings[0]![1] as { error: string }).error)).toMatch(/non-existent table|ResourceNotFound/i);
  });
});
