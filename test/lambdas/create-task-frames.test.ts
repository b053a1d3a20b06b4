import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3NotificationBody, sqsEvent, sqsRecord } from '../../local/events.js';
import { buildSampleFrame } from '../../local/sample-scenes.js';
import { eventually, startRecorder } from '../helpers/http.js';
import { expectedUniqueId } from '../helpers/identity.js';
import { startPipelineEnv } from '../helpers/pipeline-env.js';

let env: Awaited<ReturnType<typeof startPipelineEnv>>;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
const context = { functionName: 'create-task', awsRequestId: 'test', getRemainingTimeInMillis: () => 60_000 } as Context;

beforeAll(async () => {
  recorder = await startRecorder();
  env = await startPipelineEnv({ callbackUrl: `${recorder.url}/callback`, routing: { maxFrames: 5 } });
  ({ handler } = await import('../../lambdas/create-task/handler.js'));
});
afterAll(async () => {
  await env.close();
  await recorder.close();
});

const frameJson = (i: number) => JSON.stringify(buildSampleFrame(i, 20));

async function manifest(key: string, frames: unknown) {
  const put = await env.put(key, typeof frames === 'string' ? frames : JSON.stringify({ frames }));
  return { ...put, uniqueId: expectedUniqueId(put) };
}

async function deliver(object: { bucket: string; key: string; size: number; eTag: string }) {
  return handler(sqsEvent([sqsRecord(s3NotificationBody([object]))]), context);
}

const simTasksFor = (uniqueId: string) => env.scale.state().tasks.filter((t) => t.unique_id === uniqueId);

