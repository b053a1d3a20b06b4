import { describe, expect, it } from 'vitest';
import { PipelineConfigSchema, RoutingSchema } from '../../../../lambdas/core/shared/config.js';
import { checkAgainst } from '../../../../lambdas/core/shared/validation.js';

// Each limit is pinned at its edge with literals: the limit itself is accepted, one past it is refused by name.

const routingProblems = (fields: Record<string, unknown>) => {
  const checked = checkAgainst(RoutingSchema, { project: 'p', ...fields });
  return checked.ok ? [] : checked.problems;
};
const pipelineProblems = (fields: Record<string, unknown>) => {
  const checked = checkAgainst(PipelineConfigSchema, { routing: { project: 'p' }, ...fields });
  return checked.ok ? [] : checked.problems;
};

describe('defaults', () => {
  it('fills every routing default', () => {
    expect(checkAgainst(RoutingSchema, { project: 'p' })).toStrictEqual({
      ok: true,
      value: {
        project: 'p',
        routes: [],
        clearUniqueIdOnError: true,
        presignExpiresSeconds: 21_600,
        maxHeaderBytes: 8_388_608,
        frameManifestSuffix: '.frames.json',
        maxFrames: 2_000,
        maxManifestBytes: 1_048_576,
        frameScope: 'folder',
      },
    });
  });

  it('fills every stack default', () => {
    const checked = checkAgainst(PipelineConfigSchema, { routing: { project: 'p' } });
    expect(checked.ok && { ...checked.value, routing: 'checked above' }).toStrictEqual({
      routing: 'checked above',
      scaleApiUrl: 'https://api.scale.com/v1',
      maxConcurrency: 5,
      sharedRateLimit: true,
      maxReceiveCount: 5,
      removalPolicy: 'retain',
      resultFileHosts: ['scaleapi-results.s3.amazonaws.com', 'scaleapi-results.s3.us-west-2.amazonaws.com', 'api.scale.com'],
      resultFilesAllowHttp: false,
      maxResultFileBytes: 104_857_600,
      reconcileEveryMinutes: 15,
      reconcileAfterMinutes: 30,
      reconcileLookBackHours: 25,
      errorResubmissions: 2,
      missingStatesAlarmThreshold: 5,
      eventArchiveRetentionDays: 365,
      cancelOnDelete: true,
    });
  });

  it('keeps values given over the defaults', () => {
    const checked = checkAgainst(PipelineConfigSchema, { routing: { project: 'p', clearUniqueIdOnError: false, frameScope: 'route' }, resultFilesAllowHttp: true, cancelOnDelete: false, removalPolicy: 'destroy', sharedRateLimit: false });
    expect(checked.ok && checked.value).toMatchObject({ routing: { clearUniqueIdOnError: false, frameScope: 'route' }, resultFilesAllowHttp: true, cancelOnDelete: false, removalPolicy: 'destroy', sharedRateLimit: false });
  });
});

// [key, lowest accepted, highest accepted, problem one below, problem one above]
const ROUTING_LIMITS: Array<[string, number, number, string, string]> = [
  ['presignExpiresSeconds', 60, 604_800, 'must be at least 60', 'must be at most 604800 (7 days)'],
  ['maxHeaderBytes', 1024, 67_108_864, 'must be at least 1024', 'must be at most 67108864'],
  ['maxFrames', 1, 10_000, 'must be at least 1', 'must be at most 10000'],
  ['maxManifestBytes', 1024, 16_777_216, 'must be at least 1024', 'must be at most 16777216'],
];
const PIPELINE_LIMITS: Array<[string, number, number, string, string]> = [
  ['maxConcurrency', 2, 1000, 'must be at least 2 (SQS event source minimum)', 'must be at most 1000'],
  ['maxReceiveCount', 1, 1000, 'must be at least 1', 'must be at most 1000'],
  ['callbackWafRateLimit', 10, 2_000_000_000, 'must be at least 10 (WAF minimum)', 'must be at most 2000000000'],
  ['maxResultFileBytes', 1024, 402_653_184, 'must be at least 1024', 'must be at most 402653184 (384 MiB): the file is held in the 1 GB function'],
  ['reconcileEveryMinutes', 1, 1440, 'must be at least 1', 'must be at most 1440'],
  ['reconcileAfterMinutes', 5, 10_080, 'must be at least 5 (longer than a create-task run, and than a wait in the queue)', 'must be at most 10080'],
  ['reconcileLookBackHours', 25, 720, "must be at least 25 (Scale's callback retries last 24 hours)", 'must be at most 720'],
  ['errorResubmissions', 0, 10, 'must be at least 0', 'must be at most 10'],
  ['eventArchiveRetentionDays', 0, 36_500, 'must be at least 0', 'must be at most 36500'],
];

