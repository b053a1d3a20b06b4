import type { Construct } from 'constructs';
import { readFileSync } from 'node:fs';
import { ConfigError, PipelineConfigSchema, type PipelineConfig } from '../lambdas/core/shared/config.js';
import { checkAgainst } from '../lambdas/core/shared/validation.js';

export const CONTEXT_KEY = 'pipeline';

/** The one setting without a default, and how to give it. */
const MISSING_PROJECT =
  `routing.project is missing: the Scale project new tasks go to. Set it in cdk.json ("context" → "${CONTEXT_KEY}" → "routing" → "project") ` +
  `or pass -c ${CONTEXT_KEY}='{"routing":{"project":"<your Scale project>"}}'`;

const GENERAL_FIX = `Fix it in cdk.json ("context" → "${CONTEXT_KEY}") or pass -c ${CONTEXT_KEY}='{…}' (merged onto cdk.json's).`;

/** cdk.json's own `pipeline` object: undefined when it has none, or when there is no such file. */
export function readCdkJsonPipeline(cdkJsonPath: string): unknown {
  let text: string;
  try {
    text = readFileSync(cdkJsonPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const cdkJson = JSON.parse(text) as { context?: Record<string, unknown> };
  return cdkJson.context?.[CONTEXT_KEY];
}

/**
 * Reads and validates the `pipeline` context. A `-c pipeline='{…}'` value reaches the app as a string that
 * replaces cdk.json's object, so it is parsed and merged onto `cdkJsonPipeline` (JSON merge patch, RFC 7396:
 * objects merge key by key, arrays and other values replace, `null` removes a key). Every error is one
 * ConfigError whose message names the key and the fix; a missing project alone is one line.
 */
export function readPipelineConfig(scope: Construct, cdkJsonPipeline?: unknown): PipelineConfig {
  const given: unknown = scope.node.tryGetContext(CONTEXT_KEY);
  const patch = typeof given === 'string' ? parseContextJson(given) : given;
  checkShape(cdkJsonPipeline, `cdk.json's "${CONTEXT_KEY}"`);
  checkShape(patch, `-c ${CONTEXT_KEY}=…`);
  const raw = mergePatch(cdkJsonPipeline ?? {}, patch ?? {});
  const projectMissing = lacksProject(raw);
  // Checked with a stand-in project, so that every other problem is named with it.
  const result = checkAgainst(PipelineConfigSchema, projectMissing ? mergePatch(raw, { routing: { project: '-' } }) : raw);
  if (!result.ok) throw new ConfigError(describeProblems([...(projectMissing ? [MISSING_PROJECT] : []), ...result.problems]));
  if (projectMissing) throw new ConfigError(MISSING_PROJECT);
  const config = result.value;
  // Lambda refuses a function whose environment variables exceed 4 KB in all; ROUTING is most of create-task's.
  const routingBytes = Buffer.byteLength(JSON.stringify(config.routing));
  if (routingBytes > MAX_ROUTING_BYTES) {
    throw new ConfigError(
      describeProblems([
        `routing: is ${routingBytes} bytes as JSON; create-task's environment allows about ${MAX_ROUTING_BYTES} ` +
          '(Lambda: 4 KB for all variables). Shorten the instructions, or keep them in a Scale task blueprint (taskBlueprintId)',
      ]),
    );
  }
  return config;
}

/** What is left of Lambda's 4 KB of environment variables after create-task's other variables (names, ARNs, URL). */
const MAX_ROUTING_BYTES = 3 * 1024;

/** No project given (a project of the wrong type is the schema's to name). */
function lacksProject(raw: unknown): boolean {
  if (!isObject(raw)) return false;
  return raw.routing === undefined || (isObject(raw.routing) && raw.routing.project === undefined);
}

/**
 * One problem: one line; several: one line each under the heading. The fix closes the message either way. Key
 * names and values come from the user's JSON: their control characters are escaped, so they cannot drive the
 * terminal or fake a line of the message.
 */
function describeProblems(problems: readonly string[]): string {
  const heading = `invalid CDK context "${CONTEXT_KEY}"`;
  const shown = problems.map(printable);
  if (shown.length === 1) return `${heading}: ${shown[0]!.replace(/\.$/, '')}. ${GENERAL_FIX}`;
  return `${heading}:\n  - ${shown.join('\n  - ')}\n${GENERAL_FIX}`;
}

/** Control characters shown as \uXXXX. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Objects and arrays nest at most this deep: the settings nest three or four levels, and the merge recurses per level. */
export const MAX_CONFIG_DEPTH = 64;

/** Keys that reach an object's prototype instead of a setting when assigned: never settings, always refused. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Refuses, in one readable message, a value nested deeper than MAX_CONFIG_DEPTH or holding a key of
 * PROTOTYPE_KEYS. Walked without recursion, so no value can overflow the stack here.
 */
function checkShape(value: unknown, source: string): void {
  const pending: Array<{ value: unknown; path: string; depth: number }> = [{ value, path: '', depth: 0 }];
  const reserved: string[] = [];
  while (pending.length > 0) {
    const next = pending.pop()!;
    if (next.value === null || typeof next.value !== 'object') continue;
    if (next.depth >= MAX_CONFIG_DEPTH) {
      throw new ConfigError(`invalid CDK context "${CONTEXT_KEY}": ${source} nests objects and arrays more than ${MAX_CONFIG_DEPTH} levels deep (at ${printable(next.path.slice(0, 200))}…): the pipeline's settings nest a few levels. ${GENERAL_FIX}`);
    }
    for (const [key, child] of Object.entries(next.value)) {
      const path = Array.isArray(next.value) ? `${next.path}[${key}]` : next.path ? `${next.path}.${key}` : key;
      if (!Array.isArray(next.value) && PROTOTYPE_KEYS.has(key)) reserved.push(path);
      pending.push({ value: child, path, depth: next.depth + 1 });
    }
  }
  if (reserved.length > 0) {
    throw new ConfigError(
      `invalid CDK context "${CONTEXT_KEY}": ${source} has the key${reserved.length > 1 ? 's' : ''} ${reserved.slice(0, 5).map((path) => printable(JSON.stringify(path))).join(', ')}${reserved.length > 5 ? ` and ${reserved.length - 5} more` : ''}: __proto__, constructor and prototype are never settings (they would reach JavaScript's object prototype); remove them. ${GENERAL_FIX}`,
    );
  }
}

/**
 * RFC 7396 JSON merge patch: `patch` applied to `target`, neither changed. Keys are defined as own properties,
 * so a "__proto__" key stays a key (for the schema to refuse) and never sets a prototype.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const merged: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else Object.defineProperty(merged, key, { value: mergePatch(Object.hasOwn(merged, key) ? merged[key] : undefined, value), enumerable: true, writable: true, configurable: true });
  }
  return merged;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses a `-c pipeline=…` value; a mistake is reported at its line and column, with the text around it. */
export function parseContextJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const at = jsonErrorAt(text);
    const where = at === undefined ? (err as Error).message : describePosition(text, at.offset, at.expected);
    throw new ConfigError(`-c ${CONTEXT_KEY}=… is not valid JSON: ${where}\nQuote the whole value for the shell, e.g. -c ${CONTEXT_KEY}='{"routing":{"project":"my-project"}}'.`);
  }
}

