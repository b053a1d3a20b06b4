import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPresignedRequest, type Credentials } from '../../local/presign-check.js';
import type { S3Error } from '../../local/s3/xml.js';
import { presignedUrlExpiry } from '../helpers/identity.js';
import { CREDENTIALS, startKit, type Kit } from './local-s3-kit.js';

const run = promisify(execFile);

/** The verdict of the presign check on a URL as a client would send it: 'ok' or "<status> <code>". */
function verdict(url: string, credentials: Credentials, now: Date, headers: Record<string, string> = {}): string {
  const [, host, rawPath, rawQuery] = /^https?:\/\/([^/]+)([^?]*)\?(.*)$/.exec(url)!;
  try {
    checkPresignedRequest({ method: 'GET', rawPath: rawPath!, rawQuery: rawQuery!, headers: { host: host!, ...headers } }, credentials, now);
    return 'ok';
  } catch (err) {
    return `${(err as S3Error).status} ${(err as S3Error).code}`;
  }
}

describe('the presign check on URLs signed elsewhere (literal URLs)', () => {
  // The example credentials and URLs of S3's own documentation.
  const EXAMPLE = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
  const DOC_SIGV4 = 'https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';
  const DOC_SIGV2 = 'https://s3.amazonaws.com/johnsmith/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620';
  // Signed by botocore 1.43 (boto3's signer) for LOCALKEY: a key with a space, '+', '%', '(' and unicode.
  const BOTO_SIGV2 = 'http://127.0.0.1:4569/data/drive%201/a%2Bb%25c/%C3%BCn%C3%AF%20%281%29.sfs?versionId=v-1&response-content-disposition=attachment%3B%20filename%3D%22x%20y.sfs%22&AWSAccessKeyId=LOCALKEY&Signature=hI02yu%2BxV4BVFf8Kbs72bdxVTyQ%3D&Expires=1800000600';
  const BOTO_SIGV4 = 'http://127.0.0.1:4569/data/drive%201/a%2Bb%25c/%C3%BCn%C3%AF%20%281%29.sfs?versionId=v-1&response-content-type=text%2Fplain%3B%20charset%3Dutf-8&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=LOCALKEY%2F20261130%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261130T120000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host%3Brange&X-Amz-Signature=ce8e0bc1ad0ad3dec59b9b68b266eaf15f074a45c13b7752c96d7caac537b67e';

  it('accepts the documented SigV4 and SigV2 examples until they expire', () => {
    expect(verdict(DOC_SIGV4, EXAMPLE, new Date('2013-05-24T23:59:59Z'))).toBe('ok');
    expect(verdict(DOC_SIGV4, EXAMPLE, new Date('2013-05-25T00:00:01Z'))).toBe('403 AccessDenied');
    expect(verdict(DOC_SIGV2, EXAMPLE, new Date(1175139620_000))).toBe('ok');
    expect(verdict(DOC_SIGV2, EXAMPLE, new Date(1175139621_000))).toBe('403 AccessDenied');
    expect(verdict(DOC_SIGV2.replace('puppy', 'kitten'), EXAMPLE, new Date(1175139620_000))).toBe('403 SignatureDoesNotMatch');
  });

  it('dies when the URL itself says: SigV4 X-Amz-Date plus X-Amz-Expires, SigV2 Expires (the tests\' expiry rule)', () => {
    expect(presignedUrlExpiry(DOC_SIGV4).toISOString()).toBe('2013-05-25T00:00:00.000Z');
    expect(presignedUrlExpiry(DOC_SIGV2).toISOString()).toBe('2007-03-29T03:40:20.000Z');
    expect(presignedUrlExpiry(BOTO_SIGV4).toISOString()).toBe('2026-11-30T12:10:00.000Z');
    expect(presignedUrlExpiry(BOTO_SIGV2).toISOString()).toBe('2027-01-15T08:10:00.000Z');
    // The stand-in agrees: a second before that time the URL works, a second after it does not.
    const around = (url: string, credentials: Credentials, headers: Record<string, string> = {}) => {
      const end = presignedUrlExpiry(url).getTime();
      return [verdict(url, credentials, new Date(end - 1_000), headers), verdict(url, credentials, new Date(end + 1_000), headers)];
    };
    expect(around(DOC_SIGV4, EXAMPLE)).toEqual(['ok', '403 AccessDenied']);
    expect(around(BOTO_SIGV4, CREDENTIALS, { range: 'bytes=0-3' })).toEqual(['ok', '403 AccessDenied']);
    expect(around(BOTO_SIGV2, CREDENTIALS)).toEqual(['ok', '403 AccessDenied']);
  });

  it('signs a SigV2 URL\'s versionId and response overrides, and nothing else in its query', () => {
    const at = new Date(1800000000_000);
    expect(verdict(BOTO_SIGV2, CREDENTIALS, at)).toBe('ok');
    expect(verdict(`${BOTO_SIGV2}&x-id=GetObject`, CREDENTIALS, at)).toBe('ok');
    expect(verdict(BOTO_SIGV2.replace('versionId=v-1', 'versionId=v-2'), CREDENTIALS, at)).toBe('403 SignatureDoesNotMatch');
    expect(verdict(BOTO_SIGV2.replace(/&?versionId=v-1&?/, ''), CREDENTIALS, at)).toBe('403 SignatureDoesNotMatch');
    expect(verdict(`${BOTO_SIGV2}&response-content-type=text%2Fhtml`, CREDENTIALS, at)).toBe('403 SignatureDoesNotMatch');
    expect(verdict(BOTO_SIGV2.replace('Expires=1800000600', 'Expires=1800009999'), CREDENTIALS, at)).toBe('403 SignatureDoesNotMatch');
    expect(verdict(BOTO_SIGV2, CREDENTIALS, at, { 'content-type': 'text/html' })).toBe('403 SignatureDoesNotMatch');
    expect(verdict(BOTO_SIGV2, CREDENTIALS, new Date(1800000601_000))).toBe('403 AccessDenied');
    expect(verdict(BOTO_SIGV2, { ...CREDENTIALS, accessKeyId: 'OTHER' }, at)).toBe('403 InvalidAccessKeyId');
  });

  it('signs a SigV4 URL\'s extra signed header and whole query, with UNSIGNED-PAYLOAD as the payload hash', () => {
    const at = new Date('2026-11-30T12:05:00Z');
    expect(verdict(BOTO_SIGV4, CREDENTIALS, at, { range: 'bytes=0-3' })).toBe('ok');
    expect(verdict(BOTO_SIGV4, CREDENTIALS, at)).toBe('403 SignatureDoesNotMatch');
    expect(verdict(BOTO_SIGV4, CREDENTIALS, at, { range: 'bytes=0-99' })).toBe('403 SignatureDoesNotMatch');
    expect(verdict(`${BOTO_SIGV4}&x-id=GetObject`, CREDENTIALS, at, { range: 'bytes=0-3' })).toBe('403 SignatureDoesNotMatch');
    expect(verdict(BOTO_SIGV4, CREDENTIALS, at, { range: 'bytes=0-3', 'x-amz-meta-owner': 'mallory' })).toBe('403 AccessDenied');
    expect(verdict(BOTO_SIGV4, CREDENTIALS, new Date('2026-11-30T12:10:01Z'), { range: 'bytes=0-3' })).toBe('403 AccessDenied');
  });

  it('refuses malformed query authentication with the errors S3 gives', () => {
    const at = new Date('2026-11-30T12:05:00Z');
    const refusal = (url: string) => verdict(url, CREDENTIALS, at, { range: 'bytes=0-3' });
    expect(refusal(BOTO_SIGV4.replace(/&X-Amz-Date=[^&]+/, ''))).toBe('400 AuthorizationQueryParametersError');
    expect(refusal(BOTO_SIGV4.replace('%2Fus-east-1%2F', '%2Feu-west-1%2F'))).toBe('400 AuthorizationQueryParametersError');
    expect(refusal(BOTO_SIGV4.replace('X-Amz-Expires=600', 'X-Amz-Expires=604801'))).toBe('400 AuthorizationQueryParametersError');
    expect(refusal(`${BOTO_SIGV4}&Signature=abc`)).toBe('400 InvalidArgument');
    expect(refusal(BOTO_SIGV2.replace(/&Signature=[^&]+/, ''))).toBe('403 AccessDenied');
  });
});

