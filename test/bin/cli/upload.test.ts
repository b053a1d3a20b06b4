import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../bin/sfs-pipeline.js';
import { recordOfUpload, parseDuration } from '../../../bin/cli/follow.js';
import { sceneUniqueId } from '../../../lambdas/core/scenes/scene-identity.js';
import { encodeSfsToBuffer } from '../../../lambdas/core/scenes/sfs/writer.js';
import type { TaskRecord } from '../../../lambdas/core/tasks/task-record.js';
import { startLocalPipeline, type LocalPipeline } from '../../../local/pipeline.js';
import { buildSampleFrame, buildSampleScene } from '../../../local/sample-scenes.js';
import { cli, jsonLines } from '../../helpers/cli.js';
import { clientsFor } from '../../helpers/local-pipeline.js';

/**
 * The local S3 behind a recording proxy: the test sees every request the CLI makes, in the order it made them
 * (the Host header passes unchanged, so S3's signature check holds).
 */
async function startRecordingProxy(upstream: string) {
  const target = new URL(upstream);
  const log: string[] = [];
  /** Paths answered as a bucket policy that denies them would be (403 AccessDenied, which the SDK does not retry). */
  const denied = new Set<string>();
  const server = createServer((req, res) => {
    const path = decodeURIComponent(req.url!.split('?')[0]!);
    const what = `${req.method} ${path}${req.url!.includes('uploadId=') ? ' (part)' : ''}`;
    log.push(`start ${what}`);
    if (denied.has(path)) {
      req.resume().on('end', () => res.writeHead(403, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'));
      return;
    }
    const forward = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res).on('finish', () => log.push(`end ${what}`));
    });
    forward.on('error', (err) => res.destroy(err));
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    denied,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

const scene = (seed: number) => encodeSfsToBuffer(buildSampleScene({ seed }));
let workDir: string;
let pipeline: LocalPipeline;
let c: ReturnType<typeof clientsFor>;
let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
let info: string;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'cli-upload-'));
  pipeline = await startLocalPipeline({ workDir, logs: { write: () => true } as never, visibilityTimeoutMs: 500, simulator: { completionDelayMs: 50 } });
  c = clientsFor(pipeline);
  proxy = await startRecordingProxy(pipeline.info.s3Endpoint);
  info = join(workDir, 'proxied-info.json');
  await writeFile(info, JSON.stringify({ ...pipeline.info, s3Endpoint: proxy.url }));
}, 60_000);
afterAll(async () => {
  await proxy?.close();
  await pipeline?.close();
  await rm(workDir, { recursive: true, force: true });
});

/** Writes files (path relative to a fresh folder → content) and returns the folder. */
async function files(entries: Record<string, string | Uint8Array>): Promise<string> {
  const dir = await mkdtemp(join(workDir, 'files-'));
  for (const [path, body] of Object.entries(entries)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), body);
  }
  return dir;
}
/** The Scale task the simulator holds for a key (from the source the pipeline put in its metadata). */
const scaleTaskFor = (key: string) => pipeline.scale.state().tasks.find((t) => (t.task.metadata as { source?: { key?: string } }).source?.key === key);
const versionsUnder = async (prefix: string) =>
  (await c.s3.send(new ListObjectVersionsCommand({ Bucket: pipeline.info.bucket, Prefix: prefix }))).Versions ?? [];
type Line = Record<string, unknown>;

