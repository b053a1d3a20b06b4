import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readFileSync } from 'node:fs';
import { mergePatch, readPipelineConfig } from '../../lib/config.js';
import { PipelineStack } from '../../lib/pipeline-stack.js';

const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as { context: Record<string, unknown> };

/** The Scale project the stacks here route to: cdk.json ships none, so the tests name one. */
export const SYNTH_PROJECT = 'my-scale-project';

/**
 * The stack as `cdk synth` builds it, with cdk.json's context and SYNTH_PROJECT, `pipeline` merged onto them as
 * `-c pipeline='…'` is; bundling skipped (the bundles are tested elsewhere).
 */
export function synth(pipeline: Record<string, unknown> = {}, options: { nag?: boolean } = {}) {
  const base = mergePatch(cdkJson.context.pipeline, { routing: { project: SYNTH_PROJECT } });
  const app = new App({ context: { ...cdkJson.context, pipeline: mergePatch(base, pipeline), 'aws:cdk:bundling-stacks': [] } });
  const stack = new PipelineStack(app, 'Test', { config: readPipelineConfig(app) });
  if (options.nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  // Template.fromStack synthesizes; a nag run must synthesize itself, once.
  return { app, stack, get template() { return Template.fromStack(stack); } };
}

type Resource = { Properties: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- CloudFormation JSON

/** Lookups in one synthesized template. */
export function inspect(template: Template) {
  const resources = (type: string) => Object.entries(template.findResources(type)) as Array<[string, Resource]>;
  const projectFunctions = () => resources('AWS::Lambda::Function').filter(([, r]) => r.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME);
  const functionNamed = (name: string) => projectFunctions().find(([, r]) => r.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === name)!;
  /** The statements of the one policy attached to a function's role, summarised: sorted actions and resources as JSON. */
  const permissionsOf = (name: string) => {
    const [, fn] = functionNamed(name);
    const role = fn.Properties.Role['Fn::GetAtt'][0];
    const policies = resources('AWS::IAM::Policy').filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === role));
    if (policies.length !== 1) throw new Error(`${name}: expected one policy, found ${policies.length}`);
    return (policies[0]![1].Properties.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>).map((s) => ({
      actions: [s.Action].flat().sort(),
      resources: JSON.stringify(s.Resource),
    }));
  };
  return { resources, projectFunctions, functionNamed, permissionsOf };
}
