import { randomBytes } from 'node:crypto';

export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** `<name>value</name>` with the value escaped; nothing when the value is undefined. */
export function element(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? '' : `<${name}>${escapeXml(String(value))}</${name}>`;
}

export function xmlDocument(root: string, inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${S3_XMLNS}">${inner}</${root}>`;
}

/** The text of every `<name>…</name>` in a small request body (CompleteMultipartUpload, Delete, versioning). */
export function elementsOf(xml: string, name: string): string[] {
  const found: string[] = [];
  for (const match of xml.matchAll(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`, 'g'))) found.push(unescapeXml(match[1]!));
  return found;
}

function unescapeXml(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#x([0-9a-fA-F]+);/g, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(Number(dec)))
    .replace(/&amp;/g, '&');
}

/** An S3 error answer: status, code and message as S3 sends them, plus headers some errors carry. */
export class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly details: Record<string, string | undefined> = {},
  ) {
    super(message);
  }

  body(requestId: string): string {
    const details = Object.entries(this.details).map(([name, value]) => element(name, value)).join('');
    return `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${element('Code', this.code)}${element('Message', this.message)}${details}${element('RequestId', requestId)}</Error>`;
  }
}

export const newRequestId = () => randomBytes(8).toString('hex').toUpperCase();

export const noSuchBucket = (bucket: string) => new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', {}, { BucketName: bucket });
export const notImplemented = (what: string) => new S3Error(501, 'NotImplemented', `${what} is not implemented by the local S3.`);
export const invalidArgument = (message: string, name?: string, value?: string) =>
  new S3Error(400, 'InvalidArgument', message, {}, { ArgumentName: name, ArgumentValue: value });
