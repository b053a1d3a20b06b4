import type { AttributeValue } from 'aws-lambda';
import type { DynamoItem } from './events.js';

/**
 * A number as DynamoDB compares it: 1, 1.0 and 10E-1 are one number. Digits without leading or trailing
 * zeros, and the exponent of the first digit.
 */
function canonicalNumber(text: string): string {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!match) return text;
  const [, sign, whole = '', fraction = '', exponent = '0'] = match;
  const digits = `${whole}${fraction}`;
  const first = digits.search(/[1-9]/);
  if (first < 0) return '0';
  const significant = digits.slice(first).replace(/0+$/, '');
  const magnitude = whole.length - first - 1 + Number(exponent);
  return `${sign === '-' ? '-' : ''}${significant}e${magnitude}`;
}

/** A value in a form where equal values are equal strings: sets unordered, maps unordered, numbers by value. */
function canonical(value: AttributeValue): unknown {
  if (value.N !== undefined) return { N: canonicalNumber(value.N) };
  if (value.NS) return { NS: value.NS.map(canonicalNumber).sort() };
  if (value.SS) return { SS: [...value.SS].sort() };
  if (value.BS) return { BS: [...value.BS].sort() };
  if (value.L) return { L: value.L.map(canonical) };
  if (value.M) return { M: canonicalItem(value.M) };
  return value;
}

function canonicalItem(item: DynamoItem): unknown {
  return Object.keys(item)
    .sort()
    .map((name) => [name, canonical(item[name]!)]);
}

/**
 * Whether two images are the same item. DynamoDB writes no stream record for a write that did not change the
 * item (a put of the very same item, an update that sets what is there), so the stream needs this comparison.
 */
export function sameImage(a: DynamoItem | undefined, b: DynamoItem | undefined): boolean {
  if (!a || !b) return a === b;
  return JSON.stringify(canonicalItem(a)) === JSON.stringify(canonicalItem(b));
}

/** The item's key attributes, in key-schema order; undefined if one is missing (DynamoDB will refuse the write). */
export function keyOf(item: DynamoItem | undefined, keyNames: string[]): DynamoItem | undefined {
  if (!item || typeof item !== 'object') return undefined;
  const key: DynamoItem = {};
  for (const name of keyNames) {
    if (!item[name]) return undefined;
    key[name] = item[name];
  }
  return key;
}
