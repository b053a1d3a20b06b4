import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shellCommand } from '../../../bin/cli/io.js';
import { planUpload } from '../../../bin/cli/upload-plan.js';
import { encodeSfsToBuffer } from '../../../lambdas/core/scenes/sfs/writer.js';
import { buildSampleScene } from '../../../local/sample-scenes.js';
import { cli } from '../../helpers/cli.js';

// What files, names and command lines can do to the CLI without any pipeline: every case here is refused or
// escaped before a pipeline would be asked anything (the info file names a port nothing listens on).

/** Control characters a terminal acts on (line feed and tab excepted, the CLI's own layout). */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

let dir: string;
let outside: string;
let info: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-hostile-'));
  outside = await mkdtemp(join(tmpdir(), 'cli-hostile-outside-'));
  // A port that refuses connections: a command that got as far as calling the pipeline would fail with exit 1.
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const closed = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  await new Promise((resolve) => server.close(resolve));
  info = join(dir, 'info.json');
  await writeFile(
    info,
    JSON.stringify({ region: 'us-east-1', accessKeyId: 'x', secretAccessKey: 'x', s3Endpoint: closed, bucket: 'scenes', resultsBucket: 'results', dynamodbEndpoint: closed, tasksTable: 'tasks', sqsEndpoint: closed, controlUrl: closed, ingestQueueUrl: `${closed}/q`, frameManifestSuffix: '.frames.json', clearUniqueIdOnError: true, deadLetterFile: join(dir, 'dl.jsonl') }),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const scene = encodeSfsToBuffer(buildSampleScene());

describe('text from files reaches the terminal escaped', () => {
  it('inspect: sensor ids, types, the version and metadata keys from a header', async () => {
    const hostile = buildSampleScene() as Record<string, unknown> & { sensors: Array<Record<string, unknown>> };
    hostile.version = '1.0\u001b[5m';
    hostile.metadata = { 'k\u001b[2Jx': 1 };
    hostile.sensors[0]!.id = 'li\u001b[31mdar\u001b]0;PWNED\u0007\nverdict    acceptable: fake';
    const file = join(dir, 'hostile.sfs');
    await writeFile(file, encodeSfsToBuffer(hostile as never));
    const run = await cli('inspect', file);
    expect(run.stdout).not.toMatch(RAW_CONTROL);
    expect(run.stdout).toContain('li\\u001b[31mdar\\u001b]0;PWNED\\u0007\\u000averdict    acceptable: fake');
    expect(run.stdout).toMatch(/^version +1\.0\\u001b\[5m$/m);
    expect(run.stdout).toMatch(/^metadata +k\\u001b\[2Jx$/m);
    // The id's line break cannot start a line of its own: one verdict, the real one.
    expect(run.stdout.match(/^verdict/gm)).toHaveLength(1);
  });

  it("pack: a frame's field names quoted in the refusal", async () => {
    const frames = join(dir, 'frames');
    await mkdir(frames);
    const frame = { timestamp: 1, device_position: { x: 0, y: 0, z: 0 }, device_heading: { x: 0, y: 0, z: 0, w: 1 }, points: [{ x: 1, y: 2, z: 3 }], '\u001b[2J\u009b31mevil': 1 };
    await writeFile(join(frames, 'a.json'), JSON.stringify(frame));
    const run = await cli('pack', frames, '--out', join(dir, 'never.sfs'));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('\\u001b[2J\\u009b31mevil');
    expect(run.stderr).not.toMatch(RAW_CONTROL);
  });

  it('a selector and an unknown option are echoed escaped', async () => {
    const wrongBucket = await cli('status', 's3://sc\u001b[2Jx/k.sfs', '--local', info);
    expect(wrongBucket).toMatchObject({ code: 2, stderr: expect.stringContaining('s3://sc\\u001b[2Jx is not the scenes bucket') });
    const option = await cli('list', '--\u001b[31mevil', '--local', info);
    expect(option.code).toBe(2);
    for (const run of [wrongBucket, option]) expect(run.stderr).not.toMatch(RAW_CONTROL);
  });
});

describe('pack --force', () => {
  it('never replaces what is not a regular file (a FIFO here; /dev/null as root would be the same)', async () => {
    const fifo = join(dir, 'fifo.sfs');
    execFileSync('mkfifo', [fifo]);
    const run = await cli('pack', 'test/fixtures/frames', '--out', fifo, '--force');
    expect(run).toMatchObject({ code: 2, stderr: expect.stringContaining('is not a regular file') });
    expect((await lstat(fifo)).isFIFO()).toBe(true);
  });
});

describe('upload keys', () => {
  it.each(['../', './', 'a/../b/', 'a/./b/', '//', 'a//b/'])('refuses --prefix %s (exit 2): URLs resolve such segments away', async (prefix) => {
    await writeFile(join(dir, 'one.sfs'), scene);
    const run = await cli('upload', join(dir, 'one.sfs'), '--prefix', prefix, '--local', info);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^sfs-pipeline: --prefix ".*": it (has a '\.' or '\.\.' segment|has an empty segment|starts with '\/')/);
  });

  it('keeps a prefix whose last part joins the file name, and folder names with dots', async () => {
    const file = join(dir, 'two.sfs');
    await writeFile(file, scene);
    for (const [prefix, key] of [['run-', 'run-two.sfs'], ['a/..b/', 'a/..b/two.sfs'], ['v1.2/x./', 'v1.2/x./two.sfs'], ['a/..', 'a/..two.sfs']]) {
      expect((await planUpload([file], { prefix: prefix!, manifestSuffix: '.frames.json' }, () => undefined)).map((o) => o.key)).toEqual([key]);
    }
  });
});

describe('upload of a directory and links', () => {
  const capture = () => join(dir, 'capture');
  beforeAll(async () => {
    await mkdir(join(capture(), 'sub'), { recursive: true });
    await writeFile(join(outside, 'secret.bin'), 'not for S3');
    await writeFile(join(outside, 'elsewhere.sfs'), scene);
    await writeFile(join(capture(), 'a.sfs'), scene);
    await symlink(join(outside, 'elsewhere.sfs'), join(capture(), 'linked-out.sfs'));
    await symlink(join(capture(), 'a.sfs'), join(capture(), 'sub', 'linked-in.sfs'));
  });

  it('skips, with a note, links that lead out of the folder; keeps links within it', async () => {
    const notes: string[] = [];
    const planned = await planUpload([capture()], { prefix: 'c/', manifestSuffix: '.frames.json' }, (line) => notes.push(line));
    expect(planned.map((o) => [o.key, o.kind])).toEqual([
      ['c/a.sfs', 'scene'],
      ['c/sub/linked-in.sfs', 'scene'],
    ]);
    expect(notes).toEqual([`skipped 1 link(s) leading out of the folder uploaded (only files inside it go up): ${join(capture(), 'linked-out.sfs')} → ${join(outside, 'elsewhere.sfs')}`]);
  });

  it('refuses (exit 2, nothing uploaded) a link out of the folder that a manifest names as a frame', async () => {
    const folder = join(dir, 'framed');
    await mkdir(folder);
    await symlink(join(outside, 'secret.bin'), join(folder, 'f1.bin'));
    await writeFile(join(folder, 'm.frames.json'), JSON.stringify({ frames: ['f1.bin'] }));
    const run = await cli('upload', folder, '--local', info);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${join(folder, 'f1.bin')}: a manifest names it as a frame, but it is a link to ${join(outside, 'secret.bin')}, outside the folder uploaded`);
  });

  it('takes a link named on the command line as the file it names', async () => {
    const planned = await planUpload([join(capture(), 'linked-out.sfs')], { prefix: '', manifestSuffix: '.frames.json' }, () => undefined);
    expect(planned.map((o) => o.key)).toEqual(['linked-out.sfs']);
  });
});

describe('printed commands', () => {
  it('quote every argument so that a POSIX shell reads back exactly what was given', () => {
    const args = ['sfs-pipeline', 'export', '--out', '/tmp/my dir/labels;rm -rf x.jsonl', "it's", '$(id)', '`id`', 'a\\b', '*', '~', '', 'plain/path-1.jsonl'];
    const printed = shellCommand(args);
    expect(printed).toContain("'/tmp/my dir/labels;rm -rf x.jsonl'");
    expect(printed.startsWith('sfs-pipeline export --out ')).toBe(true);
    const heard = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${printed}`]).toString('utf8').split('\0').slice(0, -1);
    expect(heard).toEqual(args);
  });
});
