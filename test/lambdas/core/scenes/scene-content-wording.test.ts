import { describe, expect, it, vi } from 'vitest';

/*
 * The manifest schemas' own wording, exactly. The module is imported afresh inside each test (never at the top of
 * the file), so its schemas are built while the test runs: a fault planted in them by mutation testing is then
 * active here, as it would not be in a module loaded once before any test.
 */

async function freshSceneContent() {
  vi.resetModules();
  return import('../../../../lambdas/core/scenes/scene-content.js');
}

const NOT_A_MANIFEST = 'the frame manifest is not {"frames": ["<key>", …]}: ';

describe("a manifest's shape, in the schema's words", () => {
  it('names frames that are missing or not a list', async () => {
    const { parseFrameManifest } = await freshSceneContent();
    for (const text of ['{}', '{"frames":"0.json"}', '{"frames":{"0":"0.json"}}']) {
      expect(parseFrameManifest(text, 'd/m.frames.json', 10, 'd/'), text).toEqual({ problem: `${NOT_A_MANIFEST}frames: expected an array of frame keys` });
    }
  });

  it('names each entry that is not a string', async () => {
    const { parseFrameManifest } = await freshSceneContent();
    expect(parseFrameManifest('{"frames":["0.json",1,null,{"key":"2.json"}]}', 'd/m.frames.json', 10, 'd/')).toEqual({
      problem: `${NOT_A_MANIFEST}3 of 4 entries are invalid: frames[1]: expected a key (string); frames[2]: expected a key (string); frames[3]: expected a key (string)`,
    });
  });
});