/** "expected X at line L, column C (character N):" and the line itself with a caret under the spot. */
function describePosition(text: string, offset: number, expected: string): string {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const lineEnd = text.indexOf('\n', offset) === -1 ? text.length : text.indexOf('\n', offset);
  const line = text.slice(0, lineStart).split('\n').length;
  const column = offset - lineStart + 1;
  // Long one-line values (the usual -c case) are cut to a window around the spot.
  const from = Math.max(lineStart, offset - 40);
  const to = Math.min(lineEnd, offset + 40);
  // Control characters escaped (the caret counts their escapes): the value is the user's, the terminal is too.
  const snippet = `${from > lineStart ? '…' : ''}${printable(text.slice(from, to))}${to < lineEnd ? '…' : ''}`;
  const caret = ' '.repeat(printable(text.slice(from, offset)).length + (from > lineStart ? 1 : 0)) + '^';
  const found = offset >= text.length ? 'the end of the value' : printable(JSON.stringify(text[offset]));
  return `expected ${expected} at line ${line}, column ${column} (character ${offset + 1}), found ${found}:\n  ${snippet}\n  ${caret}`;
}

/**
 * Where JSON.parse would stop, and what it wanted there. V8's messages give a position for some mistakes only,
 * so the grammar (RFC 8259) is walked here; only called once JSON.parse has refused the text.
 */
