import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigError } from '../lambdas/core/shared/config.js';
import { readPipelineConfig } from '../lib/config.js';
import { PipelineStack } from '../lib/pipeline-stack.js';

const app = new App();
let config;
try {
  config = readPipelineConfig(app);
} catch (err) {
  // A configuration mistake is the user's to fix: one readable message naming the keys, not a stack trace.
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\nFix it in cdk.json (context "pipeline") or pass -c pipeline='{…}'.\n`);
  process.exit(1);
}
new PipelineStack(app, 'ScaleSfsPipeline', {
  config,
  description: 'S3 .sfs uploads -> Scale AI multistage tasks -> verified callbacks -> DynamoDB',
});
// AWS Solutions checks on every synth; findings that are intended are acknowledged with reasons in lib/nag.ts.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
