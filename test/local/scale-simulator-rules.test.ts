import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCreateTaskRequest } from '../../lambdas/core/scale/schemas.js';
import { startScaleSimulator, type ScaleSimulator } from '../../local/scale-simulator/server.js';

// POST /v1/task/multistage against the simulator's own encoding of Scale's body rules. Every limit below is a
// literal read from SCALE-API.md (or Scale's pages it cites), never a constant of the product or the simulator.
// Tasks wait a minute before any work (startDelayMs), so no attachment is ever fetched.
const API_KEY = 'test_rules_key_0123456789';
const AUTH = `Basic ${Buffer.from(`${API_KEY}:`).toString('base64')}`;
const SCENE = 'http://127.0.0.1:9/scene.sfs';

let sim: ScaleSimulator;
beforeAll(async () => {
  sim = await startScaleSimulator({
    apiKey: API_KEY,
    callbackAuthKey: 'unused',
    projects: ['p', 'q'],
    batches: [{ name: 'b1', project: 'p' }, { name: 'bq', project: 'q' }],
    config: { startDelayMs: 60_000 },
  });
});
afterAll(() => sim?.close());

type Answer = { status: number; body: Record<string, unknown> };

async function create(body: unknown): Promise<Answer> {
  const response = await fetch(`${sim.apiUrl}/task/multistage`, {
    method: 'POST',
    headers: { authorization: AUTH, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const base = { project: 'p', attachments: [SCENE], scene_format: 'sensor_fusion' };
const statuses = async (bodies: unknown[]) => Promise.all(bodies.map(async (body) => (await create(body)).status));
/** `{"x":"…"}` with `n` copies of `char`: 8 bytes of JSON around the string. */
const metadataOf = (char: string, n: number) => ({ x: char.repeat(n) });

describe('Scale simulator: the body rules of POST /v1/task/multistage', () => {
  it('refuses a missing required parameter with Scale\'s status and error body, creating nothing', async () => {
    const before = sim.state().tasks.length;
    const missing = { status: 400, body: { status_code: 400, error: 'Please include an attachment or attachments parameter.' } };
    expect(await create({ project: 'p', scene_format: 'sensor_fusion' })).toEqual(missing);
    expect(await create({ ...base, attachments: [] })).toEqual(missing);
    expect(await create({ ...base, attachments: SCENE })).toEqual(missing);
    expect(await create({ project: 'p', attachments: [SCENE] })).toMatchObject({ status: 400, body: { status_code: 400, error: expect.stringContaining('scene_format') } });
    expect(await create({ ...base, scene_format: 'sensorfusion' })).toMatchObject({ status: 400, body: { error: expect.stringContaining('scene_format') } });
    expect(await create({ attachments: [SCENE], scene_format: 'sensor_fusion' })).toMatchObject({ status: 400, body: { error: expect.stringContaining('project') } });
    expect(await statuses([[], null, 'text', 42])).toEqual([400, 400, 400, 400]);
    expect(sim.state().tasks.length).toBe(before);
  });

  it('takes at most 5 tags, each a string', async () => {
    const five = await create({ ...base, tags: ['a', 'b', 'c', 'd', 'e'] });
    expect(five).toMatchObject({ status: 200, body: { tags: ['a', 'b', 'c', 'd', 'e'] } });
    expect(await create({ ...base, tags: ['a', 'b', 'c', 'd', 'e', 'f'] })).toEqual({
      status: 400,
      body: { status_code: 400, error: 'tags holds 6 tags; at most 5 are allowed.' },
    });
    expect(await statuses([{ ...base, tags: [1] }, { ...base, tags: 'a' }, { ...base, tags: [] }])).toEqual([400, 400, 200]);
  });

  it('takes metadata up to 10 KB (10,000 bytes, the smaller reading) of UTF-8 JSON, and only an object', async () => {
    // 8 + 9,992 = 10,000 bytes; one more is over.
    expect(await create({ ...base, metadata: metadataOf('a', 9_992) })).toMatchObject({ status: 200, body: { metadata: { x: expect.any(String) } } });
    expect(await create({ ...base, metadata: metadataOf('a', 9_993) })).toMatchObject({
      status: 400,
      body: { status_code: 400, error: 'metadata is 10001 bytes as JSON; at most 10000 bytes (10 KB) are allowed.' },
    });
    // Bytes, not characters: "é" is 2 bytes, so 4,996 of them make 10,000 bytes and 4,997 make 10,002.
    expect(await statuses([{ ...base, metadata: metadataOf('é', 4_996) }, { ...base, metadata: metadataOf('é', 4_997) }])).toEqual([200, 400]);
    expect(await statuses([{ ...base, metadata: [] }, { ...base, metadata: 'x' }, { ...base, metadata: null }])).toEqual([400, 400, 400]);
  });

  it('takes priority 10, 20 or 30 and nothing else', async () => {
    expect(await statuses([10, 20, 30].map((priority) => ({ ...base, priority })))).toEqual([200, 200, 200]);
    const refused = await create({ ...base, priority: 15 });
    expect(refused).toEqual({ status: 400, body: { status_code: 400, error: 'priority must be one of 10, 20, 30; got 15.' } });
    expect(await statuses([0, 9, 11, 40, '20', 20.5, null].map((priority) => ({ ...base, priority })))).toEqual(Array(7).fill(400));
  });

  it('takes exactly one attachment for sensor_fusion, one or more for split_base64', async () => {
    const two = [SCENE, 'http://127.0.0.1:9/other.sfs'];
    expect(await create({ ...base, attachments: two })).toMatchObject({ status: 400, body: { error: expect.stringContaining('exactly one attachment') } });
    const frames = ['http://127.0.0.1:9/0.json', 'http://127.0.0.1:9/1.json', 'http://127.0.0.1:9/2.json'];
    expect(await create({ ...base, scene_format: 'split_base64', attachments: frames })).toMatchObject({ status: 200, body: { params: { attachments: frames } } });
  });

  it('takes http, https and s3 attachment URLs, and refuses anything else naming the attachment', async () => {
    const accepted = ['https://bucket.s3.amazonaws.com/a.sfs?X-Amz-Signature=abc', 's3://bucket/dir/a.sfs', SCENE];
    expect(await statuses(accepted.map((url) => ({ ...base, attachments: [url] })))).toEqual([200, 200, 200]);
    for (const url of ['ftp://host/a.sfs', 'not a url', '/relative/a.sfs', 'http://', 42]) {
      expect(await create({ ...base, attachments: [url] }), String(url)).toMatchObject({ status: 400, body: { error: expect.stringContaining('attachments[0]') } });
    }
  });

  it('takes a callback_url that is a full http(s) URL or an email address', async () => {
    const urls = ['https://example.com/cb?ref=1', 'http://127.0.0.1:9/cb', 'labels@example.com'];
    expect(await statuses(urls.map((callback_url) => ({ ...base, callback_url })))).toEqual([200, 200, 200]);
    const refused = ['example.com/cb', 'ftp://example.com/cb', 'two@at@example.com', 'someone@localhost', ''];
    expect(await statuses(refused.map((callback_url) => ({ ...base, callback_url })))).toEqual(Array(5).fill(400));
  });

  it('answers 409 with Scale\'s text for a reused unique_id, and 400 for optional fields of the wrong type', async () => {
    expect((await create({ ...base, unique_id: 'rules-u1' })).status).toBe(200);
    expect(await create({ ...base, unique_id: 'rules-u1' })).toEqual({
      status: 409,
      body: { status_code: 409, error: 'The provided idempotency key or unique_id is already in use.' },
    });
    const wrong = [{ unique_id: '' }, { unique_id: 7 }, { clear_unique_id_on_error: 'yes' }, { instruction: 5 }, { task_blueprint_id: '' }, { batch: '' }];
    expect(await statuses(wrong.map((field) => ({ ...base, ...field })))).toEqual(Array(6).fill(400));
  });

  it('refuses a parameter Scale does not document, such as a misspelt one', async () => {
    expect(await create({ ...base, callbackurl: 'https://example.com/cb' })).toEqual({
      status: 400,
      body: { status_code: 400, error: 'Unknown parameter "callbackurl".' },
    });
  });

  it('takes the project from the batch when only the batch is given, and refuses a batch of another project', async () => {
    const byBatch = await create({ batch: 'bq', attachments: [SCENE], scene_format: 'sensor_fusion' });
    expect(byBatch).toMatchObject({ status: 200, body: { project: 'q', batch: 'bq' } });
    expect(await create({ ...base, batch: 'bq' })).toEqual({ status: 400, body: { status_code: 400, error: 'Batch "bq" was not found in project "p".' } });
    expect(await create({ batch: 'nope', attachments: [SCENE], scene_format: 'sensor_fusion' })).toEqual({
      status: 400,
      body: { status_code: 400, error: 'Batch "nope" was not found.' },
    });
    expect(await create({ ...base, project: 'elsewhere' })).toEqual({ status: 400, body: { status_code: 400, error: 'Project "elsewhere" was not found.' } });
  });
});

describe('the product\'s request schema and the simulator\'s rules are written apart', () => {
  const productAccepts = (body: unknown) => checkCreateTaskRequest(body).length === 0;
  const simulatorAccepts = async (body: unknown) => (await create(body)).status === 200;

  it('disagree where Scale\'s documentation and the product\'s schema differ', async () => {
    // A batch implies its project (create-multi-stage-task): the product insists on the project.
    const batchOnly = { batch: 'b1', attachments: [SCENE], scene_format: 'sensor_fusion' };
    expect(productAccepts(batchOnly)).toBe(false);
    expect(await simulatorAccepts(batchOnly)).toBe(true);
    // s3:// attachments are read through Scale's AWS integration (SCALE-API.md): the product sends http(s) only.
    const s3 = { ...base, attachments: ['s3://bucket/scene.sfs'] };
    expect(productAccepts(s3)).toBe(false);
    expect(await simulatorAccepts(s3)).toBe(true);
  });

  it('agree on the limits SCALE-API.md states, each side checked against the same literals', async () => {
    const cases: Array<[string, unknown, boolean]> = [
      ['5 tags', { ...base, tags: ['1', '2', '3', '4', '5'] }, true],
      ['6 tags', { ...base, tags: ['1', '2', '3', '4', '5', '6'] }, false],
      ['priority 30', { ...base, priority: 30 }, true],
      ['priority 25', { ...base, priority: 25 }, false],
      ['metadata of 10,000 bytes', { ...base, metadata: metadataOf('a', 9_992) }, true],
      ['metadata of 10,001 bytes (over "10 kb" read as 10,000)', { ...base, metadata: metadataOf('a', 9_993) }, false],
      ['metadata of 10,240 bytes (within 10 KiB)', { ...base, metadata: metadataOf('a', 10_232) }, false],
      ['two .sfs attachments', { ...base, attachments: [SCENE, SCENE] }, false],
      ['no attachments', { ...base, attachments: [] }, false],
      ['an unknown scene_format', { ...base, scene_format: 'pcd' }, false],
      ['an email callback', { ...base, callback_url: 'labels@example.com' }, true],
      ['a misspelt parameter', { ...base, tag: ['a'] }, false],
    ];
    for (const [name, body, accepted] of cases) {
      expect(productAccepts(body), `product: ${name}`).toBe(accepted);
      expect(await simulatorAccepts(body), `simulator: ${name}`).toBe(accepted);
    }
  });
});