let kit: Kit;
let dir: string;
beforeAll(async () => {
  kit = await startKit('enabled');
  dir = await mkdtemp(join(tmpdir(), 'presigned-urls-'));
  await writeFile(join(dir, 'default-config'), '');
  await writeFile(join(dir, 'sigv4-config'), '[default]\ns3 =\n  signature_version = s3v4\n');
});
afterAll(async () => {
  await kit.close();
  await rm(dir, { recursive: true, force: true });
});

/** `aws s3 presign`, configured only through a clean environment, as a user of the local pipeline would run it. */
async function cliPresign(config: 'default-config' | 'sigv4-config', key: string, expiresIn = 300): Promise<string> {
  const { stdout } = await run('aws', ['s3', 'presign', `s3://data/${key}`, '--expires-in', String(expiresIn), '--region', 'us-east-1', '--endpoint-url', kit.s3.endpoint], {
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      AWS_CONFIG_FILE: join(dir, config),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    },
  });
  return stdout.trim();
}

const sdkPresign = (key: string, extra: { VersionId?: string; Range?: string; ResponseContentDisposition?: string } = {}, expiresIn = 300) =>
  getSignedUrl(kit.client, new GetObjectCommand({ Bucket: 'data', Key: key, ...extra }), { expiresIn });

const KEYS = ['presign/plain.sfs', 'presign/drive 1/scene (2).sfs', 'presign/a+b=c&d.sfs', 'presign/100%/ünïcødé 雪.sfs'];
const put = (key: string, body: string) => kit.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: body }));
const fetched = async (url: string, headers: Record<string, string> = {}) => {
  const answer = await fetch(url, { headers });
  const text = await answer.text();
  return [answer.status, /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? text];
};

