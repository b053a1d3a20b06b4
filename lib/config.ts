import type { Construct } from 'constructs';
import { ConfigError, parseConfig, PipelineConfigSchema, type PipelineConfig } from '../lambdas/core/config.js';

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
  return parseConfig(PipelineConfigSchema, raw, `CDK context "${CONTEXT_KEY}"`);
}