describe('sfs-pipeline upload', () => {
  it('uploads two scenes and, with --wait, names each with its completed task, exit 0', async () => {
    const dir = await files({ 'a.sfs': scene(1), 'b.sfs': scene(2) });
    const run = await cli('upload', join(dir, 'a.sfs'), join(dir, 'b.sfs'), '--local', info, '--prefix', 'two/', '--wait');
    expect(run.code, run.stderr).toBe(0);
    for (const key of ['two/a.sfs', 'two/b.sfs']) {
      const taskId = scaleTaskFor(key)?.task.task_id;
      expect(taskId, key).toBeTruthy();
      // Nothing to explain for a completed scene: its DETAIL is empty ('-').
      expect(run.stdout).toMatch(new RegExp(`^${escapeRegExp(key)}\\s+completed\\s+${taskId}\\s+-$`, 'm'));
    }
    expect(run.stdout.split('\n')[0]).toMatch(/^KEY\s+STATUS\s+TASK\s+DETAIL$/);
  }, 30_000);

  it('--json: one line per object, with the version S3 stored and the task that completed', async () => {
    const body = scene(3);
    const dir = await files({ 'shape.sfs': body });
    const run = await cli('upload', join(dir, 'shape.sfs'), '--local', info, '--prefix', 'json/', '--wait', '--json');
    expect(run.code, run.stderr).toBe(0);
    const [version] = await versionsUnder('json/shape.sfs');
    const task = scaleTaskFor('json/shape.sfs')!;
    expect(jsonLines(run.stdout)).toEqual([
      {
        kind: 'scene',
        file: join(dir, 'shape.sfs'),
        bucket: 'scenes',
        key: 'json/shape.sfs',
        size: body.length,
        versionId: version!.VersionId,
        eTag: createHash('md5').update(body).digest('hex'),
        multipart: false,
        uniqueId: task.unique_id,
        status: 'completed',
        taskId: task.task.task_id,
        timedOut: false,
      },
    ]);
  }, 30_000);

  it('uploads a scene over 5 MiB in parts (CompleteMultipartUpload), and it completes', async () => {
    const body = encodeSfsToBuffer(buildSampleScene({ lidarFrames: 11, pointsPerFrame: 1_000, cameraFrames: 11, cameraImageBytes: 1_000_000, seed: 4 }));
    expect(body.length).toBeGreaterThan(10 * 1024 * 1024);
    const dir = await files({ 'large.sfs': body });
    const run = await cli('upload', join(dir, 'large.sfs'), '--local', info, '--prefix', 'large/', '--wait', '--json');
    expect(run.code, run.stderr).toBe(0);
    const [line] = jsonLines<Line>(run.stdout);
    // 5 MiB parts: 5 + 5 + the rest; S3's multipart ETag ends with the number of parts.
    expect(line).toMatchObject({ key: 'large/large.sfs', multipart: true, status: 'completed', size: body.length });
    expect(line!.eTag).toMatch(/^[0-9a-f]{32}-3$/);
    expect(pipeline.notified.filter((n) => n.key === 'large/large.sfs').map((n) => n.eventName)).toEqual(['ObjectCreated:CompleteMultipartUpload']);
    expect(proxy.log.filter((entry) => entry.startsWith('start PUT /scenes/large/large.sfs (part)'))).toHaveLength(3);
  }, 60_000);

  it('refuses, before uploading anything, a wrong-case suffix, a file the pipeline ignores, an empty file, a key S3 cannot hold', async () => {
    const longName = `${'n'.repeat(200)}.sfs`;
    const dir = await files({ 'good.sfs': scene(5), 'BAD.SFS': scene(6), 'notes.txt': 'hello', 'empty.sfs': '', [longName]: scene(7) });
    const requestsBefore = proxy.log.length;
    const run = await cli('upload', ...['good.sfs', 'BAD.SFS', 'notes.txt', 'empty.sfs', longName].map((f) => join(dir, f)), '--local', info, '--prefix', `refused/${'p'.repeat(850)}/`);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('nothing was uploaded');
    expect(run.stderr).toContain(`${join(dir, 'BAD.SFS')}: its suffix is ".SFS", not ".sfs"; S3's notification filters are case-sensitive, so the bucket would keep the file and nothing would process it. Rename it to ${join(dir, 'BAD.sfs')}`);
    expect(run.stderr).toContain(`${join(dir, 'notes.txt')}: neither a scene (.sfs) nor a frame manifest (.frames.json)`);
    expect(run.stderr).toContain(`${join(dir, 'empty.sfs')}: the file is empty`);
    expect(run.stderr).toContain(`${join(dir, longName)}: its key is 1063 bytes of UTF-8; S3 keys hold at most 1024`);
    expect(run.stderr).not.toContain('good.sfs:');
    expect(proxy.log.length).toBe(requestsBefore);
    expect(await versionsUnder('refused/')).toEqual([]);

    // The same for a directory: a wrong-case file in it is not silently skipped.
    const folder = await files({ 'ok.sfs': scene(8), 'sub/Upper.Sfs': scene(9) });
    const fromFolder = await cli('upload', folder, '--local', info, '--prefix', 'refused/');
    expect(fromFolder.code).toBe(2);
    expect(fromFolder.stderr).toContain(`Rename it to ${join(folder, 'sub', 'Upper.sfs')}`);
    expect(proxy.log.length).toBe(requestsBefore);
  });

  it('with --wait, shows a rejected scene with its reason and exits 1', async () => {
    const dir = await files({ 'broken.sfs': 'this is not an SFS file at all' });
    const run = await cli('upload', join(dir, 'broken.sfs'), '--local', info, '--prefix', 'invalid/', '--wait');
    expect(run.code, run.stderr).toBe(1);
    const [version] = await versionsUnder('invalid/broken.sfs');
    const record = await c.reader.get(sceneUniqueId({ bucket: 'scenes', key: 'invalid/broken.sfs', versionId: version!.VersionId }));
    expect(record).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/\w/) });
    expect(run.stdout).toMatch(new RegExp(`^invalid/broken\\.sfs\\s+rejected\\s+-\\s+${escapeRegExp(record!.reason!)}$`, 'm'));
    expect(scaleTaskFor('invalid/broken.sfs')).toBeUndefined();
  }, 30_000);

  it('uploads a folder with a frame manifest: every frame before the manifest, and the scene completes', async () => {
    const frames = [0, 1, 2].map((i) => JSON.stringify(buildSampleFrame(i, 200)));
    const dir = await files({
      'drive/lidar/0.json': frames[0]!,
      'drive/lidar/1.json': frames[1]!,
      'drive/lidar/2.json': frames[2]!,
      'drive/drive.frames.json': JSON.stringify({ frames: ['lidar/0.json', 'lidar/1.json', 'lidar/2.json'] }),
      'drive/notes.txt': 'not part of the scene',
    });
    const run = await cli('upload', dir, '--local', info, '--prefix', 'folder/', '--wait', '--json');
    expect(run.code, run.stderr).toBe(0);
    const lines = jsonLines<Line>(run.stdout);
    expect(lines.map((l) => [l.kind, l.key])).toEqual([
      ['frame', 'folder/drive/lidar/0.json'],
      ['frame', 'folder/drive/lidar/1.json'],
      ['frame', 'folder/drive/lidar/2.json'],
      ['manifest', 'folder/drive/drive.frames.json'],
    ]);
    expect(lines[3]).toMatchObject({ status: 'completed', taskId: scaleTaskFor('folder/drive/drive.frames.json')!.task.task_id });
    expect(run.stderr).toContain(`skipped 1 file(s) that are neither scenes (.sfs), frame manifests (.frames.json) nor frames a manifest names: ${join(dir, 'drive', 'notes.txt')}`);
    // S3 answered every frame before the manifest's upload began.
    const started = proxy.log.indexOf('start PUT /scenes/folder/drive/drive.frames.json');
    expect(started).toBeGreaterThan(-1);
    for (const i of [0, 1, 2]) {
      const ended = proxy.log.indexOf(`end PUT /scenes/folder/drive/lidar/${i}.json`);
      expect(ended, `frame ${i}`).toBeGreaterThan(-1);
      expect(ended, `frame ${i}`).toBeLessThan(started);
    }
    const record = await c.reader.get(lines[3]!.uniqueId as string);
    expect(record).toMatchObject({ sceneFormat: 'split_base64', frameCount: 3 });
    expect(await versionsUnder('folder/drive/notes.txt')).toEqual([]);
  }, 30_000);

  it('stops at a failed upload, says what was uploaded, and never uploads a manifest whose frame failed', async () => {
    const dir = await files({
      'drive/lidar/0.json': JSON.stringify(buildSampleFrame(0, 50)),
      'drive/lidar/1.json': JSON.stringify(buildSampleFrame(1, 50)),
      'drive/drive.frames.json': JSON.stringify({ frames: ['lidar/0.json', 'lidar/1.json'] }),
    });
    proxy.denied.add('/scenes/denied/drive/lidar/1.json');
    const run = await cli('upload', dir, '--local', info, '--prefix', 'denied/', '--wait');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`could not upload ${join(dir, 'drive', 'lidar', '1.json')} to s3://scenes/denied/drive/lidar/1.json: Access Denied.`);
    expect(run.stderr).toMatch(/[01] of 3 files were uploaded before it stopped/);
    expect((await versionsUnder('denied/')).map((v) => v.Key).filter((key) => key !== 'denied/drive/lidar/0.json')).toEqual([]);
    expect(pipeline.notified.filter((n) => n.key.startsWith('denied/'))).toEqual([]);
  });

  it('without --wait: a table of what S3 stored; on a terminal a progress bar on stderr', async () => {
    const dir = await files({ 'tty.sfs': scene(10) });
    let stdout = '';
    let stderr = '';
    const code = await runCli(['upload', join(dir, 'tty.sfs'), '--local', info, '--prefix', 'tty/'], {
      out: { write: (text: string) => (stdout += text) },
      err: { write: (text: string) => (stderr += text) },
      isTTY: true,
    });
    expect(code, stderr).toBe(0);
    const [version] = await versionsUnder('tty/tty.sfs');
    expect(stdout).toMatch(new RegExp(`^tty/tty\\.sfs\\s+scene\\s+\\d+\\s+${escapeRegExp(version!.VersionId!)}\\s+sfs-[0-9a-f]{40}$`, 'm'));
    expect(stderr).toContain('uploading [');
    expect(stderr).toMatch(/100% \| 1\/1 files/);
    // Not on a terminal: no bar.
    const plain = await cli('upload', join(dir, 'tty.sfs'), '--local', info, '--prefix', 'tty/');
    expect(plain.code).toBe(0);
    expect(plain.stderr).not.toContain('uploading [');
  });

  it('exits 1 when a scene is not final by --timeout, saying so', async () => {
    const dir = await files({ 'slow.sfs': scene(11) });
    const run = await cli('upload', join(dir, 'slow.sfs'), '--local', info, '--prefix', 'timeout/', '--wait', '--timeout', '1ms', '--json');
    expect(run.code).toBe(1);
    const [line] = jsonLines<Line>(run.stdout);
    expect(line).toMatchObject({ key: 'timeout/slow.sfs', timedOut: true });
    expect(line!.detail).toMatch(/^(no record|still \w+) after 1ms/);
  });

  it('refuses a bad --timeout and a --manifest-suffix the pipeline could not have', async () => {
    const dir = await files({ 'x.sfs': scene(12) });
    const timeout = await cli('upload', join(dir, 'x.sfs'), '--local', info, '--wait', '--timeout', 'soon');
    expect(timeout).toMatchObject({ code: 2, stderr: expect.stringContaining('--timeout soon is not a duration') });
    const suffix = await cli('upload', join(dir, 'x.sfs'), '--local', info, '--manifest-suffix', '.x.sfs');
    expect(suffix.code).toBe(2);
    expect(suffix.stderr).toContain('overlaps the scene suffix');
  });
});

