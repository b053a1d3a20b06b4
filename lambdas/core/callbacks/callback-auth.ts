import { secretsEqual, verifyCallbackRef } from '../scenes/scene-identity.js';

/** Scale's callbacks are stored under this prefix of the results bucket, one object per call: `callbacks/<ref>/<id>.json`. */
export const CALLBACK_ARCHIVE_PREFIX = 'callbacks/';

/** What this stack puts in `ref`: the upload's uniqueId. Anything else is refused before it is used in a key. */
const REF_PATTERN = /^sfs-[0-9a-f]{40}$/;

export interface CallbackKeys {
  /** Scale's account-wide callback auth key, sent in the scale-callback-auth header. */
  authKey: string;
  /** This stack's key for the per-task signature in the callback URL. */
  signingKey: string;
}

/**
 * Why a call is refused:
 * - signature: neither the URL's signature nor the header is right — junk, a probe. Counted, not alarmed.
 * - auth: the URL is one this stack signed, the scale-callback-auth header is not. Only Scale holds signed URLs,
 *   so this is Scale with a key the stack does not hold (a wrong or rotated callback auth key). Alarmed.
 * - url: the header is Scale's, the URL's signature does not verify — Scale calling with a URL signed under a
 *   signing key the stack no longer holds (it was rotated, or the stack re-created). Alarmed.
 * Either alarmed case loses results after Scale's 24 hours of retries.
 */
export type Refusal = 'signature' | 'auth' | 'url';

export type Authentication = { ok: true; uniqueId: string } | { ok: false; refusal: Refusal; reason: string };

/**
 * Both checks, from the request line and headers alone (no body): the signature this stack put in the URL and
 * Scale's header, both always computed (constant time) so the refusal can say which one failed.
 */
export function authenticateCallback(authHeader: string | undefined, ref: string | undefined, sig: string | undefined, keys: CallbackKeys): Authentication {
  const urlOk = !!ref && !!sig && REF_PATTERN.test(ref) && verifyCallbackRef(ref, sig, keys.signingKey);
  const headerOk = secretsEqual(authHeader, keys.authKey);
  if (urlOk && headerOk) return { ok: true, uniqueId: ref };
  if (urlOk) return { ok: false, refusal: 'auth', reason: 'genuine callback URL, but a missing or wrong scale-callback-auth header' };
  if (headerOk) return { ok: false, refusal: 'url', reason: "Scale's header, but a callback URL this stack cannot verify (signing key rotated?)" };
  return { ok: false, refusal: 'signature', reason: 'neither the callback URL signature nor the header is valid' };
}

/** The uniqueId of a stored callback, from its key (`callbacks/<ref>/<id>.json`); undefined for any other key. */
export function uniqueIdOfCallbackKey(key: string): string | undefined {
  const [prefix, ref, name, ...rest] = key.split('/');
  if (`${prefix}/` !== CALLBACK_ARCHIVE_PREFIX || rest.length > 0 || !name?.endsWith('.json') || !ref || !REF_PATTERN.test(ref)) return undefined;
  return ref;
}
