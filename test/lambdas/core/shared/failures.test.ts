import { ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { ScaleApiError } from '../../../../lambdas/core/scale/errors.js';
import { ConfigError } from '../../../../lambdas/core/shared/config.js';
import { describeFailure, isScaleAuthFailure } from '../../../../lambdas/core/shared/failures.js';

const scaleError = (status: number | undefined, summary = `${status} from Scale`) =>
  new ScaleApiError(summary, { operation: 'create task', status, retryable: status === undefined || status >= 500, attempts: 1 });
const AUTH_HINT = ' — check the Scale API key secret (test and live keys see different projects)';

describe('what a failed delivery records', () => {
  it('names a refused API key as an auth failure, with what to check', () => {
    for (const status of [401, 403]) {
      expect(isScaleAuthFailure(scaleError(status))).toBe(true);
      expect(describeFailure(scaleError(status))).toEqual({
        kind: 'scale_auth',
        message: `ScaleApiError: Scale create task failed after 1 attempt: ${status} from Scale${AUTH_HINT}`,
      });
    }
  });

  it('takes other Scale failures as Scale being unavailable', () => {
    for (const status of [400, 402, 404, 429, 500, undefined]) {
      expect(isScaleAuthFailure(scaleError(status))).toBe(false);
      expect(describeFailure(scaleError(status, 'timed out'))).toEqual({ kind: 'scale_unavailable', message: 'ScaleApiError: Scale create task failed after 1 attempt: timed out' });
    }
  });

  it('does not take a 401 from anything but Scale as an auth failure', () => {
    const other = Object.assign(new Error('Unauthorized'), { status: 401 });
    expect(isScaleAuthFailure(other)).toBe(false);
    expect(describeFailure(other)).toEqual({ kind: 'unexpected', message: 'Error: Unauthorized' });
  });

  it('names an unset secret as configuration', () => {
    expect(describeFailure(new ConfigError('the Scale API key is not set'))).toEqual({ kind: 'not_configured', message: 'ConfigError: the Scale API key is not set' });
  });

  it('names an AWS service error (anything with SDK metadata) as aws', () => {
    const throttled = new ProvisionedThroughputExceededException({ message: 'Rate of requests exceeds the allowed throughput', $metadata: { httpStatusCode: 400 } });
    expect(describeFailure(throttled)).toEqual({ kind: 'aws', message: 'ProvisionedThroughputExceededException: Rate of requests exceeds the allowed throughput' });
    expect(describeFailure({ $metadata: {} })).toEqual({ kind: 'aws', message: '[object Object]' });
    expect(describeFailure({ $metadata: undefined })).toEqual({ kind: 'unexpected', message: '[object Object]' });
  });

  it('describes anything else thrown, including values that are not errors', () => {
    expect(describeFailure(new TypeError('x is not a function'))).toEqual({ kind: 'unexpected', message: 'TypeError: x is not a function' });
    // An error without a message is still named by its type, in the same "name: message" form.
    expect(describeFailure(new RangeError(''))).toEqual({ kind: 'unexpected', message: 'RangeError: ' });
    expect(describeFailure('boom')).toEqual({ kind: 'unexpected', message: 'boom' });
    expect(describeFailure(null)).toEqual({ kind: 'unexpected', message: 'null' });
    expect(describeFailure(undefined)).toEqual({ kind: 'unexpected', message: 'undefined' });
  });

  it('bounds the message to 1024 bytes, whatever was thrown', () => {
    expect(describeFailure(new Error('x'.repeat(1017)))).toEqual({ kind: 'unexpected', message: `Error: ${'x'.repeat(1017)}` });
    expect(describeFailure(new Error('x'.repeat(1018)))).toEqual({ kind: 'unexpected', message: `Error: ${'x'.repeat(1014)}…` });
    expect(describeFailure('y'.repeat(5000)).message).toBe(`${'y'.repeat(1021)}…`);
    const auth = describeFailure(scaleError(401, 'z'.repeat(5000)));
    expect(auth.kind).toBe('scale_auth');
    expect(Buffer.byteLength(auth.message)).toBe(1024);
    // The hint survives the cut: it is what the operator acts on.
    expect(auth.message.endsWith(`z…${AUTH_HINT}`)).toBe(true);
  });
});
