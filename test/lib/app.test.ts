import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const outdir = mkdtempSync(join(tmpdir(), 'cdk-out-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe('cdk synth with a bad configuration', () => {
  it('stops with one readable message naming every bad key, and no stack trace', () => {
    // What `cdk synth -c pipeline='…'` hands the app: the context as JSON in CDK_CONTEXT_JSON.
    const pipeline = { routing: { project: 'p', frameManifestSuffix: '.frames.sfs', routes: [{ prefix: '/highway/' }] }, maxConcurrency: 1 };
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
      cwd: root,
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ pipeline }), CDK_OUTDIR: outdir },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('invalid CDK context "pipeline":');
    expect(run.stderr).toContain('routing.frameManifestSuffix: ".frames.sfs" overlaps the scene suffix ".sfs"');
    expect(run.stderr).toContain("routing.routes[0].prefix: must not start with '/'");
    expect(run.stderr).toContain('maxConcurrency: must be at least 2');
    expect(run.stderr).not.toMatch(/^\s+at /m);
  }, 60_000);
});
