import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskEventDetailSchema } from '../../lambdas/core/events/task-event.js';
import { encodeSfsToBuffer } from '../../lambdas/core/scenes/sfs/writer.js';
import { startLocalPipeline, type LocalPipeline } from '../../local/pipeline.js';
import { buildSampleScene } from '../../local/sample-scenes.js';
import { eventually, startRecorder } from '../helpers/http.js';
import { clientsFor } from '../helpers/local-pipeline.js';

// Task events through the whole local pipeline: the table's writes → the emulated stream → the shipped
// task-events bundle → the bus's events file (and a POST to --events-url).
let workDir: string;
let pipeline: LocalPipeline;
let receiver: Awaited<ReturnType<typeof startRecorder>>;
let c: ReturnType<typeof clientsFor>;
const logs = { chunks: [] as string[], write(chunk: unknown) { this.chunks.push(String(chunk)); return true; } };

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'e2e-events-'));
  receiver = await startRecorder();
  pipeline = await startLocalPipeline({ workDir, logs: logs as never, eventsUrl: `${receiver.url}/events`, simulator: { completionDelayMs: 50, callbackRetryDelayMs: 50 } });
  c = clientsFor(pipeline);
}, 60_000);
afterAll(async () => {
  await pipeline?.close();
  await receiver?.close();
  await rm(workDir, { recursive: true, force: true });
});

type BusEvent = { source: string; 'detail-type': string; detail: Record<string, unknown> };
const eventsIn = async (file: string) => (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as BusEvent);

describe('local pipeline: task events', () => {
  it('gives each upload one event per status change, in order, in the published contract, with its result files', async () => {
    const good = await c.put('events/good.sfs', encodeSfsToBuffer(buildSampleScene()));
    const empty = await c.put('events/empty.sfs', '');
    expect(await c.settled(good.uniqueId)).toMatchObject({ status: 'completed' });
    expect(await c.settled(empty.uniqueId)).toMatchObject({ status: 'rejected' });
    const forUpload = async (uniqueId: string, count: number) =>
      eventually(async () => {
        const mine = (await eventsIn(pipeline.info.eventsFile)).filter((e) => e.detail.uniqueId === uniqueId);
        return mine.length >= count ? mine : undefined;
      }, 10_000, `${count} events for ${uniqueId}`);

    const goodEvents = await forUpload(good.uniqueId, 3);
    expect(goodEvents.map((e) => [e.detail.previousStatus, e.detail.status])).toEqual([[undefined, 'submitting'], ['submitting', 'pending'], ['pending', 'completed']]);
    for (const event of goodEvents) {
      expect(event).toMatchObject({ source: 'scale-sfs-pipeline', 'detail-type': 'Task status changed' });
      expect(TaskEventDetailSchema.safeParse(event.detail).success).toBe(true);
    }
    expect(goodEvents[2]!.detail).toMatchObject({ bucket: 'scenes', key: 'events/good.sfs', versionId: good.versionId, response: { inline: expect.objectContaining({ frames: expect.any(Number) }) } });

    // The completed response's result file, brought home before the completed event: listed on the record and
    // in the event, stored with the sha256 of what Scale serves.
    const record = await c.reader.get(good.uniqueId);
    const [file] = record!.resultFiles!;
    expect(file).toMatchObject({ bucket: 'results', key: expect.stringMatching(new RegExp(`^results/${good.uniqueId}/[0-9a-f]{16}/00-annotations\\.json$`)), sourceUrl: expect.stringContaining('/annotations.json') });
    const served = Buffer.from(await (await fetch(file!.sourceUrl)).arrayBuffer());
    const stored = Buffer.from(await (await c.s3.send(new GetObjectCommand({ Bucket: 'results', Key: file!.key }))).Body!.transformToByteArray());
    expect(stored.equals(served)).toBe(true);
    expect(file).toMatchObject({ bytes: served.length, sha256: createHash('sha256').update(served).digest('hex') });
    expect(goodEvents[2]!.detail.resultFiles).toEqual(record!.resultFiles);

    const emptyEvents = await forUpload(empty.uniqueId, 2);
    expect(emptyEvents.map((e) => e.detail.status)).toEqual(['submitting', 'rejected']);
    expect(emptyEvents[1]!.detail).toMatchObject({ reason: 'the object is empty (0 bytes)' });

    // The same events reach --events-url, in the same order.
    const posted = await eventually(() => {
      const mine = receiver.received.map((r) => r.body as BusEvent).filter((e) => e.detail.uniqueId === good.uniqueId);
      return mine.length >= 3 ? mine : undefined;
    }, 10_000, 'the POSTed events');
    expect(posted.map((e) => e.detail.status)).toEqual(['submitting', 'pending', 'completed']);
  }, 40_000);
});
