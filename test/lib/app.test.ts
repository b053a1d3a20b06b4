import { App } from 'aws-cdk-lib';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lambdas/core/shared/config.js';
import { jsonErrorAt, mergePatch, parseContextJson, readPipelineConfig } from '../../lib/config.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cdk-app-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cdkJson = JSON.parse(readFileSync(join(root, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
const tsx = import.meta.resolve('tsx');

const MISSING_PROJECT =
  'routing.project is missing: the Scale project new tasks go to. Set it in cdk.json ("context" → "pipeline" → "routing" → "project") ' +
  `or pass -c pipeline='{"routing":{"project":"<your Scale project>"}}'`;

/** bin/app.ts as the cdk CLI runs it: the context (cdk.json's, with -c values over it) as JSON in CDK_CONTEXT_JSON. */
function runApp(context: Record<string, unknown>) {
  return spawnSync(process.execPath, ['--import', tsx, join(root, 'bin/app.ts')], {
    cwd: root,
    env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify(context), CDK_OUTDIR: join(dir, 'out') },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** The real cdk CLI in a folder of its own, whose cdk.json runs this app. */
function runCdk(pipeline: unknown, args: string[]) {
  const cwd = mkdtempSync(join(dir, 'cli-'));
  const app = `${JSON.stringify(process.execPath)} --import ${tsx} ${JSON.stringify(join(root, 'bin/app.ts'))}`;
  writeFileSync(join(cwd, 'cdk.json'), JSON.stringify({ app, context: { ...cdkJson.context, pipeline } }));
  return spawnSync(process.execPath, [join(root, 'node_modules/aws-cdk/bin/cdk'), 'synth', '--no-notices', '-o', join(cwd, 'out'), ...args], {
    cwd,
    env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at /m);

describe('cdk synth with a bad configuration', () => {
  it('stops on the cdk.json that ships (no Scale project) with one line naming the key and the fix', () => {
    const run = runApp({ ...cdkJson.context, 'aws:cdk:bundling-stacks': [] });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`${MISSING_PROJECT}\n`);
    expect(run.stdout).toBe('');
  }, 60_000);

  it('stops with one readable message naming every bad key, and the fix, and no stack trace', () => {
    const pipeline = { routing: { project: 'p', frameManifestSuffix: '.frames.sfs', routes: [{ prefix: '/highway/' }] }, maxConcurrency: 1 };
    const run = runApp({ ...cdkJson.context, pipeline: JSON.stringify(pipeline) });
    expect(run.status).toBe(1);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('invalid CDK context "pipeline":');
    expect(lines).toContain('  - routing.frameManifestSuffix: ".frames.sfs" overlaps the scene suffix ".sfs": S3 refuses overlapping notification filters; pick one that does not end with it, such as .frames.json');
    expect(run.stderr).toContain("  - routing.routes[0].prefix: must not start with '/'");
    expect(run.stderr).toContain('  - maxConcurrency: must be at least 2');
    expect(lines.at(-1)).toBe(`Fix it in cdk.json ("context" → "pipeline") or pass -c pipeline='{…}' (merged onto cdk.json's).`);
    noStackTrace(run.stderr);
  }, 60_000);

  it('says where a malformed -c pipeline value goes wrong: line, column and the text there', () => {
    const run = runApp({ ...cdkJson.context, pipeline: '{"routing":{"project":"p"},}' });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      [
        `-c pipeline=… is not valid JSON: expected a double-quoted property name at line 1, column 28 (character 28), found "}":`,
        '  {"routing":{"project":"p"},}',
        '                             ^',
        `Quote the whole value for the shell, e.g. -c pipeline='{"routing":{"project":"my-project"}}'.`,
        '',
      ].join('\n'),
    );
  }, 60_000);
});

describe('cdk synth with a hostile -c pipeline value', () => {
  // 10,000 levels (the context travels in an environment variable, which holds at most 128 KiB).
  it('refuses 10,000 levels of nesting with one readable message, no stack trace', () => {
    const deep = `{"routing":{"project":"p"},"x":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`;
    const run = runApp({ ...cdkJson.context, pipeline: deep });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^invalid CDK context "pipeline": -c pipeline=… nests objects and arrays more than 64 levels deep \(at x\.a\.a\./);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    noStackTrace(run.stderr);
  }, 60_000);
});

describe('-c pipeline through the cdk CLI: merged onto cdk.json', () => {
  it('keeps what cdk.json sets inside an object the -c value also sets (routing.project here)', () => {
    // A route prefix without '/' is only wrong with frameScope "route": the -c value alone has no project.
    const run = runCdk({ routing: { project: 'p', presignExpiresSeconds: 3600 } }, ['-c', 'pipeline={"routing":{"frameScope":"route","routes":[{"prefix":"team-a"}]}}']);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(`invalid CDK context "pipeline": routing.routes[0].prefix: must end with '/' when frameScope is "route"`);
    expect(run.stderr).not.toContain('routing.project');
    noStackTrace(run.stderr);
  }, 60_000);

  it('removes a key cdk.json sets when the -c value gives it as null, keeping the others', () => {
    // cdk.json's maxConcurrency is wrong on purpose: its problem still being named shows the rest was kept.
    const run = runCdk({ routing: { project: 'p' }, maxConcurrency: 1 }, ['-c', 'pipeline={"routing":{"project":null}}']);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(`invalid CDK context "pipeline":\n  - ${MISSING_PROJECT}\n  - maxConcurrency: must be at least 2`);
    noStackTrace(run.stderr);
  }, 60_000);
});

describe('readPipelineConfig', () => {
  const cdkJsonPipeline = { routing: { project: 'from-cdk-json', presignExpiresSeconds: 3600, routes: [{ prefix: 'highway/', project: 'hw' }] }, maxReceiveCount: 3, cancelOnDelete: false };
  const read = (given: unknown) => readPipelineConfig(new App({ context: { pipeline: given } }), cdkJsonPipeline);

  it('merges a -c value (a string) onto cdk.json: objects key by key, arrays replaced, null back to the default', () => {
    const config = read('{"routing":{"batch":"b1","routes":[{"prefix":"city/","priority":30}]},"maxConcurrency":7,"cancelOnDelete":null}');
    expect(config.routing).toMatchObject({ project: 'from-cdk-json', batch: 'b1', presignExpiresSeconds: 3600, routes: [{ prefix: 'city/', priority: 30 }] });
    expect(config).toMatchObject({ maxConcurrency: 7, maxReceiveCount: 3, cancelOnDelete: true });
  });

  it("takes cdk.json's object as it is when no -c value replaced it", () => {
    expect(read(cdkJsonPipeline)).toMatchObject({ routing: { project: 'from-cdk-json', presignExpiresSeconds: 3600 }, maxReceiveCount: 3, cancelOnDelete: false });
  });

  it('names a missing project alone in one line, or among the other problems', () => {
    const app = (given: unknown) => new App({ context: { pipeline: given } });
    expect(() => readPipelineConfig(app(undefined))).toThrow(new ConfigError(MISSING_PROJECT));
    expect(() => readPipelineConfig(app('{"maxReceiveCount":3}'), { routing: { routes: [] } })).toThrow(new ConfigError(MISSING_PROJECT));
    expect(() => readPipelineConfig(app({ maxConcurrency: 1 }))).toThrow(/^invalid CDK context "pipeline":\n {2}- routing\.project is missing: .*\n {2}- maxConcurrency: must be at least 2/);
  });
});

describe('readPipelineConfig with hostile values', () => {
  const read = (given: unknown, cdkJsonPipeline?: unknown) => () => readPipelineConfig(new App({ context: { pipeline: given } }), cdkJsonPipeline);
  const depth = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

  it('refuses nesting past 64 levels, valid JSON or not, without recursing into it', () => {
    expect(read(`{"routing":{"project":"p","tags":${depth(20_000)}}}`)).toThrow(/nests objects and arrays more than 64 levels deep \(at routing\.tags\[0\]\[0\]/);
    expect(read(`{"routing":{"project":"p","tags":${'['.repeat(20_000)}}}`)).toThrow(/is not valid JSON: expected at most 64 levels of nested objects and arrays at line 1, column 96 /);
    expect(read({ routing: { project: 'p' } }, { routing: { project: 'p' }, x: JSON.parse(depth(100)) })).toThrow(/cdk\.json's "pipeline" nests objects and arrays more than 64 levels deep/);
    // 64 levels are read as usual: the schema has its say (here, an unknown key).
    expect(read(`{"routing":{"project":"p"},"x":${depth(63)}}`)).toThrow(/unknown key\(s\) x/);
  });

  it('refuses __proto__, constructor and prototype keys, naming them: they never reach the settings', () => {
    expect(read('{"routing":{"project":"p","__proto__":{"batch":"sneaky"}}}')).toThrow(
      new ConfigError(
        `invalid CDK context "pipeline": -c pipeline=… has the key "routing.__proto__": __proto__, constructor and prototype are never settings (they would reach JavaScript's object prototype); remove them. Fix it in cdk.json ("context" → "pipeline") or pass -c pipeline='{…}' (merged onto cdk.json's).`,
      ),
    );
    expect(read('{"routing":{"project":"p"},"constructor":{"prototype":{"polluted":1}}}')).toThrow(/has the keys "constructor", "constructor\.prototype": /);
    expect(read({ routing: { project: 'p' } }, JSON.parse('{"__proto__":{"routing":{"project":"evil"}}}'))).toThrow(/cdk\.json's "pipeline" has the key "__proto__"/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('escapes control characters of unknown keys in its message', () => {
    expect(read('{"routing":{"project":"p"},"bad\\u001b[2Jkey":1}')).toThrow('unknown key(s) bad\\u001b[2Jkey.');
  });
});

describe('mergePatch', () => {
  it('keeps a "__proto__" key a key: it never sets the prototype of the result', () => {
    const merged = mergePatch({ a: 1 }, JSON.parse('{"__proto__":{"batch":"sneaky"}}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect(merged.batch).toBeUndefined();
    expect(Object.keys(merged)).toEqual(['a', '__proto__']);
  });

  // The examples of RFC 7396, Appendix A.
  it.each([
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])('%j patched with %j is %j', (target, patch, expected) => {
    expect(mergePatch(target, patch)).toEqual(expected);
  });
});

describe('where a -c value stops being JSON', () => {
  it('points at the line and column of a mistake on a later line', () => {
    expect(() => parseContextJson('{\n  "routing": {"project": "p"}\n  "maxConcurrency": 3\n}')).toThrow(
      `expected ',' or '}' after a property value at line 3, column 3 (character 35), found "\\"":\n    "maxConcurrency": 3\n    ^`,
    );
  });

  it('shows a window of a long value, marked where it is cut', () => {
    const text = `{"routing":{"project":"p","instruction":"${'x'.repeat(80)}",}}`;
    expect(() => parseContextJson(text)).toThrow(`at line 1, column 124 (character 124), found "}":\n  …${'x'.repeat(38)}",}}\n${' '.repeat(2 + 1 + 40)}^`);
  });

  it('agrees with JSON.parse on what is JSON, and on the position wherever its message gives one', () => {
    let seed = 7;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const docs = ['{"routing":{"project":"p","routes":[{"prefix":"a/","tags":["x"]}]},"n":-1.5e+3,"z":null,"s":"a\\"\\u00e9\\n"}', '[1, 2.0, -0, true, false, {"a": []}]', ' "str" '];
    const chars = '{}[]":,0123456789-+.eEtrufalsn \\/u\n\t';
    let positioned = 0;
    for (let n = 0; n < 3_000; n++) {
      let text = docs[n % docs.length]!;
      for (let edits = 1 + (n % 3); edits > 0; edits--) {
        const at = Math.floor(random() * (text.length + 1));
        const char = chars[Math.floor(random() * chars.length)]!;
        text = [text.slice(0, at) + text.slice(at + 1), text.slice(0, at) + char + text.slice(at), text.slice(0, at) + char + text.slice(at + 1)][n % 3]!;
      }
      let message: string | undefined;
      try {
        JSON.parse(text);
      } catch (err) {
        message = (err as Error).message;
      }
      const found = jsonErrorAt(text);
      expect(found === undefined, text).toBe(message === undefined);
      const position = /at position (\d+)/.exec(message ?? '')?.[1];
      if (position !== undefined) {
        expect(found?.offset, text).toBe(Number(position));
        positioned++;
      }
    }
    expect(positioned).toBeGreaterThan(500);
  });
});
