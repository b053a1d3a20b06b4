import { describe, expect, it } from 'vitest';
import { authenticateCallback, uniqueIdOfCallbackKey } from '../../../../lambdas/core/callbacks/callback-auth.js';
import { expectedCallbackSignature } from '../../../helpers/identity.js';

const ID = 'sfs-6075c1020613cb0d420717176e118cfa3ed89726';
const keys = { authKey: 'scale-account-callback-key', signingKey: 'stack-signing-key' };
const sig = (ref: string) => expectedCallbackSignature(ref, keys.signingKey);

describe('authenticateCallback', () => {
  it('accepts the signed URL with Scale\'s header, and says which of the two failed otherwise', () => {
    expect(authenticateCallback(keys.authKey, ID, sig(ID), keys)).toEqual({ ok: true, uniqueId: ID });
    expect(authenticateCallback('wrong', ID, sig(ID), keys)).toEqual({ ok: false, refusal: 'auth', reason: 'genuine callback URL, but a missing or wrong scale-callback-auth header' });
    expect(authenticateCallback(undefined, ID, sig(ID), keys)).toMatchObject({ ok: false, refusal: 'auth' });
    expect(authenticateCallback(keys.authKey, ID, sig(`${ID.slice(0, -1)}0`), keys)).toEqual({
      ok: false,
      refusal: 'url',
      reason: "Scale's header, but a callback URL this stack cannot verify (signing key rotated?)",
    });
    expect(authenticateCallback('wrong', ID, 'x', keys)).toEqual({ ok: false, refusal: 'signature', reason: 'neither the callback URL signature nor the header is valid' });
  });

  it('refuses a ref that is not an uploadId, even one signed under the stack\'s key', () => {
    // Signed correctly, so only the shape check can refuse them: a ref goes into an S3 key.
    for (const ref of [`x${ID}`, `${ID}0`, ID.slice(0, -1), `${ID}/../x`, ID.toUpperCase(), `sfs-${'g'.repeat(40)}`, 'sfs-', '']) {
      expect(authenticateCallback(keys.authKey, ref, sig(ref), keys), ref).toMatchObject({ ok: false, refusal: 'url' });
    }
  });

  it('refuses a URL without a ref or without a signature, as a URL the stack cannot verify', () => {
    expect(authenticateCallback(keys.authKey, ID, undefined, keys)).toMatchObject({ ok: false, refusal: 'url' });
    expect(authenticateCallback(keys.authKey, ID, '', keys)).toMatchObject({ ok: false, refusal: 'url' });
    expect(authenticateCallback(keys.authKey, undefined, sig(ID), keys)).toMatchObject({ ok: false, refusal: 'url' });
    expect(authenticateCallback(undefined, undefined, undefined, keys)).toMatchObject({ ok: false, refusal: 'signature' });
  });
});

describe('uniqueIdOfCallbackKey', () => {
  it('reads callbacks/<uniqueId>/<name>.json and nothing else', () => {
    expect(uniqueIdOfCallbackKey(`callbacks/${ID}/req-1.json`)).toBe(ID);
    for (const key of [
      `results/${ID}/req-1.json`,
      `callback/${ID}/req-1.json`,
      `callbacks/${ID}/extra/req-1.json`,
      `callbacks/${ID}/req-1.json/req-2.json`,
      `callbacks/${ID}/req-1.txt`,
      `callbacks/${ID}/req-1.json.gz`,
      `callbacks/${ID}`,
      `callbacks/x${ID}/req-1.json`,
      `callbacks/${ID}0/req-1.json`,
      `callbacks//req-1.json`,
    ]) {
      expect(uniqueIdOfCallbackKey(key), key).toBeUndefined();
    }
  });
});
