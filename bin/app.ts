import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigError } from '../lambdas/core/shared/config.js';
import { readCdkJsonPipeline, readPipelineConfig } from '../lib/config.js';
import { PipelineStack } from '../lib/pipeline-stack.js';

const app = new App();
let config;
try {
  // A -c pipeline='{…}' value replaces cdk.json's object in the context, so cdk.json's is read to merge it onto:
  // the cdk.json of the working directory, which is the one the cdk CLI read (it runs the app where it runs).
  config = readPipelineConfig(app, readCdkJsonPipeline('cdk.json'));
} catch (err) {
  // A configuration mistake is the user's to fix: one readable message naming the key and the fix, no stack trace.
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}
new PipelineStack(app, 'ScaleSfsPipeline', {
  config,
  description: 'S3 .sfs uploads -> Scale AI multistage tasks -> verified callbacks -> DynamoDB',
});
// AWS Solutions checks on every synth; findings that are intended are acknowledged with reasons in lib/nag.ts.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
