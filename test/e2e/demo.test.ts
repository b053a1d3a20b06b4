import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('npm start', () => {
  it('runs every sample scene, .sfs and frames, to completed, exits 0 quietly and leaves no temporary folder', async () => {
    // execFile rejects unless npm start exits 0.
    const { stdout, stderr } = await promisify(execFile)('npm', ['start'], { cwd: root, timeout: 90_000 });
    for (const key of ['demo/drive 2026-11-28/scene 01.sfs', 'demo/köln/nacht+regen 100%.sfs', 'demo/highway/long drive.sfs', 'demo/frames/drive 3 frames.frames.json']) {
      expect(stdout).toMatch(new RegExp(`${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: pending → completed`));
    }
    expect(stdout).toContain('All 4 scenes completed');
    // Each scene's task events, as downstream jobs get them from the bus.
    expect(stdout.match(/events: submitting → pending → completed/g)).toHaveLength(4);
    // Each completed task's result file, brought home into the results bucket.
    expect(stdout.match(/result file: s3:\/\/results\/results\/sfs-[0-9a-f]{40}\/[0-9a-f]{16}\/00-annotations\.json \(\d+ bytes, sha256 [0-9a-f]{12}…\)/g)).toHaveLength(4);
    // No SDK or Node warnings (e.g. a PutObject body of unknown length, a Node version notice).
    expect(stderr).not.toMatch(/warn|unknown length/i);
    // The work folder (bundles, scenes, emulator data, logs) is named by the logs' path, and gone at exit.
    const workDir = dirname(/function logs: (\S+)/.exec(stdout)![1]!);
    expect(dirname(workDir)).toBe(tmpdir());
    expect(existsSync(workDir)).toBe(false);
  }, 120_000);
});
