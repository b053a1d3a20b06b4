import type { Construct } from 'constructs';
import { ConfigError, parseConfig, PipelineConfigSchema, type PipelineConfig } from '../lambdas/core/shared/config.js';

export const CONTEXT_KEY = 'pipeline';

/** Reads and validates the `pipeline` context (cdk.json or `-c pipeline='{…}'`); errors name the key. */
export function readPipelineConfig(scope: Construct): PipelineConfig {
  let raw: unknown = scope.node.tryGetContext(CONTEXT_KEY);
  if (raw === undefined) throw new ConfigError(`CDK context "${CONTEXT_KEY}" is missing: see cdk.json for the expected shape`);
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch {
      throw new ConfigError(`CDK context "${CONTEXT_KEY}" is not valid JSON`);
    }
  }
  const config = parseConfig(PipelineConfigSchema, raw, `CDK context "${CONTEXT_KEY}"`);
  // Lambda refuses a function whose environment variables exceed 4 KB in all; ROUTING is most of create-task's.
  const routingBytes = Buffer.byteLength(JSON.stringify(config.routing));
  if (routingBytes > MAX_ROUTING_BYTES) {
    throw new ConfigError(
      `invalid CDK context "${CONTEXT_KEY}":\n  - routing: is ${routingBytes} bytes as JSON; create-task's environment allows about ${MAX_ROUTING_BYTES} ` +
        '(Lambda: 4 KB for all variables). Shorten the instructions, or keep them in a Scale task blueprint (taskBlueprintId).',
    );
  }
  return config;
}

/** What is left of Lambda's 4 KB of environment variables after create-task's other variables (names, ARNs, URL). */
const MAX_ROUTING_BYTES = 3 * 1024;