describe('create-task with frame manifests (split_base64)', () => {
  it('creates one task whose attachments are the frames in manifest order, each URL working', async () => {
    for (const i of [0, 1, 2]) await env.put(`drives/d1/frames/${i}.json`, frameJson(i));
    // Deliberately not in key order: the manifest's order is the scene's order.
    const object = await manifest('drives/d1/scene.frames.json', ['frames/2.json', 'frames/0.json', 'frames/1.json']);
    expect((await deliver(object)).batchItemFailures).toEqual([]);

    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'pending', sceneFormat: 'split_base64', frameCount: 3, key: 'drives/d1/scene.frames.json' });
    const [task] = simTasksFor(object.uniqueId);
    expect(task!.task.params.scene_format).toBe('split_base64');
    const attachments = task!.task.params.attachments as string[];
    expect(attachments.map((url) => decodeURIComponent(new URL(url).pathname))).toEqual([
      '/scenes/drives/d1/frames/2.json',
      '/scenes/drives/d1/frames/0.json',
      '/scenes/drives/d1/frames/1.json',
    ]);
    const settled = await eventually(() => env.scale.state().tasks.find((t) => t.unique_id === object.uniqueId && t.settled));
    expect(settled.downloads.map((d) => d.statusCode)).toEqual([200, 200, 200]);
    expect(settled.task.status).toBe('completed');
    for (const [i, url] of attachments.entries()) expect(await (await fetch(url)).json()).toEqual(JSON.parse(frameJson([2, 0, 1][i]!)));
  });

  it('resolves keys inside the manifest folder: relative to it, or from its root with a leading slash', async () => {
    await env.put('drives/d2/calib/f0.json', frameJson(0));
    await env.put('drives/d2/f1.json', frameJson(1));
    await env.put('drives/d2/lidar/f2.json', frameJson(2));
    const object = await manifest('drives/d2/scene.frames.json', ['/calib/f0.json', 'f1.json', 'lidar/../lidar/f2.json']);
    await deliver(object);
    const attachments = simTasksFor(object.uniqueId)[0]!.task.params.attachments as string[];
    expect(attachments.map((url) => decodeURIComponent(new URL(url).pathname))).toEqual(['/scenes/drives/d2/calib/f0.json', '/scenes/drives/d2/f1.json', '/scenes/drives/d2/lidar/f2.json']);
    // Each frame is pinned to the version that was checked.
    expect(attachments.every((url) => new URL(url).searchParams.has('versionId'))).toBe(true);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ attachmentPinned: true });
  });

  it.each([
    ['a missing frame', 'missing/scene.frames.json', ['here.json', 'gone.json'], 'frames missing or empty — 1 missing: missing/gone.json'],
    ['an empty frame', 'empty/scene.frames.json', ['here.json', 'blank.json'], '1 empty: empty/blank.json'],
    ['too many frames', 'many/scene.frames.json', ['1', '2', '3', '4', '5', '6'], 'the frame manifest lists 6 frames; at most 5 are allowed'],
    ['no frames', 'none/scene.frames.json', [], 'the frame manifest lists no frames'],
    ['a repeated frame', 'repeat/scene.frames.json', ['a.json', './a.json'], 'frames[1] repeats frames[0] ("repeat/a.json")'],
    ['a frame in another bucket', 'url/scene.frames.json', ['s3://other/a.json'], 'frames[0] "s3://other/a.json" is not a key inside "url/"'],
    ['a frame outside the manifest folder', 'out/scene.frames.json', ['../a.json'], 'frames[0] "../a.json" is not a key inside "out/"'],
    ['a frame above the bucket root', 'up/scene.frames.json', ['../../a.json'], 'frames[0] "../../a.json" is not a key'],
    ['an entry of exactly ".."', 'dots/scene.frames.json', ['here.json', '..'], 'frames[1] ".." is not a key inside "dots/"'],
    ['an entry of exactly "."', 'dot/scene.frames.json', ['.'], 'frames[0] "." is not a key inside "dot/"'],
    ['an entry naming the folder itself', 'self/scene.frames.json', ['here.json/..'], 'frames[0] "here.json/.." is not a key inside "self/"'],
    ['a manifest that is not JSON', 'notjson/scene.frames.json', 'frames: a, b', 'the frame manifest is not valid JSON'],
    ['a manifest of the wrong shape', 'shape/scene.frames.json', '{"frame": ["a.json"]}', 'frames: expected an array of frame keys'],
  ])('rejects %s, naming it, without a Scale task', async (_name, key, frames, reason) => {
    const folder = key.split('/')[0]!;
    await env.put(`${folder}/here.json`, frameJson(0));
    await env.put(`${folder}/blank.json`, '');
    const object = await manifest(key, frames);
    expect((await deliver(object)).batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'rejected', sceneFormat: 'split_base64', reason: expect.stringContaining(reason) });
    expect(simTasksFor(object.uniqueId)).toEqual([]);
  });

  it('takes %2e%2e in an entry as part of a key, never as "..": the frame attached is the one with that name', async () => {
    await env.put('pct/%2e%2e/0.json', frameJson(7));
    // Where a decoded '../0.json' would lead: an object that must not be attached.
    await env.put('0.json', frameJson(0));
    const object = await manifest('pct/scene.frames.json', ['%2e%2e/0.json']);
    expect((await deliver(object)).batchItemFailures).toEqual([]);
    expect(await env.reader.get(object.uniqueId)).toMatchObject({ status: 'pending', frameCount: 1 });
    const [url] = simTasksFor(object.uniqueId)[0]!.task.params.attachments as string[];
    expect(decodeURIComponent(new URL(url!).pathname)).toBe('/scenes/pct/%2e%2e/0.json');
    expect(await (await fetch(url!)).json()).toEqual(JSON.parse(frameJson(7)));
  });

  it('creates one task when the same manifest version is delivered twice', async () => {
    await env.put('dup/f.json', frameJson(0));
    const object = await manifest('dup/scene.frames.json', ['f.json']);
    await deliver(object);
    await deliver(object);
    expect(simTasksFor(object.uniqueId)).toHaveLength(1);
  });
});
