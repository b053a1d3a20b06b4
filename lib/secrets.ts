import type { RemovalPolicy} from 'aws-cdk-lib';
import { SecretValue } from 'aws-cdk-lib';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { SECRET_PLACEHOLDER } from '../lambdas/core/shared/secrets.js';

/**
 * The three secrets. The two from Scale are created holding a placeholder (the functions refuse it with a
 * message saying how to set the real value); the signing key is generated here and never leaves AWS.
 */
export class PipelineSecrets extends Construct {
  readonly scaleApiKey: Secret;
  readonly callbackAuthKey: Secret;
  readonly signingKey: Secret;

  constructor(scope: Construct, id: string, props: { removalPolicy: RemovalPolicy }) {
    super(scope, id);
    const placeholder = (name: string, description: string) =>
      new Secret(this, name, {
        description,
        // Not a secret: a marker the functions recognise as "not set yet".
        secretStringValue: SecretValue.unsafePlainText(SECRET_PLACEHOLDER),
        removalPolicy: props.removalPolicy,
      });
    this.scaleApiKey = placeholder('ScaleApiKey', 'Scale API key (plain text) used to create tasks');
    this.callbackAuthKey = placeholder('ScaleCallbackAuthKey', "Scale's callback auth key (plain text), sent by Scale in the scale-callback-auth header");
    this.signingKey = new Secret(this, 'CallbackSigningKey', {
      description: 'Key for signing per-task callback URLs (generated; rotate by putting a new random value)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: props.removalPolicy,
    });
  }
}
