/** `sfs-pipeline status`: what happened to an upload. */
import type { RegisterCommand } from '../sfs-pipeline.js';
import { findRecords, formatRecords, notFound, parseSelector, SELECTOR_HELP } from './records.js';
import { resolveTarget, withTarget, type TargetOptions } from './target.js';

interface StatusOptions extends TargetOptions {
  json?: boolean;
}

export const registerStatus: RegisterCommand = (program, context) => {
  withTarget(
    program
      .command('status')
      .description('Show what happened to an upload: its task record(s), newest first, with status, why, Scale task, times, response and result files')
      .argument('<selector>', SELECTOR_HELP)
      .option('--json', 'one JSON document per record (the stored record, schemaVersion 1), newest first'),
  )
    .addHelpText(
      'after',
      `
Every upload (version) of an object has its own record; s3://BUCKET/KEY shows them all, newest first.
Exit codes: 0 found, 2 a malformed selector or a bucket that is not the pipeline's, 3 no record matches.

Examples:
  $ sfs-pipeline status s3://my-scenes-bucket/drives/2026-05-01/scene.sfs --stack ScaleSfsPipeline
  $ sfs-pipeline status sfs-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c --local local-info.json --json
  $ sfs-pipeline status 6650d1c2e4b0a1b2c3d4e5f6 --stack ScaleSfsPipeline   # a Scale task id`,
    )
    .action(async (selectorText: string, options: StatusOptions) => {
      const target = await resolveTarget(options);
      try {
        const selector = parseSelector(selectorText, target);
        const records = await findRecords(selector, target);
        if (records.length === 0) throw notFound(selector, target);
        context.io.out.write(formatRecords(records, { json: options.json }));
      } finally {
        target.close();
      }
    });
};
