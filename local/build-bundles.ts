import { build, type BuildOptions } from 'esbuild';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BUNDLING, FUNCTION_ENTRIES, type FunctionName } from '../lib/bundling.js';

/** esbuild options equivalent to what NodejsFunction derives from the stack's BUNDLING options. */
export function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: BUNDLING.format === 'esm' ? 'esm' : 'cjs',
    target: BUNDLING.target,
    minify: BUNDLING.minify,
    sourcemap: BUNDLING.sourceMap,
    mainFields: BUNDLING.mainFields,
    external: BUNDLING.externalModules,
    banner: BUNDLING.banner ? { js: BUNDLING.banner } : undefined,
    logLevel: 'warning',
    metafile: true,
  };
}

/** Builds every function's bundle into `outDir/<name>/index.mjs`, as `cdk deploy` ships them. */
export async function buildBundles(outDir: string): Promise<Record<FunctionName, { path: string; bytes: number }>> {
  const entries = Object.entries(FUNCTION_ENTRIES) as Array<[FunctionName, string]>;
  const built = await Promise.all(
    entries.map(async ([name, entry]) => {
      await mkdir(join(outDir, name), { recursive: true });
      const outfile = join(outDir, name, 'index.mjs');
      const result = await build(esbuildOptions(entry, outfile));
      const bytes = Object.entries(result.metafile!.outputs).find(([file]) => file.endsWith('index.mjs'))![1].bytes;
      return [name, { path: outfile, bytes }] as const;
    }),
  );
  return Object.fromEntries(built) as Record<FunctionName, { path: string; bytes: number }>;
}
