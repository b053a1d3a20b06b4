import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalQueue, type QueueOptions } from '../../local/queue.js';
import { eventually } from '../helpers/http.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'queue-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Delivery {
  body: string;
  messageId: string;
  receiveCount: number;
  receiptHandle: string;
  batch: number;
  startedAt: number;
  endedAt?: number;
}

/** What a consumer does with one record: true = processed, false = reported as a batch item failure. */
type Handle = (delivery: Delivery) => boolean | Promise<boolean>;

const queues: LocalQueue[] = [];
afterEach(() => queues.splice(0).forEach((q) => q.stop()));

/** A queue whose consumer records every delivery and answers per record with `handle`. */
async function queueWith(handle: Handle, options: Partial<QueueOptions> = {}) {
  const deadLetterFile = join(dir, `dead-letters-${queues.length}-${Date.now()}.jsonl`);
  await writeFile(deadLetterFile, '');
  const deliveries: Delivery[] = [];
  let batches = 0;
  const queue = new LocalQueue({
    batchSize: 10,
    maxConcurrency: 2,
    visibilityTimeoutMs: 100,
    maxReceiveCount: 3,
    deadLetterFile,
    ...options,
    consumer: async (event: SQSEvent): Promise<SQSBatchResponse> => {
      const batch = ++batches;
      const failures = await Promise.all(
        event.Records.map(async (record) => {
          const delivery: Delivery = {
            body: record.body,
            messageId: record.messageId,
            receiveCount: Number(record.attributes.ApproximateReceiveCount),
            receiptHandle: record.receiptHandle,
            batch,
            startedAt: Date.now(),
          };
          deliveries.push(delivery);
          const ok = await handle(delivery);
          delivery.endedAt = Date.now();
          return ok ? [] : [{ itemIdentifier: record.messageId }];
        }),
      );
      return { batchItemFailures: failures.flat() };
    },
  });
  queues.push(queue);
  const deadLetters = async () =>
    (await readFile(deadLetterFile, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { messageId: string; body: string; receiveCount: number });
  return { queue, deliveries, deadLetters, deadLetterFile };
}

describe('LocalQueue, default delivery', () => {
  it('delivers each message once when it succeeds, and counts it deleted', async () => {
    const { queue, deliveries } = await queueWith(() => true);
    queue.send('a');
    queue.send('b');
    await queue.idle();
    expect(deliveries.map((d) => d.body).sort()).toEqual(['a', 'b']);
    expect(queue.stats).toMatchObject({ sent: 2, received: 2, deleted: 2, redelivered: 0, duplicated: 0, inFlightRedelivered: 0, deadLettered: 0 });
  });

  it('redelivers a failed message after the visibility timeout, then dead-letters it once after maxReceiveCount', async () => {
    const { queue, deliveries, deadLetters } = await queueWith(() => false, { visibilityTimeoutMs: 150 });
    const id = queue.send('poison');
    await queue.idle();
    expect(deliveries.map((d) => d.receiveCount)).toEqual([1, 2, 3]);
    expect(new Set(deliveries.map((d) => d.receiptHandle)).size).toBe(3);
    for (let i = 1; i < deliveries.length; i++) {
      expect(deliveries[i]!.startedAt - deliveries[i - 1]!.endedAt!).toBeGreaterThanOrEqual(140);
    }
    expect(await deadLetters()).toEqual([expect.objectContaining({ messageId: id, body: 'poison', receiveCount: 3 })]);
    expect(queue.stats).toMatchObject({ received: 3, redelivered: 2, deadLettered: 1, deleted: 0 });
  });

  it('redrives dead letters as SQS does: each sent again with a fresh receive count, the dead-letter file emptied', async () => {
    let healed = false;
    const { queue, deliveries, deadLetters } = await queueWith(() => healed, { visibilityTimeoutMs: 20, maxReceiveCount: 2 });
    queue.send('first');
    queue.send('second');
    await queue.idle();
    expect((await deadLetters()).map((d) => d.body).sort()).toEqual(['first', 'second']);
    healed = true;
    expect(await queue.redrive()).toEqual({ moved: 2 });
    await queue.idle();
    expect(await deadLetters()).toEqual([]);
    const redriven = deliveries.slice(4);
    expect(redriven.map((d) => [d.body, d.receiveCount]).sort()).toEqual([['first', 1], ['second', 1]]);
    expect(queue.stats).toMatchObject({ sent: 4, deleted: 2, deadLettered: 2 });
    expect(await queue.redrive()).toEqual({ moved: 0 });
  });

  it('redrives the good lines of a dead-letter file with bad ones in it, keeping the bad ones there and naming their lines', async () => {
    const { queue, deliveries, deadLetterFile: file } = await queueWith(() => true);
    const bad = ['not json at all', '{"messageId":"m2","receiveCount":3}', '{"body":42}', 'null'];
    await writeFile(file, [JSON.stringify({ messageId: 'm1', body: 'first', receiveCount: 3 }), bad[0], '', bad[1], bad[2], JSON.stringify({ body: 'second' }), bad[3], ''].join('\n'));
    expect(await queue.redrive()).toEqual({ moved: 2, unreadableLines: [2, 4, 5, 7] });
    await queue.idle();
    expect(deliveries.map((d) => d.body).sort()).toEqual(['first', 'second']);
    expect(await readFile(file, 'utf8')).toBe(`${bad.join('\n')}\n`);
    // What is left is only the bad lines: a second redrive moves nothing and names them again.
    expect(await queue.redrive()).toEqual({ moved: 0, unreadableLines: [1, 2, 3, 4] });
  });

  it('does not deliver a slow message again while its consumer still runs', async () => {
    const { queue, deliveries } = await queueWith(async () => (await sleep(400), true), { visibilityTimeoutMs: 100 });
    queue.send('slow');
    await queue.idle();
    expect(deliveries).toHaveLength(1);
    expect(queue.stats.inFlightRedelivered).toBe(0);
  });
});

describe('LocalQueue, duplicate deliveries', () => {
  it('at rate 1 hands every message over twice, in different batches, concurrently when a consumer is free', async () => {
    const { queue, deliveries } = await queueWith(async () => (await sleep(150), true), { duplicateDeliveryRate: 1, maxConcurrency: 2 });
    queue.send('x');
    await queue.idle();
    expect(deliveries.map((d) => d.body)).toEqual(['x', 'x']);
    const [first, second] = deliveries as [Delivery, Delivery];
    expect(first.batch).not.toBe(second.batch);
    expect(first.messageId).toBe(second.messageId);
    expect(first.receiptHandle).not.toBe(second.receiptHandle);
    // The copy is the same receive seen twice: it does not count as another receive.
    expect([first.receiveCount, second.receiveCount]).toEqual([1, 1]);
    expect(second.startedAt).toBeLessThan(first.endedAt!);
    expect(queue.stats).toMatchObject({ sent: 1, received: 2, duplicated: 1, deleted: 1 });
  });

  it('still delivers the copy after the first delivery deleted the message', async () => {
    const { queue, deliveries } = await queueWith(() => true, { duplicateDeliveryRate: 1, maxConcurrency: 1 });
    queue.send('y');
    await queue.idle();
    expect(deliveries).toHaveLength(2);
    expect(deliveries[1]!.startedAt).toBeGreaterThanOrEqual(deliveries[0]!.endedAt!);
    expect(queue.stats).toMatchObject({ received: 2, duplicated: 1, deleted: 1 });
  });

  it('never puts two copies of one message in the same batch', async () => {
    const { queue, deliveries } = await queueWith(() => true, { duplicateDeliveryRate: 1, maxConcurrency: 1, batchSize: 10 });
    for (let i = 0; i < 5; i++) queue.send(`m${i}`);
    await queue.idle();
    expect(deliveries).toHaveLength(10);
    const perBatch = new Map<number, string[]>();
    for (const d of deliveries) perBatch.set(d.batch, [...(perBatch.get(d.batch) ?? []), d.messageId]);
    for (const ids of perBatch.values()) expect(new Set(ids).size).toBe(ids.length);
  });

  it('repeats the same duplicates for the same seed', async () => {
    const run = async () => {
      const { queue, deliveries } = await queueWith(() => true, { duplicateDeliveryRate: 0.5, seed: 7, maxConcurrency: 1 });
      for (let i = 0; i < 40; i++) queue.send(`m${i}`);
      await queue.idle();
      const counts = new Map<string, number>();
      for (const d of deliveries) counts.set(d.body, (counts.get(d.body) ?? 0) + 1);
      return [...counts].filter(([, n]) => n === 2).map(([body]) => body).sort();
    };
    const first = await run();
    expect(first.length).toBeGreaterThan(5);
    expect(first.length).toBeLessThan(35);
    expect(await run()).toEqual(first);
  });

  it('dead-letters a message whose every copy fails once, with its receive count', async () => {
    const { queue, deliveries, deadLetters } = await queueWith(() => false, { duplicateDeliveryRate: 1, maxReceiveCount: 2, visibilityTimeoutMs: 50 });
    queue.send('bad');
    await queue.idle();
    await sleep(200); // a late copy would show up here
    expect(deliveries.map((d) => d.receiveCount).sort()).toEqual([1, 1, 2, 2]);
    expect(await deadLetters()).toEqual([expect.objectContaining({ body: 'bad', receiveCount: 2 })]);
    expect(queue.stats.deadLettered).toBe(1);
  });

  it('keeps a message hidden while another copy of it still runs, even when one copy has failed', async () => {
    let calls = 0;
    // The first copy fails at once; the second takes longer than the visibility timeout, then succeeds.
    const handle = async () => (++calls === 1 ? false : (await sleep(300), true));
    const { queue, deliveries } = await queueWith(handle, { duplicateDeliveryRate: 1, maxConcurrency: 2, visibilityTimeoutMs: 50 });
    queue.send('z');
    await queue.idle();
    expect(deliveries).toHaveLength(2);
    expect(queue.stats).toMatchObject({ received: 2, deleted: 1, redelivered: 0 });
  });

  it('can be switched on and off while running', async () => {
    const { queue, deliveries } = await queueWith(() => true, { maxConcurrency: 1 });
    queue.send('before');
    await queue.idle();
    expect(queue.configure({ duplicateDeliveryRate: 1 })).toMatchObject({ duplicateDeliveryRate: 1, redeliverInFlight: false });
    queue.send('during');
    await queue.idle();
    queue.configure({ duplicateDeliveryRate: 0 });
    queue.send('after');
    await queue.idle();
    expect(deliveries.map((d) => d.body)).toEqual(['before', 'during', 'during', 'after']);
    expect(() => queue.configure({ duplicateDeliveryRate: 1.5 })).toThrow(/0\.\.1/);
  });
});

describe('LocalQueue, redelivery of messages still in flight', () => {
  it('hands a message to a second consumer once its visibility timeout passes, with the receive count incremented', async () => {
    const releases: Array<(ok: boolean) => void> = [];
    const { queue, deliveries, deadLetters } = await queueWith(() => new Promise<boolean>((resolve) => releases.push(resolve)), {
      redeliverInFlight: true,
      visibilityTimeoutMs: 150,
    });
    queue.send('long');
    await eventually(() => (deliveries.length === 2 ? true : undefined), 2_000, 'the second delivery');
    const [first, second] = deliveries as [Delivery, Delivery];
    expect(second.receiveCount).toBe(2);
    expect(first.endedAt).toBeUndefined(); // the first consumer is still running
    expect(second.startedAt - first.startedAt).toBeGreaterThanOrEqual(140);
    expect(second.receiptHandle).not.toBe(first.receiptHandle);

    releases[1]!(true); // the second copy succeeds: the message is gone
    await eventually(() => (queue.stats.deleted === 1 ? true : undefined), 2_000, 'the delete');
    releases[0]!(false); // the first one's late failure changes nothing
    await queue.idle();
    await sleep(300);
    expect(deliveries).toHaveLength(2);
    expect(await deadLetters()).toEqual([]);
    expect(queue.stats).toMatchObject({ received: 2, deleted: 1, inFlightRedelivered: 1, redelivered: 0, deadLettered: 0 });
  });

  it("deletes the message when the first consumer finishes first, and the second copy's failure does not bring it back", async () => {
    const releases: Array<(ok: boolean) => void> = [];
    const { queue, deliveries } = await queueWith(() => new Promise<boolean>((resolve) => releases.push(resolve)), {
      redeliverInFlight: true,
      visibilityTimeoutMs: 100,
    });
    queue.send('m');
    await eventually(() => (deliveries.length === 2 ? true : undefined), 2_000, 'the second delivery');
    releases[0]!(true);
    releases[1]!(false);
    await queue.idle();
    await sleep(250);
    expect(deliveries).toHaveLength(2);
    expect(queue.stats).toMatchObject({ deleted: 1, redelivered: 0 });
  });

  it('moves a message that keeps outliving its visibility to the dead-letter file once, after maxReceiveCount receives', async () => {
    const releases: Array<(ok: boolean) => void> = [];
    const { queue, deliveries, deadLetters } = await queueWith(() => new Promise<boolean>((resolve) => releases.push(resolve)), {
      redeliverInFlight: true,
      visibilityTimeoutMs: 100,
      maxReceiveCount: 2,
      maxConcurrency: 5,
    });
    queue.send('stuck');
    await eventually(async () => ((await deadLetters()).length === 1 ? true : undefined), 2_000, 'the dead letter');
    await sleep(300);
    expect(deliveries.map((d) => d.receiveCount)).toEqual([1, 2]);
    releases.forEach((release) => release(false));
    await queue.idle();
    expect(await deadLetters()).toEqual([expect.objectContaining({ body: 'stuck', receiveCount: 2 })]);
    expect(queue.stats).toMatchObject({ deadLettered: 1, deleted: 0, inFlightRedelivered: 1 });
  });
});
