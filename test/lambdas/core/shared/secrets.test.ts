import { clearCaches } from '@aws-lambda-powertools/parameters';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startSecretsManager } from '../../../../local/emulators/secrets-manager.js';
import { ConfigError } from '../../../../lambdas/core/shared/config.js';
import { readSecret, SECRET_PLACEHOLDER } from '../../../../lambdas/core/shared/secrets.js';

// The real Powertools provider and SDK client, against the local GetSecretValue endpoint on loopback.
let secrets: Awaited<ReturnType<typeof startSecretsManager>>;

beforeAll(async () => {
  secrets = await startSecretsManager();
  Object.assign(process.env, { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint });
});
afterAll(() => secrets.close());
afterEach(() => {
  vi.useRealTimers();
  clearCaches();
});

const unset = (id: string) => new ConfigError(`the Scale API key is not set: aws secretsmanager put-secret-value --secret-id ${id} --secret-string '<value>'`);

describe('reading a secret', () => {
  it('returns the value without surrounding whitespace', async () => {
    secrets.set('scale/api-key', '  live_abc123\n');
    await expect(readSecret('scale/api-key', 'the Scale API key')).resolves.toBe('live_abc123');
  });

  it('refuses the placeholder the stack puts in, saying how to set it', async () => {
    expect(SECRET_PLACEHOLDER).toBe('SET-ME');
    secrets.set('scale/placeholder', 'SET-ME');
    await expect(readSecret('scale/placeholder', 'the Scale API key')).rejects.toThrow(unset('scale/placeholder'));
    await expect(readSecret('scale/placeholder', 'the Scale API key')).rejects.toBeInstanceOf(ConfigError);
  });

  it('refuses the placeholder with whitespace around it (a secret pasted with its newline)', async () => {
    secrets.set('scale/placeholder-newline', 'SET-ME\n');
    await expect(readSecret('scale/placeholder-newline', 'the Scale API key')).rejects.toThrow(unset('scale/placeholder-newline'));
  });

  it('refuses a value that is only whitespace', async () => {
    secrets.set('scale/blank', ' \n\t ');
    await expect(readSecret('scale/blank', 'the Scale API key')).rejects.toThrow(unset('scale/blank'));
  });

  it('keeps a value for exactly 300 seconds in a warm function, then reads the rotated one', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = new Date('2026-11-30T12:00:00.000Z').getTime();
    vi.setSystemTime(start);
    secrets.set('scale/rotating', 'key-before');
    await expect(readSecret('scale/rotating', 'the Scale API key')).resolves.toBe('key-before');
    secrets.set('scale/rotating', 'key-after');
    vi.setSystemTime(start + 300_000);
    await expect(readSecret('scale/rotating', 'the Scale API key')).resolves.toBe('key-before');
    vi.setSystemTime(start + 300_001);
    await expect(readSecret('scale/rotating', 'the Scale API key')).resolves.toBe('key-after');
  });
});
