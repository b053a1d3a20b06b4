import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../../../lambdas/core/shared/config.js';
import { readSecret } from '../../../../lambdas/core/shared/secrets.js';

// Powertools' getSecret gives a secret stored with --secret-binary as a Uint8Array; the local endpoint serves text
// only, so this one case stands in for the provider.
vi.mock('@aws-lambda-powertools/parameters/secrets', () => ({
  getSecret: vi.fn((id: string, options: { maxAge?: number }) => Promise.resolve(id === 'binary' ? new TextEncoder().encode('live_abc123') : `text for ${id}, kept ${String(options.maxAge)} s`)),
}));

describe('a secret that is not text', () => {
  it('is refused as unset, saying how to store it as text', async () => {
    await expect(readSecret('binary', 'the callback signing key')).rejects.toThrow(
      new ConfigError("the callback signing key is not set: aws secretsmanager put-secret-value --secret-id binary --secret-string '<value>'"),
    );
  });

  it('does not change how text secrets are read', async () => {
    await expect(readSecret('plain', 'the callback signing key')).resolves.toBe('text for plain, kept 300 s');
  });
});
