import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { receiveSmall, receiveToFile } from './body.js';
import { drain, quoted, send, versionHeaders, type S3Call } from './call.js';
import { attributesOf } from './objects.js';
import type { ObjectAttributes } from './versions.js';
import { element, elementsOf, invalidArgument, S3Error, xmlDocument } from './xml.js';

const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;

interface Part {
  file: string;
  size: number;
  md5Hex: string;
}

interface Upload {
  bucket: string;
  key: string;
  attributes: ObjectAttributes;
  parts: Map<number, Part>;
}

const noSuchUpload = (uploadId: string) => new S3Error(404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', {}, { UploadId: uploadId });

/** Multipart uploads in progress: parts are files until CompleteMultipartUpload joins them into one version. */
export class MultipartUploads {
  private readonly uploads = new Map<string, Upload>();

  async create(call: S3Call): Promise<void> {
    await drain(call.req);
    call.store.mode(call.bucket); // NoSuchBucket before anything is kept
    const uploadId = randomBytes(36).toString('base64url');
    this.uploads.set(uploadId, { bucket: call.bucket, key: call.key, attributes: attributesOf(call.req), parts: new Map() });
    send(call, 200, {}, xmlDocument('InitiateMultipartUploadResult', element('Bucket', call.bucket) + element('Key', call.key) + element('UploadId', uploadId)));
  }

  async uploadPart(call: S3Call): Promise<void> {
    if (call.req.headers['x-amz-copy-source'] !== undefined) throw new S3Error(501, 'NotImplemented', 'UploadPartCopy is not implemented by the local S3.');
    const upload = this.upload(call);
    const partNumber = Number(call.query.get('partNumber'));
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PARTS) {
      throw invalidArgument(`Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`, 'partNumber', call.query.get('partNumber'));
    }
    const file = call.store.newBlobPath();
    const { size, md5Hex } = await receiveToFile(call.req, file, call.payloadHash);
    const replaced = upload.parts.get(partNumber);
    upload.parts.set(partNumber, { file, size, md5Hex });
    if (replaced) await rm(replaced.file, { force: true });
    send(call, 200, { etag: quoted(md5Hex) });
  }

  async complete(call: S3Call): Promise<void> {
    const uploadId = call.query.get('uploadId')!;
    const upload = this.upload(call);
    const xml = await receiveSmall(call.req, call.payloadHash);
    const listed = [...xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({ number: Number(elementsOf(m[1]!, 'PartNumber')[0]), eTag: (elementsOf(m[1]!, 'ETag')[0] ?? '').replace(/"/g, '') }));
    if (listed.length === 0) throw new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
    if (listed.some((part, i) => i > 0 && part.number <= listed[i - 1]!.number)) {
      throw new S3Error(400, 'InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
    }
    const parts: Part[] = [];
    for (const [i, { number, eTag }] of listed.entries()) {
      const part = upload.parts.get(number);
      if (!part || part.md5Hex !== eTag) {
        throw new S3Error(400, 'InvalidPart', 'One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part\'s entity tag.', {}, { UploadId: uploadId, PartNumber: String(number), ETag: eTag });
      }
      if (i < listed.length - 1 && part.size < MIN_PART_SIZE) {
        throw new S3Error(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {}, { PartNumber: String(number), ProposedSize: String(part.size), MinSizeAllowed: String(MIN_PART_SIZE) });
      }
      parts.push(part);
    }
    // Taken before the (slow) join, so a second Complete of the same upload cannot make a second version.
    this.uploads.delete(uploadId);
    const file = call.store.newBlobPath();
    try {
      const out = createWriteStream(file);
      for (const part of parts) await pipeline(createReadStream(part.file), out, { end: false });
      out.end();
      await new Promise<void>((resolve, reject) => out.on('finish', resolve).on('error', reject));
    } catch (err) {
      this.uploads.set(uploadId, upload);
      await rm(file, { force: true });
      throw err;
    }
    // S3's multipart ETag: the MD5 of the parts' MD5s, then the number of parts.
    const eTag = `${createHash('md5').update(Buffer.concat(parts.map((p) => Buffer.from(p.md5Hex, 'hex')))).digest('hex')}-${parts.length}`;
    const size = parts.reduce((sum, p) => sum + p.size, 0);
    const version = call.store.commitObject(upload.bucket, upload.key, { ...upload.attributes, size, eTag, file }, 'ObjectCreated:CompleteMultipartUpload');
    await removeParts(upload);
    const location = `${call.origin}/${call.bucket}/${call.key.split('/').map(encodeURIComponent).join('/')}`;
    const body = xmlDocument('CompleteMultipartUploadResult', element('Location', location) + element('Bucket', call.bucket) + element('Key', call.key) + element('ETag', quoted(eTag)));
    send(call, 200, versionHeaders(call, version), body);
  }

  async abort(call: S3Call): Promise<void> {
    await drain(call.req);
    const upload = this.upload(call);
    this.uploads.delete(call.query.get('uploadId')!);
    await removeParts(upload);
    send(call, 204);
  }

  private upload(call: S3Call): Upload {
    const uploadId = call.query.get('uploadId')!;
    const upload = this.uploads.get(uploadId);
    if (!upload || upload.bucket !== call.bucket || upload.key !== call.key) throw noSuchUpload(uploadId);
    return upload;
  }
}

async function removeParts(upload: Upload): Promise<void> {
  await Promise.all([...upload.parts.values()].map((p) => rm(p.file, { force: true })));
}
