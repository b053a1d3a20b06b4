import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, requireEnv, RoutingSchema, SCENE_SUFFIX } from '../../../../lambdas/core/shared/config.js';
import { checkAgainst } from '../../../../lambdas/core/shared/validation.js';

const routingProblems = (fields: Record<string, unknown>) => {
  const checked = checkAgainst(RoutingSchema, { project: 'p', ...fields });
  return checked.ok ? [] : checked.problems;
};
const OVERLAP = 'S3 refuses overlapping notification filters; pick one that does not end with it, such as .frames.json';

describe('task settings, at the top and per route', () => {
  it('takes what Scale takes', () => {
    const settings = { batch: 'b', instruction: '', taskBlueprintId: 'bp', priority: 30, tags: ['1', '2', '3', '4', '5'] };
    expect(routingProblems({ ...settings, routes: [{ prefix: 'a/', project: 'q', ...settings, priority: 10 }, { prefix: 'b/', priority: 20 }] })).toEqual([]);
  });

  it('refuses what Scale would refuse, naming the key', () => {
    expect(routingProblems({ project: '', batch: '', taskBlueprintId: '', priority: 15, tags: ['1', '2', '3', '4', '5', '6'] })).toEqual([
      'project: must not be empty',
      'batch: must not be empty',
      'taskBlueprintId: must not be empty',
      'priority: must be 10, 20 or 30',
      'tags: must hold at most 5 tags',
    ]);
    expect(routingProblems({ routes: [{ prefix: 'a/', project: '', batch: '', taskBlueprintId: '', priority: 0, tags: ['1', '2', '3', '4', '5', '6'] }] })).toEqual([
      'routes[0].project: must not be empty',
      'routes[0].batch: must not be empty',
      'routes[0].taskBlueprintId: must not be empty',
      'routes[0].priority: must be 10, 20 or 30',
      'routes[0].tags: must hold at most 5 tags',
    ]);
  });

  it('requires a default project', () => {
    expect(checkAgainst(RoutingSchema, {})).toEqual({ ok: false, problems: ['project: is required: the Scale project new tasks go to'] });
  });
});

describe('routes', () => {
  it('refuses a prefix that is empty or could never match a key, and unknown keys', () => {
    expect(routingProblems({ routes: [{ prefix: '' }] })).toEqual(['routes[0].prefix: must not be empty']);
    expect(routingProblems({ routes: [{ prefix: '/a/' }] })).toEqual(["routes[0].prefix: must not start with '/': S3 keys have no leading slash, so this route would never match"]);
    expect(routingProblems({ routes: [{ prefix: 'a/', colour: 'red' }] })).toEqual(['routes[0]: unknown key(s) colour']);
  });

  it('allows one route per prefix, naming the one it repeats', () => {
    expect(routingProblems({ routes: [{ prefix: 'a/' }, { prefix: 'b/' }, { prefix: 'a/' }, { prefix: 'a/' }] })).toEqual([
      'routes[2].prefix: repeats routes[0].prefix "a/": each prefix may have one route',
      'routes[3].prefix: repeats routes[2].prefix "a/": each prefix may have one route',
    ]);
    expect(routingProblems({ routes: [{ prefix: 'a/' }, { prefix: 'a' }] })).toEqual([]);
  });

  it('needs folder prefixes only when frames may come from anywhere under the route', () => {
    expect(routingProblems({ routes: [{ prefix: 'team-a' }] })).toEqual([]);
    expect(routingProblems({ frameScope: 'folder', routes: [{ prefix: 'team-a' }] })).toEqual([]);
    expect(routingProblems({ frameScope: 'route', routes: [{ prefix: 'fleet/' }, { prefix: 'fleet/cars/' }] })).toEqual([]);
    expect(routingProblems({ frameScope: 'route', routes: [{ prefix: 'fleet/' }, { prefix: 'team-a' }] })).toEqual([
      'routes[1].prefix: must end with \'/\' when frameScope is "route" (the scope is a folder; "team-a" would also cover "team-ab/")',
    ]);
  });
});

describe('repeated tags', () => {
  it('names each repeated tag once, at the top and per route', () => {
    expect(routingProblems({ tags: ['a', 'b', 'a', 'b', 'a'] })).toEqual(['tags: repeats "a", "b"']);
    expect(routingProblems({ routes: [{ prefix: 'x/', tags: ['ok'] }, { prefix: 'y/', tags: ['n', 'n'] }] })).toEqual(['routes[1].tags: repeats "n"']);
    expect(routingProblems({ tags: ['a', 'b', 'c'], routes: [{ prefix: 'x/', tags: [] }] })).toEqual([]);
  });
});

describe('the frame manifest suffix', () => {
  it('may not overlap the scene suffix either way, since S3 would refuse both notifications', () => {
    expect(SCENE_SUFFIX).toBe('.sfs');
    expect(routingProblems({ frameManifestSuffix: '.sfs' })).toEqual([`frameManifestSuffix: ".sfs" overlaps the scene suffix ".sfs": ${OVERLAP}`]);
    expect(routingProblems({ frameManifestSuffix: '.frames.sfs' })).toEqual([`frameManifestSuffix: ".frames.sfs" overlaps the scene suffix ".sfs": ${OVERLAP}`]);
    // A suffix the scene suffix ends with: refused as a suffix, and named as an overlap too.
    expect(routingProblems({ frameManifestSuffix: 'sfs' })).toEqual([
      'frameManifestSuffix: must be a file suffix such as .frames.json',
      `frameManifestSuffix: "sfs" overlaps the scene suffix ".sfs": ${OVERLAP}`,
    ]);
    expect(routingProblems({ frameManifestSuffix: '.sfs.json' })).toEqual([]);
  });
});

describe('parseConfig', () => {
  it('returns the parsed config', () => {
    expect(parseConfig(RoutingSchema, { project: 'p', routes: [{ prefix: 'a/' }] }, 'routing')).toMatchObject({ project: 'p', routes: [{ prefix: 'a/' }], maxFrames: 2000 });
  });

  it('throws one ConfigError listing every problem under where it was read', () => {
    let thrown: unknown;
    try {
      parseConfig(RoutingSchema, { project: '', maxFrames: 0 }, 'ROUTING environment variable');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).name).toBe('ConfigError');
    expect((thrown as Error).message).toBe('invalid ROUTING environment variable:\n  - project: must not be empty\n  - maxFrames: must be at least 1');
  });
});

describe('requireEnv', () => {
  it('returns a set variable and refuses a missing or empty one with a clear message', () => {
    expect(requireEnv('TASKS_TABLE', { TASKS_TABLE: 'tasks' })).toBe('tasks');
    for (const env of [{}, { TASKS_TABLE: '' }]) {
      expect(() => requireEnv('TASKS_TABLE', env)).toThrow(new ConfigError('environment variable TASKS_TABLE is not set; the stack sets it on every function'));
    }
  });

  it('reads the process environment by default', () => {
    const name = 'CONFIG_TEST_ONLY_VARIABLE';
    process.env[name] = 'from the process';
    try {
      expect(requireEnv(name)).toBe('from the process');
    } finally {
      delete process.env[name];
    }
    expect(() => requireEnv(name)).toThrow(ConfigError);
  });
});
