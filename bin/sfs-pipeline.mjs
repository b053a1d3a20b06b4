#!/usr/bin/env node
// The `sfs-pipeline` command: runs the TypeScript CLI through tsx's loader, so there is no build step to forget.
import process from 'node:process';
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('./sfs-pipeline.ts');
const { processIo } = await import('./cli/io.ts');
process.exitCode = await runCli(process.argv.slice(2), processIo());
