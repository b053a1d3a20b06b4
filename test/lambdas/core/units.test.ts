import { describe, expect, it } from 'vitest';
import { parseConfig, PipelineConfigSchema, RoutingSchema } from '../../../lambdas/core/config.js';
import { routeFor } from '../../../lambdas/core/routing.js';
import { decodeS3Key, uploadsInMessage } from '../../../lambdas/core/s3-event.js';
import { callbackUrlFor, sceneUniqueId, secretsEqual, signCallbackRef, verifyCallbackRef } from '../../../lambdas/core/scene-identity.js';
import { encodeS3Key, s3NotificationBody } from '../../../local/events.js';

describe('S3 event keys', () => {
  it.each([
    ['red flower.sfs', 'red+flower.sfs'],
    ['a+b.sfs', 'a%2Bb.sfs'],
    ['100%.sfs', '100%25.sfs'],
    ['dir/東京 é.sfs', 'dir/%E6%9D%B1%E4%BA%AC+%C3%A9.sfs'],
  ])('decodes %s from its event form', (key, encoded) => {
    expect(encodeS3Key(key)).toBe(encoded);
    expect(decodeS3Key(encoded)).toBe(key);
  });

  it('reads the uploads of a notification and skips non-create events', () => {
    const body = JSON.parse(s3NotificationBody([{ bucket: 'b', key: 'x y.sfs', size: 3, eTag: 'e', versionId: 'v1', eventName: 'ObjectCreated:CompleteMultipartUpload' }]));
    body.Records.push({ ...body.Records[0], eventName: 'ObjectRemoved:Delete' });
    expect(uploadsInMessage(JSON.stringify(body))).toEqual([
      { eventName: 'ObjectCreated:CompleteMultipartUpload', bucket: 'b', key: 'x y.sfs', size: 3, eTag: 'e', versionId: 'v1' },
    ]);
  });

  it('says what is wrong with a message that is not a notification', () => {
    expect(() => uploadsInMessage('nope')).toThrow('message body is not JSON; expected an S3 event notification');
    expect(() => uploadsInMessage('{"Records":[{"eventName":"ObjectCreated:Put"}]}')).toThrow('Records[0].s3: expected object');
  });
});

describe('scene identity', () => {
  it('is stable per object version and differs across versions, keys and buckets', () => {
    const id = sceneUniqueId({ bucket: 'b', key: 'k.sfs', versionId: 'v1' });
    expect(id).toMatch(/^sfs-[0-9a-f]{40}$/);
    expect(sceneUniqueId({ bucket: 'b', key: 'k.sfs', versionId: 'v1', eTag: 'ignored' })).toBe(id);
    expect(sceneUniqueId({ bucket: 'b', key: 'k.sfs', versionId: 'v2' })).not.toBe(id);
    expect(sceneUniqueId({ bucket: 'b2', key: 'k.sfs', versionId: 'v1' })).not.toBe(id);
    expect(sceneUniqueId({ bucket: 'b', key: 'k.sfs', eTag: '"abc"' })).toBe(sceneUniqueId({ bucket: 'b', key: 'k.sfs', eTag: 'abc' }));
    expect(() => sceneUniqueId({ bucket: 'b', key: 'k.sfs' })).toThrow('neither versionId nor ETag');
  });

  it('signs callback URLs that verify only with the same ref and key', () => {
    const url = new URL(callbackUrlFor('https://api.example.com/prod/callback', 'sfs-1', 'key-a'));
    expect(url.pathname).toBe('/prod/callback');
    const sig = url.searchParams.get('sig')!;
    expect(verifyCallbackRef('sfs-1', sig, 'key-a')).toBe(true);
    expect(verifyCallbackRef('sfs-2', sig, 'key-a')).toBe(false);
    expect(verifyCallbackRef('sfs-1', sig, 'key-b')).toBe(false);
    expect(verifyCallbackRef('sfs-1', signCallbackRef('sfs-1', 'key-a').slice(1), 'key-a')).toBe(false);
  });

  it('compares secrets without accepting empty or missing ones', () => {
    expect(secretsEqual('abc', 'abc')).toBe(true);
    expect(secretsEqual('abd', 'abc')).toBe(false);
    expect(secretsEqual(undefined, 'abc')).toBe(false);
    expect(secretsEqual('', '')).toBe(false);
  });
});

