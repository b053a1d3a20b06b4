import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { s3EventRecord, type S3EventRecord, type S3ObjectEvent } from '../events.js';
import { invalidArgument, noSuchBucket } from './xml.js';

/** A bucket's versioning state. `unversioned` is a bucket that never had versioning turned on. */
export type VersioningMode = 'enabled' | 'suspended' | 'unversioned';

/** What a write stores besides the bytes: S3 gives these back on GET/HEAD. */
export interface ObjectAttributes {
  contentType: string;
  /** Content-Encoding, Cache-Control, Content-Disposition, Content-Language, Expires and x-amz-meta-* headers. */
  headers: Record<string, string>;
}

export interface ObjectVersion extends ObjectAttributes {
  deleteMarker: false;
  versionId: string;
  lastModified: Date;
  size: number;
  /** Without quotes. */
  eTag: string;
  /** Where the bytes are; a version's file never changes, and is removed when the version is. */
  file: string;
}

export interface DeleteMarker {
  deleteMarker: true;
  versionId: string;
  lastModified: Date;
}

export type Version = ObjectVersion | DeleteMarker;

/** A version as a write hands it over, before it gets its id. */
export type NewObject = Omit<ObjectVersion, 'deleteMarker' | 'versionId' | 'lastModified'>;

export type CreatedEventName = 'ObjectCreated:Put' | 'ObjectCreated:Post' | 'ObjectCreated:Copy' | 'ObjectCreated:CompleteMultipartUpload';

interface Bucket {
  mode: VersioningMode;
  /** Per key, its versions oldest first: the last one is current. */
  keys: Map<string, Version[]>;
}

export const NULL_VERSION = 'null';

/** S3-like opaque ids: 32 characters of letters, digits, '.' and '_'. */
const newVersionId = () => randomBytes(24).toString('base64url').replace(/-/g, '.');
const VERSION_ID_SHAPE = /^[A-Za-z0-9._]{32}$/;

/** S3 answers 400 to an id that cannot be one of its own, and 404 NoSuchVersion to one it does not have. */
export function checkVersionIdShape(versionId: string): void {
  if (versionId !== NULL_VERSION && !VERSION_ID_SHAPE.test(versionId)) throw invalidArgument('Invalid version id specified', 'versionId', versionId);
}

/**
 * The version index of every bucket, kept in memory, with each version's bytes in its own file under `dir`.
 *
 * Every change is made synchronously (no await between reading the index and writing it), so concurrent writes to
 * one key cannot interleave: each gets its own version, and its event, in the order the index took them.
 */
export class VersionStore {
  private readonly buckets = new Map<string, Bucket>();
  private readonly listeners: Array<(records: S3EventRecord[]) => void> = [];
  private lastSequencer = 0n;
  private blobCount = 0;

  constructor(
    private readonly dir: string,
    buckets: string[],
    mode: VersioningMode,
  ) {
    for (const name of buckets) this.buckets.set(name, { mode, keys: new Map() });
  }

  onEvent(listener: (records: S3EventRecord[]) => void): void {
    this.listeners.push(listener);
  }

  /** A fresh path for the bytes of a version being written. */
  newBlobPath(): string {
    return join(this.dir, `${Date.now()}-${++this.blobCount}-${randomBytes(4).toString('hex')}`);
  }

  bucketNames(): string[] {
    return [...this.buckets.keys()].sort();
  }

  hasBucket(name: string): boolean {
    return this.buckets.has(name);
  }

  /** CreateBucket: a new bucket starts unversioned, as in S3. */
  createBucket(name: string): boolean {
    if (this.buckets.has(name)) return false;
    this.buckets.set(name, { mode: 'unversioned', keys: new Map() });
    return true;
  }

  mode(bucket: string): VersioningMode {
    return this.bucket(bucket).mode;
  }

  /** PutBucketVersioning: once versioned, a bucket can be suspended but never unversioned again. */
  setMode(bucket: string, mode: 'enabled' | 'suspended'): void {
    this.bucket(bucket).mode = mode;
  }

  /** The current version of a key (possibly a delete marker), or undefined if it has none. */
  current(bucket: string, key: string): Version | undefined {
    return this.bucket(bucket).keys.get(key)?.at(-1);
  }

