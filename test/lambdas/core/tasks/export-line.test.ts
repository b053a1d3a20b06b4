import { describe, expect, it } from 'vitest';
import { ExportLineSchema, exportLineOf, exportLineText, nestsDeeperThan, type ExportLine } from '../../../../lambdas/core/tasks/export-line.js';
import type { TaskRecord } from '../../../../lambdas/core/tasks/task-record.js';

// Every hex digit at both ends of its ranges (0, 9, a, f): the shape downstream jobs validate uniqueId against.
const ID = 'sfs-0123456789abcdef0123456789abcdef01234567';
const base: TaskRecord = { schemaVersion: 1, uniqueId: ID, status: 'pending', bucket: 'scenes', key: 'drive/a b.sfs', sceneFormat: 'sensor_fusion', createdAt: 'c', updatedAt: 'u' };
const noArchive = async (): Promise<never> => {
  throw new Error('the archive is not read for this record');
};
/** Nested arrays `levels` deep: [[[…]]]. */
const nested = (levels: number): unknown => {
  let value: unknown = [];
  for (let i = 1; i < levels; i++) value = [value];
  return value;
};
const line: ExportLine = { schemaVersion: 1, 'source-ref': 's3://scenes/k.sfs', uniqueId: ID, status: 'completed', createdAt: 'c', updatedAt: 'u' };

describe('exportLineOf: one record as one export line', () => {
  // Strictly: a field the record lacks is no key of the line at all (`in`, Object.keys and a spread over defaults see
  // a key holding undefined), not merely one JSON.stringify would drop.
  it('writes only the fields the record has, and nothing of a response when there is none', async () => {
    expect(await exportLineOf(base, noArchive)).toStrictEqual({ schemaVersion: 1, 'source-ref': 's3://scenes/drive/a b.sfs', uniqueId: ID, status: 'pending', createdAt: 'c', updatedAt: 'u' });
    const full: TaskRecord = { ...base, versionId: 'v1', taskId: 't1', project: 'p', batch: 'b', submittedAt: 's', completedAt: 'd', status: 'completed' };
    expect(await exportLineOf(full, noArchive)).toStrictEqual({
      schemaVersion: 1, 'source-ref': 's3://scenes/drive/a b.sfs', versionId: 'v1', uniqueId: ID, taskId: 't1', status: 'completed', project: 'p', batch: 'b', createdAt: 'c', updatedAt: 'u', submittedAt: 's', completedAt: 'd',
    });
  });

  it('parses an inline response, and names one that is not JSON', async () => {
    expect(await exportLineOf({ ...base, responseJson: '{"labels":[1,2]}' }, noArchive)).toMatchObject({ response: { labels: [1, 2] }, responseSource: 'inline' });
    // An inline response wins over a reference: the archive is never read then.
    expect(await exportLineOf({ ...base, responseJson: 'null', responseRef: { bucket: 'r', key: 'k' } }, noArchive)).toMatchObject({ response: null, responseSource: 'inline' });
    const broken = await exportLineOf({ ...base, responseJson: '{"labels":' }, noArchive);
    expect([broken.response, broken.responseError, broken.responseSource]).toEqual([undefined, "the record's inline response (responseJson) is not JSON", 'inline']);
    expect('response' in broken).toBe(false);
    // Empty text is still an inline response, and not JSON.
    expect(await exportLineOf({ ...base, responseJson: '', responseRef: { bucket: 'r', key: 'k' } }, noArchive)).toMatchObject({ responseError: "the record's inline response (responseJson) is not JSON", responseSource: 'inline' });
  });

  it('reads a large response from its archived callback, or says why it could not', async () => {
    const asked: unknown[] = [];
    const archived = await exportLineOf({ ...base, responseRef: { bucket: 'results', key: 'cb/1.json' } }, async (ref) => (asked.push(ref), { response: { big: true } }));
    expect(asked).toEqual([{ bucket: 'results', key: 'cb/1.json' }]);
    expect(archived).toMatchObject({ response: { big: true }, responseSource: 'archive' });
    expect(archived.responseError).toBeUndefined();
    const missing = await exportLineOf({ ...base, responseRef: { bucket: 'results', key: 'cb/2.json' } }, async () => ({ error: 'the archived callback is gone' }));
    expect([missing.responseError, missing.responseSource, 'response' in missing]).toEqual(['the archived callback is gone', 'archive', false]);
  });

  it('writes a response up to 1000 levels deep, and names where a deeper one can be read', async () => {
    expect((await exportLineOf({ ...base, responseJson: JSON.stringify(nested(1000)) }, noArchive)).responseError).toBeUndefined();
    const inline = await exportLineOf({ ...base, responseJson: JSON.stringify(nested(1001)) }, noArchive);
    expect(inline.responseError).toBe("Scale's response in the record (responseJson) nests objects and arrays more than 1000 levels deep: too deep to write as a JSON line (read it from there)");
    expect('response' in inline).toBe(false);
    const archive = await exportLineOf({ ...base, responseRef: { bucket: 'results', key: 'cb/deep.json' } }, async () => ({ response: nested(1001) }));
    expect(archive).toMatchObject({
      responseSource: 'archive',
      responseError: "Scale's response in the archived callback s3://results/cb/deep.json nests objects and arrays more than 1000 levels deep: too deep to write as a JSON line (read it from there)",
    });
  });

  it('lists result files with their copy as an s3 URI only when both bucket and key are known', async () => {
    const record: TaskRecord = {
      ...base,
      resultFiles: [
        { sourceUrl: 'https://a/1', bucket: 'results', key: 'files/1', bytes: 0, sha256: 'ab' },
        { sourceUrl: 'https://a/2', bucket: 'results', error: 'too large' },
        { sourceUrl: 'https://a/3', key: 'files/3' },
      ],
    };
    expect((await exportLineOf(record, noArchive)).resultFiles).toStrictEqual([
      { sourceUrl: 'https://a/1', s3Uri: 's3://results/files/1', bytes: 0, sha256: 'ab' },
      { sourceUrl: 'https://a/2', error: 'too large' },
      { sourceUrl: 'https://a/3' },
    ]);
    expect(await exportLineOf({ ...base, resultFiles: [] }, noArchive)).toMatchObject({ resultFiles: [] });
  });
});