describe('which record is the upload', () => {
  const record = (fields: Partial<TaskRecord>): TaskRecord =>
    ({ schemaVersion: 1, uniqueId: 'sfs-x', status: 'pending', bucket: 'scenes', key: 'k.sfs', sceneFormat: 'sensor_fusion', createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', ...fields }) as TaskRecord;

  it('is the record with the versionId S3 answered, not a newer or older version of the key', () => {
    const records = [record({ uniqueId: 'newer', versionId: 'v3', eTag: 'e' }), record({ uniqueId: 'mine', versionId: 'v2', eTag: 'e' }), record({ uniqueId: 'older', versionId: 'v1', eTag: 'e' })];
    expect(recordOfUpload(records, { bucket: 'scenes', key: 'k.sfs', versionId: 'v2', eTag: 'e', startedAt: '2026-01-01T00:00:00.000Z' })?.uniqueId).toBe('mine');
    expect(recordOfUpload(records, { bucket: 'scenes', key: 'k.sfs', versionId: 'v9', eTag: 'e', startedAt: '2026-01-01T00:00:00.000Z' })).toBeUndefined();
    expect(recordOfUpload(records, { bucket: 'other', key: 'k.sfs', versionId: 'v2', eTag: 'e', startedAt: '2026-01-01T00:00:00.000Z' })).toBeUndefined();
  });

  it('without versions: the newest record with its ETag since the upload began, never an earlier upload of the same bytes', () => {
    const records = [
      record({ uniqueId: 'other-bytes', versionId: 'null', eTag: 'f', createdAt: '2026-01-01T12:00:03.000Z' }),
      record({ uniqueId: 'mine', versionId: 'null', eTag: 'e', createdAt: '2026-01-01T12:00:02.000Z' }),
      record({ uniqueId: 'yesterday', versionId: 'null', eTag: 'e', createdAt: '2025-12-31T12:00:00.000Z' }),
    ];
    const upload = { bucket: 'scenes', key: 'k.sfs', versionId: 'null', eTag: 'e', startedAt: '2026-01-01T12:00:01.000Z' };
    expect(recordOfUpload(records, upload)?.uniqueId).toBe('mine');
    expect(recordOfUpload(records.slice(2), upload)).toBeUndefined();
  });

  it('reads durations as --timeout takes them', () => {
    expect([parseDuration('30m'), parseDuration('90s'), parseDuration('2h'), parseDuration('500ms'), parseDuration('45')]).toEqual([1_800_000, 90_000, 7_200_000, 500, 45_000]);
    expect([parseDuration('0s'), parseDuration('-1m'), parseDuration('1 week'), parseDuration('')]).toEqual([undefined, undefined, undefined, undefined]);
  });
});

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