  find(bucket: string, key: string, versionId: string): Version | undefined {
    checkVersionIdShape(versionId);
    return this.bucket(bucket).keys.get(key)?.find((v) => v.versionId === versionId);
  }

  /** Every key with its versions, oldest first, in S3's listing order (UTF-8 byte order of the keys). */
  entries(bucket: string): Array<[string, Version[]]> {
    return [...this.bucket(bucket).keys.entries()].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  /** Makes `object` the new current version of the key, and announces it. */
  commitObject(bucket: string, key: string, object: NewObject, eventName: CreatedEventName): ObjectVersion {
    const state = this.bucket(bucket);
    const version: ObjectVersion = { ...object, deleteMarker: false, versionId: this.idForNewVersion(state, key), lastModified: new Date() };
    this.append(state, key, version);
    this.emit({ bucket, key, eventName, size: version.size, eTag: version.eTag, versionId: this.eventVersionId(state, version) });
    return version;
  }

  /** DELETE without a versionId: a delete marker when versioned, else the object goes. */
  deleteCurrent(bucket: string, key: string): { deleteMarker?: DeleteMarker } {
    const state = this.bucket(bucket);
    if (state.mode === 'unversioned') {
      const removed = this.remove(state, key, NULL_VERSION);
      if (removed) this.emit({ bucket, key, eventName: 'ObjectRemoved:Delete' });
      return {};
    }
    const marker: DeleteMarker = { deleteMarker: true, versionId: this.idForNewVersion(state, key), lastModified: new Date() };
    this.append(state, key, marker);
    this.emit({ bucket, key, eventName: 'ObjectRemoved:DeleteMarkerCreated', versionId: marker.versionId });
    return { deleteMarker: marker };
  }

  /** DELETE with a versionId: that version (or marker) is gone for good; the one before it becomes current. */
  deleteVersion(bucket: string, key: string, versionId: string): Version | undefined {
    checkVersionIdShape(versionId);
    const state = this.bucket(bucket);
    const removed = this.remove(state, key, versionId);
    if (removed) this.emit({ bucket, key, eventName: 'ObjectRemoved:Delete', versionId: this.eventVersionId(state, removed) });
    return removed;
  }

  private bucket(name: string): Bucket {
    const state = this.buckets.get(name);
    if (!state) throw noSuchBucket(name);
    return state;
  }

  /** Enabled: a fresh id. Suspended or unversioned: "null", replacing the key's previous null version. */
  private idForNewVersion(state: Bucket, key: string): string {
    if (state.mode === 'enabled') return newVersionId();
    this.remove(state, key, NULL_VERSION);
    return NULL_VERSION;
  }

  private append(state: Bucket, key: string, version: Version): void {
    const versions = state.keys.get(key) ?? [];
    versions.push(version);
    state.keys.set(key, versions);
  }

  private remove(state: Bucket, key: string, versionId: string): Version | undefined {
    const versions = state.keys.get(key);
    const index = versions?.findIndex((v) => v.versionId === versionId) ?? -1;
    if (!versions || index < 0) return undefined;
    const [removed] = versions.splice(index, 1);
    if (versions.length === 0) state.keys.delete(key);
    // A reader that already resolved this version may still be opening the file: it then answers as if deleted.
    if (removed && !removed.deleteMarker) void rm(removed.file, { force: true });
    return removed;
  }

  /** Events of a bucket that never had versioning name no version. */
  private eventVersionId(state: Bucket, version: Version): string | undefined {
    return state.mode === 'unversioned' ? undefined : version.versionId;
  }

  /** Uppercase hex, strictly increasing across the store (so per key too), starting near the clock like S3's. */
  private nextSequencer(): string {
    const fromClock = BigInt(Date.now()) << 16n;
    this.lastSequencer = fromClock > this.lastSequencer ? fromClock : this.lastSequencer + 1n;
    return this.lastSequencer.toString(16).toUpperCase().padStart(18, '0');
  }

  private emit(event: S3ObjectEvent): void {
    const records = [s3EventRecord({ ...event, sequencer: this.nextSequencer(), eventTime: new Date().toISOString() })];
    for (const listener of this.listeners) {
      try {
        listener(records);
      } catch {
        // A listener's failure is its own; S3 has already made the change.
      }
    }
  }
}
