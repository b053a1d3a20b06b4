import { secretsEqual, verifyCallbackRef } from './scene-identity.js';

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
 * - signature: the URL's ref/sig were not issued by this stack (junk, a probe, a URL of another deployment);
 * - auth: the URL is genuine but the scale-callback-auth header is wrong. Only Scale knows genuine URLs, so this
 *   is Scale calling with a key this stack does not hold — a wrong or rotated callback auth key, which loses
 *   results after 24 hours: alarmed.
 */
export type Refusal = 'signature' | 'auth';

export type Authentication = { ok: true; uniqueId: string } | { ok: false; refusal: Refusal; reason: string };

/**
 * Both checks, from the request line and headers alone (no body): the signature this stack put in the URL, then
 * Scale's header. Constant time where a secret is compared.
 */
export function authenticateCallback(authHeader: string | undefined, ref: string | undefined, sig: string | undefined, keys: CallbackKeys): Authentication {
  if (!ref || !sig || !REF_PATTERN.test(ref)) return { ok: false, refusal: 'signature', reason: 'callback URL lacks a well-formed ref and sig' };
  if (!verifyCallbackRef(ref, sig, keys.signingKey)) return { ok: false, refusal: 'signature', reason: 'callback URL signature does not match its ref' };
  if (!secretsEqual(authHeader, keys.authKey)) return { ok: false, refusal: 'auth', reason: 'genuine callback URL, but a missing or wrong scale-callback-auth header' };
  return { ok: true, uniqueId: ref };
}

/** The uniqueId of a stored callback, from its key (`callbacks/<ref>/<id>.json`); undefined for any other key. */
export function uniqueIdOfCallbackKey(key: string): string | undefined {
  const [prefix, ref, name, ...rest] = key.split('/');
  if (`${prefix}/` !== CALLBACK_ARCHIVE_PREFIX || rest.length > 0 || !name?.endsWith('.json') || !ref || !REF_PATTERN.test(ref)) return undefined;
  return ref;
}
