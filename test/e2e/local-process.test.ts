import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { LocalInfo } from '../../local/pipeline.js';
import { eventually } from '../helpers/http.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'local-process-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const listening = (url: string) =>
  new Promise<boolean>((resolve) => {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname, () => (socket.destroy(), resolve(true)));
    socket.on('error', () => resolve(false));
  });

describe('npm run local', () => {
  it('prints one JSON line when ready, writes it to --info-file, and stops every server on SIGTERM', async () => {
    const infoFile = join(dir, 'info.json');
    const child = spawn(process.execPath, ['--import', 'tsx', 'bin/local.ts', '--info-file', infoFile, '--work-dir', join(dir, 'work')], {
      cwd: root,
      env: { ...process.env, LOCAL_LOG_LEVEL: 'ERROR' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

    await eventually(() => (stdout.includes('\n') ? true : undefined), 60_000, 'the ready line');
    const info = JSON.parse(stdout) as LocalInfo;
    expect(JSON.parse(await readFile(infoFile, 'utf8'))).toEqual(info);
    for (const key of ['region', 'accessKeyId', 'secretAccessKey', 's3Endpoint', 'bucket', 'dynamodbEndpoint', 'tasksTable', 'callbackUrl', 'scaleApiUrl', 'scaleApiKey', 'deadLetterFile']) {
      expect(info, key).toHaveProperty(key);
    }
    const endpoints = [info.s3Endpoint, info.dynamodbEndpoint, info.callbackUrl, info.scaleApiUrl, info.secretsManagerEndpoint];
    for (const url of endpoints) {
      expect(new URL(url).hostname).toBe('127.0.0.1');
      expect(await listening(url), url).toBe(true);
    }

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    for (const url of endpoints) expect(await listening(url), url).toBe(false);
  }, 90_000);
});
