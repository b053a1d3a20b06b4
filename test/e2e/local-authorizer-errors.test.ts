import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundles } from '../../local/build-bundles.js';
import { startLocalPipeline, type LocalPipeline } from '../../local/pipeline.js';

// How the local pipeline answers for each way an authorizer can end, with a stand-in for the callback-auth bundle
// that ends as its scale-callback-auth header says: the answers travel through the real function runner.
const AUTHORIZER = `
export async function handler(event) {
  const how = event.headers['scale-callback-auth'];
  if (how === 'unauthorized') throw new Error('Unauthorized');
  if (how === 'crash') throw new Error('the secrets could not be read');
  if (how === 'slow') await new Promise((resolve) => setTimeout(resolve, 5_000));
  if (how === 'no-policy') return { principalId: 'p' };
  return { principalId: 'p', policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }] } };
}
`;
let workDir: string;
let pipeline: LocalPipeline;
const logs = { write: () => true };

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'e2e-authorizer-'));
  const fake = join(workDir, 'authorizer.mjs');
  await writeFile(fake, AUTHORIZER);
  const bundles = { ...(await buildBundles(join(workDir, 'bundles'))), 'callback-auth': { path: fake } };
  pipeline = await startLocalPipeline({ workDir: join(workDir, 'pipeline'), bundles, logs: logs as never, functionTimeoutSeconds: { 'callback-auth': 1 } });
}, 60_000);
afterAll(async () => {
  await pipeline?.close();
  await rm(workDir, { recursive: true, force: true });
});

const post = (how: string) =>
  fetch(`${pipeline.info.callbackUrl}?ref=sfs-${'0'.repeat(40)}&sig=${how}`, { method: 'POST', headers: { 'scale-callback-auth': how }, body: '{}' });

describe('local pipeline: what API Gateway makes of the authorizer', () => {
  it.each([
    ['throws Unauthorized', 'unauthorized', 401, { message: 'Unauthorized' }],
    ['throws anything else', 'crash', 500, { message: null }],
    ['outlives its timeout', 'slow', 500, { message: null }],
    ['returns no policy', 'no-policy', 500, { message: null }],
    ['allows', 'allow', 200, { ok: true }],
  ])('answers as API Gateway does when the authorizer %s', async (_name, how, status, body) => {
    const answer = await post(how);
    expect(answer.status).toBe(status);
    expect(await answer.json()).toEqual(body);
  });

  it('counts the refusals by status, as API Gateway counts 4XX and 5XX', () => {
    expect(pipeline.api.stats).toMatchObject({ clientErrors: 1, serverErrors: 3, refused: { 401: 1, 500: 3 }, stored: 1 });
  });
});