describe('numeric limits', () => {
  it.each(ROUTING_LIMITS)('routing.%s accepts %i to %i', (key, low, high, below, above) => {
    expect(routingProblems({ [key]: low })).toEqual([]);
    expect(routingProblems({ [key]: high })).toEqual([]);
    expect(routingProblems({ [key]: low - 1 })).toEqual([`${key}: ${below}`]);
    expect(routingProblems({ [key]: high + 1 })).toEqual([`${key}: ${above}`]);
  });

  it.each(PIPELINE_LIMITS)('%s accepts %i to %i', (key, low, high, below, above) => {
    expect(pipelineProblems({ [key]: low })).toEqual([]);
    expect(pipelineProblems({ [key]: high })).toEqual([]);
    expect(pipelineProblems({ [key]: low - 1 })).toEqual([`${key}: ${below}`]);
    expect(pipelineProblems({ [key]: high + 1 })).toEqual([`${key}: ${above}`]);
  });

  it('has a floor and no ceiling for the missing-states alarm', () => {
    expect(pipelineProblems({ missingStatesAlarmThreshold: 1 })).toEqual([]);
    expect(pipelineProblems({ missingStatesAlarmThreshold: 1_000_000 })).toEqual([]);
    expect(pipelineProblems({ missingStatesAlarmThreshold: 0 })).toEqual(['missingStatesAlarmThreshold: must be at least 1']);
  });

  it('takes whole numbers only', () => {
    expect(pipelineProblems({ maxConcurrency: 2.5 })).toEqual(['maxConcurrency: expected int']);
  });
});

describe('text formats', () => {
  it('takes a frame manifest suffix that is a dot and file-name characters', () => {
    expect(routingProblems({ frameManifestSuffix: '.Frames_2-b.json' })).toEqual([]);
    expect(routingProblems({ frameManifestSuffix: '.f' })).toEqual([]);
    for (const suffix of ['frames.json', 'x.frames.json', '.frames.json ', '.a/b', '.']) {
      expect(routingProblems({ frameManifestSuffix: suffix }), suffix).toEqual(['frameManifestSuffix: must be a file suffix such as .frames.json']);
    }
  });

  it('takes an http(s) Scale API URL without credentials', () => {
    for (const url of ['http://127.0.0.1:9000/v1', 'https://api.example.com/v1', 'https://api.example.com/v1?next=ftp://u@x', 'https://api.example.com/v1/a@b']) {
      expect(pipelineProblems({ scaleApiUrl: url }), url).toEqual([]);
    }
    for (const url of ['ftp://api.example.com/v1', 'httpx://api.example.com', 'xhttp://api.example.com', 'not a url']) {
      expect(pipelineProblems({ scaleApiUrl: url }), url).toEqual(['scaleApiUrl: must be an http(s) URL']);
    }
    for (const url of ['https://user:secret@api.example.com/v1', 'HTTPS://key@api.example.com/v1']) {
      expect(pipelineProblems({ scaleApiUrl: url }), url).toEqual(['scaleApiUrl: must not hold credentials (user:password@): the API key goes in its secret']);
    }
  });

  it('takes host names only as result file hosts', () => {
    expect(pipelineProblems({ resultFileHosts: ['Results-1.example.com', '127.0.0.1'] })).toEqual([]);
    expect(pipelineProblems({ resultFileHosts: [] })).toEqual([]);
    for (const host of ['https://h', 'host:443', 'a b', '']) {
      expect(pipelineProblems({ resultFileHosts: ['ok.example.com', host] }), host).toEqual(['resultFileHosts[1]: must be a host name']);
    }
  });

  it('takes an SNS topic ARN for alarms', () => {
    for (const arn of ['arn:aws:sns:eu-west-1:123456789012:alarms', 'arn:aws-us-gov:sns:us-gov-west-1:123456789012:Ops_Alarms-2']) {
      expect(pipelineProblems({ alarmTopicArn: arn }), arn).toEqual([]);
    }
    for (const arn of [
      'arn:aws:sns:eu-west-1:12345678901:alarms',
      'arn:aws:sns:eu-west-1:1234567890123:alarms',
      'arn:aws:sqs:eu-west-1:123456789012:alarms',
      'arn:aws:sns::123456789012:alarms',
      'arn:aws:sns:eu-west-1:123456789012:',
      'arn:aws:sns:eu-west-1:123456789012:alarms/x',
      'xarn:aws:sns:eu-west-1:123456789012:alarms',
      'arn:AWS:sns:eu-west-1:123456789012:alarms',
    ]) {
      expect(pipelineProblems({ alarmTopicArn: arn }), arn).toEqual(['alarmTopicArn: must be an SNS topic ARN']);
    }
  });

  it('takes an S3 bucket name of 3 to 63 lower-case characters for an existing bucket', () => {
    for (const name of ['abc', 'my.scenes-1', `a${'b'.repeat(61)}c`, '1bc']) {
      expect(pipelineProblems({ existingScenesBucketName: name }), name).toEqual([]);
    }
    for (const name of ['ab', `a${'b'.repeat(62)}c`, 'Scenes', '-abc', 'abc-', 'ab_c', 'a/bc']) {
      expect(pipelineProblems({ existingScenesBucketName: name }), name).toEqual(['existingScenesBucketName: must be a valid S3 bucket name']);
    }
  });

  it('takes only the documented choices', () => {
    expect(routingProblems({ frameScope: 'folder' })).toEqual([]);
    expect(routingProblems({ frameScope: 'bucket' })).toEqual(['frameScope: expected one of "folder", "route"']);
    expect(pipelineProblems({ removalPolicy: 'keep' })).toEqual(['removalPolicy: expected one of "retain", "destroy"']);
    expect(pipelineProblems({ resultFilesAllowHttp: 'yes' })).toEqual(['resultFilesAllowHttp: expected boolean']);
  });
});
