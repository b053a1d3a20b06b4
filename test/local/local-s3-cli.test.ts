import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREDENTIALS, sequencersIncrease, startKit, type Kit } from './local-s3-kit.js';

const run = promisify(execFile);
let kit: Kit;
let dir: string;

beforeAll(async () => {
  kit = await startKit('enabled');
  dir = await mkdtemp(join(tmpdir(), 'local-s3-cli-'));
  await writeFile(join(dir, 'config'), '[default]\nregion = us-east-1\ns3 =\n  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n');
});
afterAll(async () => {
  await kit.close();
  await rm(dir, { recursive: true, force: true });
});

/** The AWS CLI, configured only through its environment, as a user of the local pipeline would. */
async function aws(...args: string[]): Promise<string> {
  return (await awsRun(args)).stdout;
}

/** The CLI's error output for a command that must fail. */
async function awsFailure(...args: string[]): Promise<string> {
  return awsRun(args).then(
    () => expect.fail(`aws ${args.join(' ')} succeeded`),
    (err: { stderr: string }) => err.stderr,
  );
}

function awsRun(args: string[]) {
  return run('aws', ['--endpoint-url', kit.s3.endpoint, ...args], {
    maxBuffer: 64 * 1024 * 1024,
    encoding: 'latin1',
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      AWS_CONFIG_FILE: join(dir, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    },
  });
}

describe('the AWS CLI against the local S3', () => {
  it('uploads (single and multipart), lists versions, reads an old version, and deletes with a marker', async () => {
    const big = Buffer.alloc(11 * 1024 * 1024 + 3, 7);
    big.write('second version', 0);
    await writeFile(join(dir, 'small scene.sfs'), 'first version');
    await writeFile(join(dir, 'big.sfs'), big);
    await aws('s3', 'cp', join(dir, 'small scene.sfs'), 's3://data/cli/other.sfs');
    await aws('s3', 'cp', join(dir, 'small scene.sfs'), 's3://data/cli/drive 1/scene.sfs');
    await aws('s3', 'cp', join(dir, 'big.sfs'), 's3://data/cli/drive 1/scene.sfs');

    const events = kit.eventsFor('cli/drive 1/scene.sfs');
    expect(events.map((e) => [e.eventName, e.size])).toEqual([
      ['ObjectCreated:Put', 13],
      ['ObjectCreated:CompleteMultipartUpload', big.length],
    ]);
    expect(events[1]!.eTag).toMatch(/^[0-9a-f]{32}-3$/);

    const listed = JSON.parse(await aws('s3api', 'list-object-versions', '--bucket', 'data', '--prefix', 'cli/drive')) as { Versions: Array<{ VersionId: string; Size: number; IsLatest: boolean }> };
    expect(listed.Versions.map((v) => [v.VersionId, v.Size, v.IsLatest])).toEqual([
      [events[1]!.versionId, big.length, true],
      [events[0]!.versionId, 13, false],
    ]);

    const current = Buffer.from(await aws('s3', 'cp', 's3://data/cli/drive 1/scene.sfs', '-'), 'latin1');
    expect(createHash('md5').update(current).digest('hex')).toBe(createHash('md5').update(big).digest('hex'));
    await aws('s3api', 'get-object', '--bucket', 'data', '--key', 'cli/drive 1/scene.sfs', '--version-id', events[0]!.versionId!, join(dir, 'old.sfs'));
    expect(await readFile(join(dir, 'old.sfs'), 'utf8')).toBe('first version');

    await aws('s3', 'rm', 's3://data/cli/drive 1/scene.sfs');
    expect(kit.eventsFor('cli/drive 1/scene.sfs').at(-1)!.eventName).toBe('ObjectRemoved:DeleteMarkerCreated');
    const keys = (await aws('s3', 'ls', '--recursive', 's3://data/cli/')).trim().split('\n').map((line) => line.split(/\s+/).slice(3).join(' '));
    expect(keys).toEqual(['cli/other.sfs']);
    expect(await awsFailure('s3api', 'head-object', '--bucket', 'data', '--key', 'cli/drive 1/scene.sfs')).toContain('(404)');
    expect(sequencersIncrease(kit.eventsFor('cli/drive 1/scene.sfs').map((e) => e.sequencer!))).toBe(true);
  }, 60_000);
});
