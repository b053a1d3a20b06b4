import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPipelineEnv } from '../../../helpers/pipeline-env.js';

let env: Awaited<ReturnType<typeof startPipelineEnv>>;
beforeAll(async () => {
  env = await startPipelineEnv({ callbackUrl: 'http://127.0.0.1:9/callback' }); // never called here
});
afterAll(() => env.close());

const source = (i: number) => ({ uniqueId: `sfs-${i}`, bucket: 'scenes', key: `k${i}.sfs`, eTag: `e${i}`, size: i, sceneFormat: 'sensor_fusion' as const, project: 'p' });

describe('TaskReader (the downstream contract) against DynamoDB', () => {
  it('gets by uniqueId and by taskId, and pages through a status since a time', async () => {
    for (let i = 0; i < 5; i++) {
      await env.store.startSubmission(source(i), `claim-${i}`, `2026-11-0${i + 1}T00:00:00.000Z`);
      await env.store.recordSubmitted(`sfs-${i}`, { taskId: `task-${i}`, attachmentExpiresAt: '2026-12-01T00:00:00.000Z', attachmentPinned: true, adopted: false }, `2026-11-0${i + 1}T01:00:00.000Z`);
    }
    await env.store.startSubmission(source(9), 'claim-9', '2026-11-09T00:00:00.000Z');
    await env.store.recordRejection('sfs-9', 'claim-9', 'the object is empty (0 bytes)', '2026-11-09T00:00:00.000Z');

    expect(await env.reader.get('sfs-2')).toMatchObject({ schemaVersion: 1, status: 'pending', taskId: 'task-2', key: 'k2.sfs' });
    expect(await env.reader.getByTaskId('task-3')).toMatchObject({ uniqueId: 'sfs-3' });
    expect(await env.reader.get('sfs-missing')).toBeUndefined();

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await env.reader.listByStatus('pending', '2026-11-02T00:00:00.000Z', { limit: 2, cursor });
      seen.push(...page.items.map((r) => r.uniqueId));
      cursor = page.cursor;
      pages++;
    } while (cursor);
    expect(seen).toEqual(['sfs-1', 'sfs-2', 'sfs-3', 'sfs-4']);
    expect(pages).toBeGreaterThanOrEqual(2);
    expect((await env.reader.listByStatus('rejected', '2026-01-01T00:00:00.000Z')).items).toEqual([
      expect.objectContaining({ uniqueId: 'sfs-9', reason: 'the object is empty (0 bytes)' }),
    ]);
  });
});
