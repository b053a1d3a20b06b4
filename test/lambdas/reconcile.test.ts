import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReconcileReport } from '../../lambdas/core/tasks/reconcile.js';
import { ScaleClient } from '../../lambdas/core/scale/client.js';
import { startRecorder } from '../helpers/http.js';
import { SECRETS, startPipelineEnv } from '../helpers/pipeline-env.js';

// The reconcile handler as the stack runs it, against the Scale simulator, dynalite and the local S3.
let env: Awaited<ReturnType<typeof startPipelineEnv>>;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
let handler: (event: unknown, context: Context) => Promise<ReconcileReport>;
const context = { functionName: 'reconcile', awsRequestId: 'test', getRemainingTimeInMillis: () => 120_000 } as Context;

beforeAll(async () => {
  recorder = await startRecorder();
  env = await startPipelineEnv({ callbackUrl: `${recorder.url}/callback` });
  Object.assign(process.env, {
    // Every stuck upload here has a task at Scale, so nothing is resubmitted through the queue.
    INGEST_QUEUE_URL: 'http://127.0.0.1:9/000000000000/unused',
    RECONCILE_AFTER_MINUTES: '30',
    RECONCILE_LOOKBACK_HOURS: '25',
    ERROR_RESUBMISSIONS: '0',
  });
  ({ handler } = await import('../../lambdas/reconcile/handler.js'));
});
afterAll(async () => {
  await env?.close();
  await recorder?.close();
});

describe('the reconcile handler', () => {
  it("paces itself at Scale's rate limit after the first 429 instead of meeting one on every lookup", async () => {
    const scale = new ScaleClient({ apiKey: SECRETS.scaleApiKey, baseUrl: env.scale.apiUrl });
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const ids = ['a', 'b', 'c', 'd', 'e'].map((c) => `sfs-${c.repeat(40)}`);
    for (const uniqueId of ids) {
      const source = { uniqueId, bucket: 'scenes', key: `stuck/${uniqueId}.sfs`, versionId: 'v1', eTag: 'e', sequencer: '00A1', size: 10, sceneFormat: 'sensor_fusion' as const, project: 'scenes-default' };
      expect(await env.store.startSubmission(source, 'claim', hourAgo)).toBe('started');
      // Scale has the task, but its answer never reached the record: the upload is stuck in `submitting`.
      await scale.createMultistageTask({ project: 'scenes-default', attachments: [`${recorder.url}/scene.sfs`], scene_format: 'sensor_fusion', unique_id: uniqueId });
    }
    env.scale.configure({ rateLimit: { requestsPerSecond: 1, retryAfterSeconds: 1 } });
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // the creations above are out of the window
    const before = env.scale.state().requests.rateLimited;

    const report = await handler({}, context);

    expect(report).toMatchObject({ adopted: 5, resubmitted: 0, failedProjects: 0 });
    // One listing and five lookups at one request per second: without pacing each lookup meets a 429 (5 in all).
    expect(env.scale.state().requests.rateLimited - before).toBeLessThanOrEqual(2);
    env.scale.configure({ rateLimit: null });
  }, 30_000);
});