/** The same URL changed the ways a holder might: its signature, its lifetime, its key, the version it names. */
function tampered(url: string, otherKeyPath: string, versionId: string): Record<string, string> {
  const path = new URL(url).pathname;
  return {
    signature: url.replace(/([?&](?:X-Amz-)?Signature=)(.)/, (_, name: string, first: string) => `${name}${first === 'A' ? 'B' : 'A'}`),
    expiry: url.replace(/([?&](?:X-Amz-)?Expires=)(\d+)/, (_, name: string, value: string) => `${name}${Number(value) + 3600}`),
    key: url.replace(path, otherKeyPath),
    version: `${url}&versionId=${encodeURIComponent(versionId)}`,
  };
}

const REFUSED = { signature: [403, 'SignatureDoesNotMatch'], expiry: [403, 'SignatureDoesNotMatch'], key: [403, 'SignatureDoesNotMatch'], version: [403, 'SignatureDoesNotMatch'] };

describe.each([
  ['its default signature (SigV2 with CLI v1)', 'default-config'],
  ['signature_version = s3v4', 'sigv4-config'],
] as const)('a URL from `aws s3 presign` with %s', (_, config) => {
  it('serves each key\'s bytes, and is refused once tampered with', async () => {
    const versions: string[] = [];
    for (const key of KEYS) versions.push((await put(key, `${config}: bytes of ${key}`)).VersionId!);
    for (const key of KEYS) {
      const url = await cliPresign(config, key);
      if (config === 'sigv4-config') expect(url).toContain('X-Amz-Algorithm=AWS4-HMAC-SHA256');
      expect(await fetched(url)).toEqual([200, `${config}: bytes of ${key}`]);
    }
    const url = await cliPresign(config, KEYS[3]!);
    const changed = tampered(url, '/data/presign/plain.sfs', versions[3]!);
    expect(Object.fromEntries(await Promise.all(Object.entries(changed).map(async ([how, u]) => [how, await fetched(u)])))).toEqual(REFUSED);
  }, 30_000);
});

