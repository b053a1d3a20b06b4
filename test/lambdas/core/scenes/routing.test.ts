import { describe, expect, it } from 'vitest';
import { projectsOf, routeFor } from '../../../../lambdas/core/scenes/routing.js';
import { parseConfig, RoutingSchema } from '../../../../lambdas/core/shared/config.js';

/* Which settings a key's task gets, compared whole (no field may appear that the config does not set). */

const routingWith = (routes: unknown[], defaults: Record<string, unknown> = {}) => parseConfig(RoutingSchema, { project: 'default', ...defaults, routes }, 'routing');

describe('routeFor', () => {
  it('gives only the fields that are set, with no empty ones', () => {
    expect(routeFor('misc/a.sfs', routingWith([]))).toStrictEqual({ project: 'default' });
    expect(routeFor('r/a.sfs', routingWith([{ prefix: 'r/', taskBlueprintId: 'bp' }]))).toStrictEqual({ project: 'default', taskBlueprintId: 'bp', route: 'r/' });
  });

  it('takes the longest matching prefix whatever order the routes are listed in', () => {
    const short = { prefix: 'a/', instruction: 'short' };
    const long = { prefix: 'a/b/', instruction: 'long' };
    const middle = { prefix: 'a/b', instruction: 'middle' };
    for (const routes of [[short, middle, long], [long, middle, short], [middle, long, short]]) {
      expect(routeFor('a/b/c.sfs', routingWith(routes))).toStrictEqual({ project: 'default', instruction: 'long', route: 'a/b/' });
    }
  });

  it("keeps a route's own batch with its own project", () => {
    const routing = routingWith([{ prefix: 'p/', project: 'other', batch: 'other-batch' }], { batch: 'default-batch' });
    expect(routeFor('p/a.sfs', routing)).toStrictEqual({ project: 'other', batch: 'other-batch', route: 'p/' });
  });
});

describe('projectsOf', () => {
  it("lists the default project and each route's, once each", () => {
    const routing = routingWith([{ prefix: 'a/', project: 'x' }, { prefix: 'b/' }, { prefix: 'c/', project: 'default' }, { prefix: 'd/', project: 'x' }]);
    expect(projectsOf(routing)).toEqual(['default', 'x']);
  });
});
