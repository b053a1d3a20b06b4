import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { S3Error } from './xml.js';

const MAX_SINGLE_PUT = 5 * 1024 ** 3;
const MAX_XML_BODY = 1024 * 1024;

/**
 * Checks what S3 checks of an upload's body: it has a Content-Length, its SHA-256 is the one the request signed
 * (when it signed one), and its MD5 is the Content-MD5 header (when given).
 */
class BodyDigests {
  readonly md5 = createHash('md5');
  private readonly sha256?: ReturnType<typeof createHash>;
  size = 0;

  constructor(private readonly req: IncomingMessage, private readonly payloadHash: string | undefined) {
    const encoding = String(req.headers['content-encoding'] ?? '');
    if (payloadHash?.startsWith('STREAMING-') || encoding.split(',').some((e) => e.trim() === 'aws-chunked')) {
      throw new S3Error(501, 'NotImplemented', "aws-chunked uploads (streaming checksums) are not implemented by the local S3: set AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED (SDK: requestChecksumCalculation: 'WHEN_REQUIRED').");
    }
    if (payloadHash && /^[0-9a-fA-F]{64}$/.test(payloadHash)) this.sha256 = createHash('sha256');
  }

  update(chunk: Buffer): void {
    this.size += chunk.length;
    this.md5.update(chunk);
    this.sha256?.update(chunk);
  }

  /** The body's MD5 in hex, once its digests have been checked. */
  finish(): string {
    const md5 = this.md5.digest();
    if (this.sha256 && this.sha256.digest('hex') !== this.payloadHash!.toLowerCase()) {
      throw new S3Error(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    const contentMd5 = this.req.headers['content-md5'];
    if (contentMd5 !== undefined && contentMd5 !== md5.toString('base64')) {
      throw new S3Error(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
    return md5.toString('hex');
  }
}

/** Streams an upload's body into `file` (removed again if anything is wrong with it). */
export async function receiveToFile(req: IncomingMessage, file: string, payloadHash: string | undefined): Promise<{ size: number; md5Hex: string }> {
  const digests = new BodyDigests(req, payloadHash);
  const declared = req.headers['content-length'];
  if (declared === undefined) throw new S3Error(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.');
  if (Number(declared) > MAX_SINGLE_PUT) throw new S3Error(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      digests.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(req, tap, createWriteStream(file));
    if (digests.size !== Number(declared)) throw new S3Error(400, 'IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header.');
    return { size: digests.size, md5Hex: digests.finish() };
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
}

/** A small request body (an XML document), with the same checks. */
export async function receiveSmall(req: IncomingMessage, payloadHash: string | undefined): Promise<string> {
  const digests = new BodyDigests(req, payloadHash);
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    digests.update(chunk);
    if (digests.size > MAX_XML_BODY) throw new S3Error(400, 'MaxMessageLengthExceeded', 'Your request was too big.');
    chunks.push(chunk);
  }
  digests.finish();
  return Buffer.concat(chunks).toString('utf8');
}
