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

/** One problem: one line; several: one line each under the heading. The fix closes the message either way. */
function describeProblems(problems: readonly string[]): string {
  const heading = `invalid CDK context "${CONTEXT_KEY}"`;
  if (problems.length === 1) return `${heading}: ${problems[0]!.replace(/\.$/, '')}. ${GENERAL_FIX}`;
  return `${heading}:\n  - ${problems.join('\n  - ')}\n${GENERAL_FIX}`;
}

/** RFC 7396 JSON merge patch: `patch` applied to `target`, neither changed. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const merged: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = mergePatch(merged[key], value);
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
  const snippet = `${from > lineStart ? '…' : ''}${text.slice(from, to)}${to < lineEnd ? '…' : ''}`;
  const caret = ' '.repeat(offset - from + (from > lineStart ? 1 : 0)) + '^';
  const found = offset >= text.length ? 'the end of the value' : JSON.stringify(text[offset]);
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
  const value = (): void => {
    space();
    const char = text[i];
    if (char === '{') {
      i++;
      space();
      if (text[i] === '}') return void i++;
      for (;;) {
        space();
        if (text[i] !== '"') fail('a double-quoted property name');
        string();
        space();
        if (text[i] !== ':') fail("':' after the property name");
        i++;
        value();
        space();
        if (text[i] === '}') return void i++;
        if (text[i] !== ',') fail("',' or '}' after a property value");
        i++;
      }
    }
    if (char === '[') {
      i++;
      space();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        space();
        if (text[i] === ']') return void i++;
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