describe('a URL from the SDK presigner (getSignedUrl)', () => {
  it('serves each key, the exact version it names, the range it signed and the response headers it overrides', async () => {
    for (const key of KEYS) {
      await put(key, `sdk: bytes of ${key}`);
      expect(await fetched(await sdkPresign(key))).toEqual([200, `sdk: bytes of ${key}`]);
    }
    const old = await put('presign/versioned.sfs', 'old bytes');
    await put('presign/versioned.sfs', 'new bytes');
    expect(await fetched(await sdkPresign('presign/versioned.sfs', { VersionId: old.VersionId }))).toEqual([200, 'old bytes']);

    const ranged = await sdkPresign('presign/versioned.sfs', { Range: 'bytes=0-2' });
    expect(new URL(ranged).searchParams.get('X-Amz-SignedHeaders')).toBe('host;range');
    expect(await fetched(ranged, { range: 'bytes=0-2' })).toEqual([206, 'new']);
    expect(await fetched(ranged)).toEqual([403, 'SignatureDoesNotMatch']);

    const attachment = await sdkPresign('presign/versioned.sfs', { ResponseContentDisposition: 'attachment; filename="scene 1.sfs"' });
    const answer = await fetch(attachment);
    expect([answer.status, answer.headers.get('content-disposition'), await answer.text()]).toEqual([200, 'attachment; filename="scene 1.sfs"', 'new bytes']);
  });

  it('is refused once tampered with', async () => {
    const first = await put(KEYS[2]!, 'first');
    const second = await put(KEYS[2]!, 'second');
    const url = await sdkPresign(KEYS[2]!, { VersionId: first.VersionId });
    expect(await fetched(url)).toEqual([200, 'first']);
    const changed = tampered(url, '/data/presign/plain.sfs', second.VersionId!);
    changed.version = url.replace(encodeURIComponent(first.VersionId!), encodeURIComponent(second.VersionId!));
    expect(Object.fromEntries(await Promise.all(Object.entries(changed).map(async ([how, u]) => [how, await fetched(u)])))).toEqual(REFUSED);
  });
});

describe('expiry and other signers', () => {
  it('refuses every kind of URL once its lifetime has passed', async () => {
    await put('presign/short.sfs', 'short-lived');
    const urls = [await cliPresign('default-config', 'presign/short.sfs', 1), await cliPresign('sigv4-config', 'presign/short.sfs', 1), await sdkPresign('presign/short.sfs', {}, 1)];
    expect(await fetched(urls[2]!)).toEqual([200, 'short-lived']);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const answers = await Promise.all(urls.map(async (url) => fetch(url).then(async (r) => [r.status, /<Message>([^<]+)</.exec(await r.text())?.[1]])));
    expect(answers).toEqual([[403, 'Request has expired'], [403, 'Request has expired'], [403, 'Request has expired']]);
  }, 30_000);

  it('serves a SigV2 URL that botocore signed (literal, valid until 2100), whatever CLI is installed', async () => {
    await put('presign/botocore/a+b%c d/ünï.sfs', 'signed by botocore');
    const url = `${kit.s3.endpoint}/data/presign/botocore/a%2Bb%25c%20d/%C3%BCn%C3%AF.sfs?response-content-type=text%2Fplain&AWSAccessKeyId=LOCALKEY&Signature=4VWefWJZa6sZyzGGdCKZN5OdbEQ%3D&Expires=4102444800`;
    const answer = await fetch(url);
    expect([answer.status, answer.headers.get('content-type'), await answer.text()]).toEqual([200, 'text/plain', 'signed by botocore']);
    expect(await fetched(url.replace('text%2Fplain', 'text%2Fhtml'))).toEqual([403, 'SignatureDoesNotMatch']);
  });
});