describe('routing', () => {
  const routing = parseConfig(
    RoutingSchema,
    {
      project: 'default',
      batch: 'default-batch',
      tags: ['all'],
      routes: [
        { prefix: 'highway/', project: 'highway', priority: 30 },
        { prefix: 'highway/night/', instruction: 'Night scenes: mind the reflections.' },
        { prefix: 'city/', batch: 'city-batch' },
      ],
    },
    'routing',
  );

  it('uses the defaults when no prefix matches', () => {
    expect(routeFor('misc/scene.sfs', routing)).toEqual({ project: 'default', batch: 'default-batch', tags: ['all'] });
  });

  it('lets the longest prefix override field by field, without carrying a batch into another project', () => {
    expect(routeFor('highway/a.sfs', routing)).toEqual({ project: 'highway', priority: 30, tags: ['all'], route: 'highway/' });
    expect(routeFor('highway/night/a.sfs', routing)).toEqual({
      project: 'default',
      batch: 'default-batch',
      tags: ['all'],
      instruction: 'Night scenes: mind the reflections.',
      route: 'highway/night/',
    });
    expect(routeFor('city/a.sfs', routing)).toMatchObject({ project: 'default', batch: 'city-batch' });
  });
});

describe('configuration', () => {
  it('fills defaults', () => {
    const config = parseConfig(PipelineConfigSchema, { routing: { project: 'p' } }, 'context');
    expect(config).toMatchObject({ maxConcurrency: 5, maxReceiveCount: 5, removalPolicy: 'retain', scaleApiUrl: 'https://api.scale.com/v1' });
    expect(config.routing).toMatchObject({ presignExpiresSeconds: 21_600, clearUniqueIdOnError: true, routes: [] });
  });

  it('names every bad key', () => {
    const attempt = () =>
      parseConfig(
        PipelineConfigSchema,
        { routing: { priority: 15, tags: ['1', '2', '3', '4', '5', '6'], presignExpiresSeconds: 700_000, routes: [{ prefix: '' }] }, maxConcurrency: 1, removalPolicy: 'keep', colour: 1 },
        'CDK context',
      );
    expect(attempt).toThrow(/invalid CDK context/);
    const message = (() => {
      try {
        attempt();
      } catch (err) {
        return (err as Error).message;
      }
    })();
    for (const expected of [
      'routing.project: is required',
      'routing.priority: must be 10, 20 or 30',
      'routing.tags: must hold at most 5 tags',
      'routing.presignExpiresSeconds: must be at most 604800 (7 days)',
      'routing.routes[0].prefix: must not be empty',
      'maxConcurrency: must be at least 2 (SQS event source minimum)',
      'removalPolicy: expected one of "retain", "destroy"',
      'unknown key(s) colour',
    ]) {
      expect(message).toContain(expected);
    }
  });
});

describe('frame manifests', () => {
  it('resolves entries relative to the manifest folder, or from the root with a leading slash', async () => {
    const { resolveFrameKey, parseFrameManifest } = await import('../../../lambdas/core/scene-content.js');
    expect(resolveFrameKey('a/b/scene.frames.json', 'f/0.json')).toBe('a/b/f/0.json');
    expect(resolveFrameKey('a/b/scene.frames.json', '/x/0.json')).toBe('x/0.json');
    expect(resolveFrameKey('a/b/scene.frames.json', '../0.json')).toBe('a/0.json');
    expect(resolveFrameKey('scene.frames.json', '0.json')).toBe('0.json');
    expect(resolveFrameKey('a/scene.frames.json', '../../0.json')).toBeUndefined();
    expect(resolveFrameKey('a/scene.frames.json', 'https://example.com/0.json')).toBeUndefined();
    expect(parseFrameManifest('{"frames":["1.json","2.json"]}', 'd/m.frames.json', 10)).toEqual({ frames: ['d/1.json', 'd/2.json'] });
    expect(parseFrameManifest('{"frames":[""]}', 'd/m.frames.json', 10)).toEqual({ problem: expect.stringContaining('frames[0]: must not be empty') });
  });
});
