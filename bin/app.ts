import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readPipelineConfig } from '../lib/config.js';
import { PipelineStack } from '../lib/pipeline-stack.js';

const app = new App();
new PipelineStack(app, 'ScaleSfsPipeline', {
  config: readPipelineConfig(app),
  description: 'S3 .sfs uploads -> Scale AI multistage tasks -> verified callbacks -> DynamoDB',
});
// AWS Solutions checks on every synth; findings that are intended are acknowledged with reasons in lib/nag.ts.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