export function jsonErrorAt(text: string): { offset: number; expected: string } | undefined {
  let i = 0;
  class Stop {
    constructor(readonly expected: string) {}
  }
  const fail = (expected: string): never => {
    throw new Stop(expected);
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const literal = (word: string) => {
    for (const char of word) {
      if (text[i] !== char) fail(JSON.stringify(word));
      i++;
    }
  };
  const digits = () => {
    const start = i;
    while (i < text.length && text[i]! >= '0' && text[i]! <= '9') i++;
    if (i === start) fail('a digit');
  };
  const string = () => {
    if (text[i] !== '"') fail('a double-quoted string');
    i++;
    for (;;) {
      if (i >= text.length) fail('a closing \'"\'');
      const char = text[i]!;
      if (char === '"') return void i++;
      if (char < ' ') fail('a character (control characters must be escaped)');
      if (char === '\\') {
        i++;
        if (text[i] === 'u') {
          i++;
          for (let n = 0; n < 4; n++, i++) if (!/[0-9a-fA-F]/.test(text[i] ?? '')) fail('a hex digit of a \\u escape');
          continue;
        }
        if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail('an escape such as \\" or \\n');
      }
      i++;
    }
  };
  // Nesting is counted: this walk recurses per level, and the text may nest deeper than the stack allows.
  let depth = 0;
  const close = () => void (i++, depth--);
  const value = (): void => {
    space();
    const char = text[i];
    if ((char === '{' || char === '[') && ++depth > MAX_CONFIG_DEPTH) fail(`at most ${MAX_CONFIG_DEPTH} levels of nested objects and arrays`);
    if (char === '{') {
      i++;
      space();
      if (text[i] === '}') return close();
      for (;;) {
        space();
        if (text[i] !== '"') fail('a double-quoted property name');
        string();
        space();
        if (text[i] !== ':') fail("':' after the property name");
        i++;
        value();
        space();
        if (text[i] === '}') return close();
        if (text[i] !== ',') fail("',' or '}' after a property value");
        i++;
      }
    }
    if (char === '[') {
      i++;
      space();
      if (text[i] === ']') return close();
      for (;;) {
        value();
        space();
        if (text[i] === ']') return close();
        if (text[i] !== ',') fail("',' or ']' after an array element");
        i++;
      }
    }
    if (char === '"') return string();
    if (char === 't') return literal('true');
    if (char === 'f') return literal('false');
    if (char === 'n') return literal('null');
    if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) {
      if (text[i] === '-') i++;
      if (text[i] === '0') i++;
      else digits();
      if (text[i] === '.') {
        i++;
        digits();
      }
      if (text[i] === 'e' || text[i] === 'E') {
        i++;
        if (text[i] === '+' || text[i] === '-') i++;
        digits();
      }
      return;
    }
    fail('a value (an object, array, string, number, true, false or null)');
  };
  try {
    value();
    space();
    if (i < text.length) fail('the end of the value (it continues after a complete JSON value)');
    return undefined;
  } catch (err) {
    if (err instanceof Stop) return { offset: i, expected: err.expected };
    throw err;
  }
}
