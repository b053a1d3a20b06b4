import type { Route, Routing } from '../shared/config.js';

export interface TaskSettings {
  project: string;
  batch?: string;
  instruction?: string;
  taskBlueprintId?: string;
  priority?: 10 | 20 | 30;
  tags?: string[];
}

/** Every Scale project tasks go to: the default's and each route's, once each. */
export function projectsOf(routing: Routing): string[] {
  return [...new Set([routing.project, ...routing.routes.flatMap((route) => (route.project ? [route.project] : []))])];
}

/** The settings for a key: the defaults, overridden field by field by the longest matching prefix route. */
export function routeFor(key: string, routing: Routing): TaskSettings & { route?: string } {
  const match = routing.routes
    .filter((route: Route) => key.startsWith(route.prefix))
    .sort((a, b) => b.prefix.length - a.prefix.length)[0];
  const pick = <K extends keyof TaskSettings>(field: K): TaskSettings[K] => (match?.[field] ?? routing[field]) as TaskSettings[K];
  const settings: TaskSettings & { route?: string } = { project: pick('project') };
  for (const field of ['batch', 'instruction', 'taskBlueprintId', 'priority', 'tags'] as const) {
    const value = pick(field);
    if (value !== undefined) Object.assign(settings, { [field]: value });
  }
  // A route that names another project must not inherit the default project's batch.
  if (match?.project && !match.batch) delete settings.batch;
  if (match) settings.route = match.prefix;
  return settings;
}
