import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { ConfigError } from './config.js';

/** What the stack puts in secrets the operator must fill in. */
export const SECRET_PLACEHOLDER = 'SET-ME';

/** Secrets are cached for this long in a warm function, so a rotated value is picked up within minutes. */
const MAX_AGE_SECONDS = 300;

/** Reads a plain-text secret, refusing an unset one with a message that says how to set it (never the value). */
export async function readSecret(secretId: string, what: string): Promise<string> {
  const value = await getSecret(secretId, { maxAge: MAX_AGE_SECONDS });
  const text = typeof value === 'string' ? value.trim() : '';
  if (text === '' || text === SECRET_PLACEHOLDER) {
    throw new ConfigError(`${what} is not set: aws secretsmanager put-secret-value --secret-id ${secretId} --secret-string '<value>'`);
  }
  return text;
}