describe('exportLineText: a line is always written', () => {
  it('writes a serializable line as it is', () => {
    const withResponse = { ...line, response: { a: 1 } };
    expect(exportLineText(withResponse)).toEqual({ text: JSON.stringify(withResponse), line: withResponse });
  });

  it('drops a response that cannot be serialized and says why', () => {
    const { text, line: written } = exportLineText({ ...line, response: { count: 10n } });
    const expected = { ...line, responseError: "Scale's response cannot be written as JSON (Do not know how to serialize a BigInt)" };
    expect(written).toEqual(expected);
    expect(JSON.parse(text)).toEqual(expected);
  });
});

describe('ExportLineSchema: the contract downstream jobs validate against', () => {
  const fails = (overrides: Record<string, unknown>) => !ExportLineSchema.safeParse({ ...line, ...overrides }).success;

  it('accepts a full line and strips fields a newer exporter may add', () => {
    const full = { ...line, versionId: 'v', taskId: 't', project: 'p', batch: 'b', submittedAt: 's', completedAt: 'd', response: [1], responseSource: 'archive', resultFiles: [{ sourceUrl: 'x', s3Uri: 's3://r/k', bytes: 1, sha256: 'h', error: 'e' }] };
    expect(ExportLineSchema.parse({ ...full, addedLater: 1 })).toEqual(full);
    expect(ExportLineSchema.safeParse({ ...line, responseError: 'gone', responseSource: 'inline' }).success).toBe(true);
  });

  it('refuses a uniqueId that is not sfs- and exactly 40 lower-case hex digits', () => {
    expect(fails({})).toBe(false);
    for (const uniqueId of [ID.slice(0, -1), `${ID}0`, `x${ID}`, `${ID}\n`, ID.replace('sfs-', 'sfs_'), ID.replace('a', 'A'), ID.replace('f', 'g'), `sfs-${'-'.repeat(40)}`]) {
      expect([uniqueId, fails({ uniqueId })]).toEqual([uniqueId, true]);
    }
  });

  it('refuses a source-ref or a copy that is not an s3 URI, an unknown status or version, and a line with both a response and an error', () => {
    expect(fails({ 'source-ref': 'https://scenes/k.sfs' })).toBe(true);
    expect(fails({ resultFiles: [{ sourceUrl: 'x', s3Uri: 'https://r/k' }] })).toBe(true);
    expect(fails({ status: 'done' })).toBe(true);
    expect(fails({ schemaVersion: 2 })).toBe(true);
    expect(fails({ responseSource: 'elsewhere' })).toBe(true);
    const both = ExportLineSchema.safeParse({ ...line, response: 0, responseError: 'x' });
    expect(both.success ? [] : both.error.issues.map((i) => i.message)).toEqual(['a line has either a response or a responseError, not both']);
    // A response of null is still a response; neither alone is refused.
    expect(fails({ response: null, responseError: 'x' })).toBe(true);
    expect(fails({ response: null })).toBe(false);
  });
});

describe('nestsDeeperThan: depth without recursion', () => {
  it('counts objects and arrays only, up to the limit inclusive', () => {
    expect(nestsDeeperThan(null, 0)).toBe(false);
    expect(nestsDeeperThan('text', 0)).toBe(false);
    expect(nestsDeeperThan(7, 0)).toBe(false);
    expect(nestsDeeperThan({}, 0)).toBe(true);
    expect(nestsDeeperThan({}, 1)).toBe(false);
    expect(nestsDeeperThan({ a: { b: null, c: 'x' } }, 2)).toBe(false);
    expect(nestsDeeperThan({ a: 1, b: { c: [] } }, 2)).toBe(true);
    expect(nestsDeeperThan([1, [2, [3]]], 3)).toBe(false);
    expect(nestsDeeperThan([1, [2, [3, {}]]], 3)).toBe(true);
    // Far deeper than any stack could recurse.
    expect(nestsDeeperThan(nested(100_000), 99_999)).toBe(true);
    expect(nestsDeeperThan(nested(100_000), 100_000)).toBe(false);
  });
});
