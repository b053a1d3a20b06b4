import type { Results } from './results.js';

/** A plain text table: a header row, a rule, the rows; columns padded to their widest cell. */
export function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

const pct = (share: number) => `${(share * 100).toFixed(1)} %`;
const ms = (p: { p50: number; p99: number }) => `${p.p50} / ${p.p99}`;

/** One row per phase, one column per process and the total. */
function cpuTable(phases: Record<string, Record<string, number>>): string {
  const groups = [...new Set(Object.values(phases).flatMap((byGroup) => Object.keys(byGroup)))];
  const total = (byGroup: Record<string, number>) => Object.values(byGroup).reduce((a, b) => a + b, 0);
  return table(
    ['per', ...groups, 'total'],
    Object.entries(phases).map(([phase, byGroup]) => [phase, ...groups.map((g) => byGroup[g]?.toFixed(2) ?? '-'), total(byGroup).toFixed(2)]),
  );
}

/** Every section of the results, as the tables `npm run bench` prints. */
export function formatResults(results: Results): string {
  const out: string[] = [];
  if (results.burst.length > 0) {
    out.push(
      'Burst: N uploads while Scale allows R requests/s (Retry-After 1 s); wall from the first upload until every upload has a task',
      table(
        ['N', 'R/s', 'flow control', 'wall s', 'bound s', 'ratio', '429 share', 'dup', 'lost', 'tasks/s', 'upload→task p50/p99 ms', 'cores', 'load'],
        results.burst.map((b) => [
          b.parameters.uploads,
          b.parameters.rate ?? 'none',
          b.parameters.flowControl,
          b.wallSeconds.toFixed(1),
          b.boundSeconds?.toFixed(1) ?? '-',
          b.ratio?.toFixed(3) ?? '-',
          pct(b.share429),
          b.duplicates,
          b.lost,
          b.tasksPerSecond,
          ms(b.uploadToTaskMs),
          b.run.cores,
          b.run.loadAverage[0]!.toFixed(1),
        ]),
      ),
      '',
      'Memory: peak RSS of each function instance during the burst, MB (highest of its instances)',
      table(
        ['N', 'R/s', ...Object.keys(results.burst[0]!.peakRssMb)],
        // '-': the function had no instance during the burst.
        results.burst.map((b) => [b.parameters.uploads, b.parameters.rate ?? 'none', ...Object.keys(results.burst[0]!.peakRssMb).map((f) => (b.peakRssMb[f]?.length ? Math.max(...b.peakRssMb[f]!) : '-'))]),
      ),
      '',
    );
  }
  if (results.callbacks) {
    const c = results.callbacks;
    out.push(
      'Callbacks: applied per second through API Gateway → authorizer → S3 → queue → callback function → DynamoDB, vs raw writes of the same items',
      table(
        ['callbacks', 'applied/s', 'raw writes/s', 'ratio', 'cores'],
        [[c.parameters.callbacks, c.callbackPath.appliedPerSecond, c.rawWrites.writesPerSecond, c.ratio.toFixed(3), c.run.cores]],
      ),
      '',
      'CPU ms per callback applied and per raw write, by process',
      cpuTable({ 'callback applied': c.cpuMsPerItem.callbacks, 'raw write': c.cpuMsPerItem.rawWrites }),
      '',
      'Memory during the callbacks: peak RSS of each function instance, MB (highest of its instances)',
      table(Object.keys(c.peakRssMb), [Object.values(c.peakRssMb).map((peaks) => (peaks.length ? Math.max(...peaks) : '-'))]),
      '',
    );
  }
  if (results.latency) {
    const l = results.latency;
    out.push(
      `Latency, ms (p50 / p99), ${l.parameters.uploads} uploads at ${l.parameters.uploadsPerSecond}/s, no rate limit; the simulator's own time excluded`,
      table(['path', 'p50', 'p99'], [
        ['upload → task created', l.uploadToTaskMs.p50, l.uploadToTaskMs.p99],
        ['callback → record applied', l.callbackToAppliedMs.p50, l.callbackToAppliedMs.p99],
      ]),
      '',
    );
  }
  if (results.coldStart) {
    const s = results.coldStart;
    out.push(
      `Cold start: import() of each bundle in a fresh process, median of ${s.parameters.runs}, Node ${s.node}`,
      table(
        ['bundle', 'KB', 'import ms', '× empty', '× S3 client'],
        Object.entries(s.bundles).map(([name, b]) => [name, Math.round(b.bytes / 1024), b.importMs.toFixed(1), b.toEmpty.toFixed(2), b.toS3Client.toFixed(2)]),
      ),
      '',
    );
  }
  return out.join('\n');
}
