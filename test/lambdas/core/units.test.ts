import { describe, expect, it } from 'vitest';
import { parseConfig, PipelineConfigSchema, RoutingSchema } from '../../../lambdas/core/shared/config.js';
import { routeFor } from '../../../lambdas/core/scenes/routing.js';
import { changesInMessage, compareSequencers, decodeS3Key } from '../../../lambdas/core/scenes/s3-event.js';
import { callbackUrlFor, sceneUniqueId, secretsEqual, signCallbackRef, verifyCallbackRef } from '../../../lambdas/core/scenes/scene-identity.js';
import { encodeS3Key } from '../../../local/events.js';
import { expectedCallbackSignature, expectedUniqueId, type UploadFacts } from '../../helpers/identity.js';

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

  it('reads the uploads and removals of a notification, with versionId and sequencer, and skips other events', () => {
    const record = (eventName: string, object: Record<string, unknown>) => ({ eventName, s3: { bucket: { name: 'b' }, object: { key: 'x+y.sfs', ...object } } });
    const body = {
      Records: [
        record('ObjectCreated:CompleteMultipartUpload', { size: 3, eTag: '"e"', versionId: 'v1', sequencer: '0055AED6DCD90281E5' }),
        record('ObjectRemoved:DeleteMarkerCreated', { versionId: 'dm1', sequencer: '0055AED6DCD90281E6' }),
        record('ObjectRestore:Completed', { versionId: 'v1' }),
      ],
    };
    expect(changesInMessage(JSON.stringify(body))).toEqual([
      { kind: 'created', upload: { eventName: 'ObjectCreated:CompleteMultipartUpload', bucket: 'b', key: 'x y.sfs', size: 3, eTag: 'e', versionId: 'v1', sequencer: '0055AED6DCD90281E5' } },
      { kind: 'removed', removal: { eventName: 'ObjectRemoved:DeleteMarkerCreated', bucket: 'b', key: 'x y.sfs', versionId: 'dm1', sequencer: '0055AED6DCD90281E6' } },
    ]);
  });

  it('orders sequencers as AWS documents: right-pad the shorter with zeros, then compare', () => {
    expect(compareSequencers('0055AED6DCD90281E5', '0055AED6DCD90281E6')).toBe(-1);
    // Padded: 0055AED6DCD90281E500 > 0055AED6DCD90281E4FF.
    expect(compareSequencers('0055AED6DCD90281E5', '0055AED6DCD90281E4FF')).toBe(1);
    expect(compareSequencers('0055aed6dcd90281e5', '0055AED6DCD90281E500')).toBe(0);
  });

  it('says what is wrong with a message that is not a notification, in bounded words', () => {
    expect(() => changesInMessage('nope')).toThrow('message body is not JSON; expected an S3 event notification');
    expect(() => changesInMessage('{"Records":[{"eventName":"ObjectCreated:Put"}]}')).toThrow('Records[0].s3: expected object');
    const badKey = { Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'b' }, object: { key: 'ok.sfs%E0%A4%A' } } }] };
    expect(() => changesInMessage(JSON.stringify(badKey))).toThrow('Records[0].s3.object.key is not URL-encoded as S3 sends keys: "ok.sfs%E0%A4%A"');
    const hostile = JSON.stringify({ Records: Array.from({ length: 5_000 }, () => ({ eventName: 'x' })) });
    const message = (() => {
      try {
        changesInMessage(hostile);
      } catch (err) {
        return (err as Error).message;
      }
    })()!;
    expect(message).toMatch(/… and \d+ more problems$/);
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(1100);
  });
});

