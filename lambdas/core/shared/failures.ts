import { ConfigError } from './config.js';
import { ScaleApiError } from '../scale/errors.js';
import { boundText, MAX_REASON_BYTES } from './validation.js';

/**
 * Why a delivery failed, by rule. None of these is the input's fault — those are recorded as outcomes
 * (rejected, create_failed) and never thrown — so every one is retried:
 * - scale_auth: Scale refused the API key (401/403): configuration someone must fix; alarmed.
 * - scale_unavailable: 408/429/5xx, timeouts, network, the deadline: Scale will answer later.
 * - not_configured: a secret is not set yet.
 * - aws: an AWS service failed (throttling, a network blip, an outage).
 * - unexpected: anything else; retried, and after the last delivery the record says what it was.
 */
export type FailureKind = 'scale_auth' | 'scale_unavailable' | 'not_configured' | 'aws' | 'unexpected';

export interface Failure {
  kind: FailureKind;
  /** Bounded, and never holds a secret (ScaleApiError carries no request headers; ConfigError names ids only). */
  message: string;
}

export function isScaleAuthFailure(err: unknown): boolean {
  return err instanceof ScaleApiError && (err.status === 401 || err.status === 403);
}

const AUTH_HINT = ' — check the Scale API key secret (test and live keys see different projects)';

export function describeFailure(err: unknown): Failure {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  // The hint is what the operator acts on: a long message is cut to leave room for it.
  if (isScaleAuthFailure(err)) return { kind: 'scale_auth', message: `${boundText(text, MAX_REASON_BYTES - Buffer.byteLength(AUTH_HINT))}${AUTH_HINT}` };
  const message = boundText(text);
  if (err instanceof ScaleApiError) return { kind: 'scale_unavailable', message };
  if (err instanceof ConfigError) return { kind: 'not_configured', message };
  if ((err as { $metadata?: unknown } | null)?.$metadata !== undefined) return { kind: 'aws', message };
  return { kind: 'unexpected', message };
}