describe('scene identity', () => {
  // Known vectors, computed outside Node (sha256sum, openssl, Python): 'sfs-' + the first 40 hex digits of SHA-256
  // over the UTF-8 JSON array [bucket, key, version]. Both the product and the tests' own rule must give them.
  const VECTORS: Array<[string, UploadFacts, string]> = [
    ['a versioned upload', { bucket: 'b', key: 'k.sfs', versionId: 'v1' }, 'sfs-6075c1020613cb0d420717176e118cfa3ed89726'],
    ['an unversioned upload', { bucket: 'b', key: 'k.sfs', eTag: 'abc', sequencer: '0055AED6DCD90281E5' }, 'sfs-36b3773761d61b65e20fba7323fa95e4e841ba68'],
    ['a quoted ETag', { bucket: 'b', key: 'k.sfs', eTag: '"abc"', sequencer: '0055AED6DCD90281E5' }, 'sfs-36b3773761d61b65e20fba7323fa95e4e841ba68'],
    ['a suspended bucket (version "null")', { bucket: 'b', key: 'k.sfs', versionId: 'null', eTag: 'abc', sequencer: '0055AED6DCD90281E5' }, 'sfs-36b3773761d61b65e20fba7323fa95e4e841ba68'],
    ['a non-ASCII key (hashed as UTF-8, unescaped)', { bucket: 'scenes', key: 'städte/東京/シーン é.sfs', versionId: '3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY' }, 'sfs-24599d30c58a8b8b2ddd5f6c692561f557d6b8ff'],
    ['a key with a quote and a backslash', { bucket: 'scenes', key: 'q"uote\\back.sfs', eTag: '9b2cf535f27731c974343645a3985328', sequencer: '0062F1A7B3C4D5E6F7' }, 'sfs-80da0f114dbe8832b2bf30c2cfb6624f59583168'],
  ];

  it.each(VECTORS)('gives the known uniqueId for %s', (_name, upload, id) => {
    expect(sceneUniqueId(upload)).toBe(id);
    expect(expectedUniqueId(upload)).toBe(id);
  });

  it('is stable per object version and differs across versions, keys and buckets', () => {
    const id = 'sfs-6075c1020613cb0d420717176e118cfa3ed89726';
    expect(sceneUniqueId({ bucket: 'b', key: 'k.sfs', versionId: 'v1', eTag: 'ignored', sequencer: 'ignored' })).toBe(id);
    expect(sceneUniqueId({ bucket: 'b', key: 'k.sfs', versionId: 'v2' })).not.toBe(id);
    expect(sceneUniqueId({ bucket: 'b2', key: 'k.sfs', versionId: 'v1' })).not.toBe(id);
    expect(sceneUniqueId({ bucket: 'b', key: 'k2.sfs', versionId: 'v1' })).not.toBe(id);
  });

  it('identifies an upload without a real version by its sequencer and ETag: a re-upload is new, a redelivery is not', () => {
    const unversioned = { bucket: 'b', key: 'k.sfs', eTag: 'abc', sequencer: '0055AED6DCD90281E5' };
    expect(sceneUniqueId({ ...unversioned, sequencer: '0055AED6DCD90281F0' })).not.toBe(sceneUniqueId(unversioned));
    expect(sceneUniqueId({ ...unversioned, eTag: 'abd' })).not.toBe(sceneUniqueId(unversioned));
    expect(() => sceneUniqueId({ bucket: 'b', key: 'k.sfs', eTag: 'abc' })).toThrow('neither a versionId nor a sequencer and ETag');
    expect(() => sceneUniqueId({ bucket: 'b', key: 'k.sfs', versionId: 'null', eTag: 'abc' })).toThrow('neither a versionId nor a sequencer and ETag');
    expect(() => sceneUniqueId({ bucket: 'b', key: 'k.sfs', versionId: '', sequencer: '0055AED6DCD90281E5' })).toThrow('neither a versionId nor a sequencer and ETag');
  });

  // Known vectors: HMAC-SHA256 of the ref under the key, base64url without padding (openssl dgst -hmac | basenc).
  const REF = 'sfs-6075c1020613cb0d420717176e118cfa3ed89726';
  const SIGNATURES: Array<[string, string]> = [
    ['key-a', 'Lnvx-0kr0FjMRtHzmCMKLbDE3mNRjWWZMBsOksxR-QI'],
    ['signing-key-3c8f0a6e1d', 'JJDS4Tf9m5ZYavPBN5bcyr3aw-TPlasL0n2l2XO4dqc'],
    ['another-signing-key', 'an7JyrKjxlm2hSKWtYj9k7o53067d9jsqec2nXOM-94'],
  ];

  it.each(SIGNATURES)('signs callback refs with the known signature under %s', (key, sig) => {
    expect(signCallbackRef(REF, key)).toBe(sig);
    expect(expectedCallbackSignature(REF, key)).toBe(sig);
    expect(new URL(callbackUrlFor('https://api.example.com/prod/callback', REF, key)).searchParams.get('sig')).toBe(sig);
  });

  it('signs callback URLs that verify only with the same ref and key', () => {
    const url = new URL(callbackUrlFor('https://api.example.com/prod/callback?stage=1', REF, 'key-a'));
    expect(`${url.origin}${url.pathname}`).toBe('https://api.example.com/prod/callback');
    expect(Object.fromEntries(url.searchParams)).toEqual({ stage: '1', ref: REF, sig: 'Lnvx-0kr0FjMRtHzmCMKLbDE3mNRjWWZMBsOksxR-QI' });
    expect(verifyCallbackRef(REF, 'Lnvx-0kr0FjMRtHzmCMKLbDE3mNRjWWZMBsOksxR-QI', 'key-a')).toBe(true);
    // Right length and alphabet, wrong ref or key: only the MAC differs.
    expect(verifyCallbackRef('sfs-0000000000000000000000000000000000000000', 'Lnvx-0kr0FjMRtHzmCMKLbDE3mNRjWWZMBsOksxR-QI', 'key-a')).toBe(false);
    expect(verifyCallbackRef(REF, 'an7JyrKjxlm2hSKWtYj9k7o53067d9jsqec2nXOM-94', 'key-a')).toBe(false);
    expect(verifyCallbackRef(REF, 'Lnvx-0kr0FjMRtHzmCMKLbDE3mNRjWWZMBsOksxR-QJ', 'key-a')).toBe(false);
    // Other encodings of the right MAC are not the signature: padded, standard base64.
    expect(verifyCallbackRef(REF, 'Lnvx-0kr0FjMRtHzmCMKLbDE3mNRjWWZMBsOksxR-QI=', 'key-a')).toBe(false);
    expect(verifyCallbackRef(REF, 'Lnvx+0kr0FjMRtHzmCMKLbDE3mNRjWWZMBsOksxR+QI', 'key-a')).toBe(false);
    expect(verifyCallbackRef(REF, 'Lnvx-0kr0FjMRtHzmCMKLbDE3mNRjWWZMBsOksxR-Q', 'key-a')).toBe(false);
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
    const { resolveFrameKey, parseFrameManifest } = await import('../../../lambdas/core/scenes/scene-content.js');
    // Scope: the manifest's folder a/b/.
    expect(resolveFrameKey('a/b/scene.frames.json', 'f/0.json', 'a/b/')).toBe('a/b/f/0.json');
    expect(resolveFrameKey('a/b/scene.frames.json', '/x/0.json', 'a/b/')).toBe('a/b/x/0.json');
    expect(resolveFrameKey('a/b/scene.frames.json', './f/../g/0.json', 'a/b/')).toBe('a/b/g/0.json');
    expect(resolveFrameKey('a/b/scene.frames.json', '../b/0.json', 'a/b/')).toBe('a/b/0.json');
    expect(resolveFrameKey('a/b/scene.frames.json', '../0.json', 'a/b/')).toBeUndefined();
    expect(resolveFrameKey('a/b/scene.frames.json', '..', 'a/b/')).toBeUndefined();
    expect(resolveFrameKey('a/b/scene.frames.json', '/../0.json', 'a/b/')).toBeUndefined();
    expect(resolveFrameKey('a/b/scene.frames.json', '../../../a/b/0.json', 'a/b/')).toBeUndefined();
    expect(resolveFrameKey('a/b/scene.frames.json', 'https://example.com/0.json', 'a/b/')).toBeUndefined();
    expect(resolveFrameKey('a/b/scene.frames.json', 'f/', 'a/b/')).toBeUndefined();
    expect(resolveFrameKey('a/b/scene.frames.json', 'x//y.json', 'a/b/')).toBeUndefined();
    expect(resolveFrameKey('a/b/scene.frames.json', 'x\\..\\y.json', 'a/b/')).toBeUndefined();
    // Scope widened to a route prefix a/: a sibling folder is fine, outside it is not.
    expect(resolveFrameKey('a/b/scene.frames.json', '../c/0.json', 'a/')).toBe('a/c/0.json');
    expect(resolveFrameKey('a/b/scene.frames.json', '/c/0.json', 'a/')).toBe('a/c/0.json');
    expect(resolveFrameKey('a/b/scene.frames.json', '../../z/0.json', 'a/')).toBeUndefined();
    // At the bucket's root the scope is the whole bucket, and nothing climbs above it.
    expect(resolveFrameKey('scene.frames.json', '0.json', '')).toBe('0.json');
    expect(resolveFrameKey('scene.frames.json', '../0.json', '')).toBeUndefined();
    expect(parseFrameManifest('{"frames":["1.json","2.json"]}', 'd/m.frames.json', 10, 'd/')).toEqual({ frames: ['d/1.json', 'd/2.json'] });
    expect(parseFrameManifest('{"frames":[""]}', 'd/m.frames.json', 10, 'd/')).toEqual({ problem: expect.stringContaining('frames[0]: must not be empty') });
    expect(parseFrameManifest('{"frames":["/team-b/private/export.json"]}', 'team-a/m.frames.json', 10, 'team-a/')).toEqual({ frames: ['team-a/team-b/private/export.json'] });
    expect(parseFrameManifest('{"frames":["../team-b/private/export.json"]}', 'team-a/m.frames.json', 10, 'team-a/')).toEqual({
      problem: 'frames[0] "../team-b/private/export.json" is not a key inside "team-a/"; frames must stay within the manifest\'s scope',
    });
  });

  it('never resolves a dot segment to the folder itself or above it, and takes percent signs literally', async () => {
    const { resolveFrameKey, parseFrameManifest } = await import('../../../lambdas/core/scenes/scene-content.js');
    // A folder is not a frame: '.', '..' and 'x/..' name folders (the scope itself, its parent), never a key.
    for (const entry of ['..', '.', 'f/..', './', 'f/./..', '../b', '../b/.', '/.', '/..', '/f/..']) {
      expect(resolveFrameKey('a/b/scene.frames.json', entry, 'a/b/'), entry).toBeUndefined();
    }
    // Widened to the route prefix a/: climbing to a/ itself, or above it, is still no key.
    for (const entry of ['..', '../..', 'f/../..', '/..', '/.', '../.']) {
      expect(resolveFrameKey('a/b/scene.frames.json', entry, 'a/'), `${entry} (route scope)`).toBeUndefined();
    }
    for (const entry of ['..', '.', 'f/..', '/']) expect(resolveFrameKey('scene.frames.json', entry, ''), `${entry} (bucket root)`).toBeUndefined();
    // An entry ending in '.' or '..' names a folder wherever it lands: in route scope a/, '.' from a/b/ would be the
    // key 'a/b' (the folder's own name), and 'f/.' the key 'a/b/f'.
    for (const entry of ['.', 'c/..', 'f/.', '../b/.']) expect(resolveFrameKey('a/b/scene.frames.json', entry, 'a/'), `${entry} (route scope, a folder)`).toBeUndefined();
    expect(resolveFrameKey('a/b/scene.frames.json', 'f/.', 'a/b/')).toBeUndefined();
    // Keys are not URLs: '%2e%2e' is three characters of a key's name, never a '..' (S3 does not decode keys).
    expect(resolveFrameKey('a/b/scene.frames.json', '%2e%2e', 'a/b/')).toBe('a/b/%2e%2e');
    expect(resolveFrameKey('a/b/scene.frames.json', '%2e%2e/0.json', 'a/b/')).toBe('a/b/%2e%2e/0.json');
    expect(resolveFrameKey('a/b/scene.frames.json', '.%2E/%2e./0.json', 'a/b/')).toBe('a/b/.%2E/%2e./0.json');
    expect(resolveFrameKey('scene.frames.json', '%2e%2e/0.json', '')).toBe('%2e%2e/0.json');
    // More than two dots, or dots inside a name, are ordinary names.
    expect(resolveFrameKey('a/b/scene.frames.json', '...', 'a/b/')).toBe('a/b/...');
    expect(resolveFrameKey('a/b/scene.frames.json', '..0.json', 'a/b/')).toBe('a/b/..0.json');
    expect(parseFrameManifest('{"frames":["0.json",".."]}', 'a/b/m.frames.json', 10, 'a/b/')).toEqual({
      problem: 'frames[1] ".." is not a key inside "a/b/"; frames must stay within the manifest\'s scope',
    });
  });

  it('takes the scope from the config: the folder by default, the route prefix when widened', async () => {
    const { frameScopeOf } = await import('../../../lambdas/core/scenes/scene-content.js');
    const routing = parseConfig(RoutingSchema, { project: 'p', routes: [{ prefix: 'fleet/' }] }, 'routing');
    expect(frameScopeOf('fleet/car1/drive.frames.json', routing)).toBe('fleet/car1/');
    expect(frameScopeOf('fleet/car1/drive.frames.json', { ...routing, frameScope: 'route' })).toBe('fleet/');
    expect(frameScopeOf('other/drive.frames.json', { ...routing, frameScope: 'route' })).toBe('other/');
    expect(frameScopeOf('drive.frames.json', routing)).toBe('');
    // A prefix that is not a folder never becomes a scope (config refuses it for frameScope "route").
    expect(frameScopeOf('team-a/drive.frames.json', { ...routing, frameScope: 'route', routes: [{ prefix: 'team-a' }] })).toBe('team-a/');
    expect(() => parseConfig(RoutingSchema, { project: 'p', frameScope: 'route', routes: [{ prefix: 'team-a' }] }, 'routing')).toThrow(
      'routes[0].prefix: must end with \'/\' when frameScope is "route"',
    );
  });

  it('bounds what a hostile manifest can make it say, and never overflows', async () => {
    const { parseFrameManifest } = await import('../../../lambdas/core/scenes/scene-content.js');
    const numbers = JSON.stringify({ frames: Array.from({ length: 300_000 }, (_, i) => i) });
    expect(parseFrameManifest(numbers, 'd/m.frames.json', 2_000, 'd/')).toEqual({ problem: 'the frame manifest lists 300000 frames; at most 2000 are allowed' });
    const wrong = JSON.stringify({ frames: Array.from({ length: 2_000 }, (_, i) => i) });
    const problem = (parseFrameManifest(wrong, 'd/m.frames.json', 2_000, 'd/') as { problem: string }).problem;
    expect(problem).toMatch(/^the frame manifest is not \{"frames": \["<key>", …\]\}: 2000 of 2000 entries are invalid: frames\[0\]: expected a key \(string\); /);
    expect(problem).toMatch(/… and 1980 more problems$/);
    expect(Buffer.byteLength(problem)).toBeLessThanOrEqual(1024);
    const longEntry = 'x'.repeat(450_000);
    const far = (parseFrameManifest(JSON.stringify({ frames: [`../${longEntry}`] }), 'd/m.frames.json', 10, 'd/') as { problem: string }).problem;
    expect(far.length).toBeLessThan(400);
  });
});
