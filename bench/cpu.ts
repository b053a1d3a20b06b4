import { readFile } from 'node:fs/promises';
import { round } from './stats.js';

/** Linux counts a process's CPU time in clock ticks of 1/100 s (USER_HZ on every architecture Node runs on). */
const MS_PER_TICK = 10;

/** CPU time (user + system) a process has used, ms, from Linux's /proc; undefined where there is none. */
export async function processCpuMs(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  // Fields after the command (which is in parentheses and may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK;
}

/**
 * CPU used while a phase runs, per process group: this process (every emulator and the Scale simulator run in it,
 * and the bench's own client) and each function pool's instances, started or stopped during the phase included.
 * Sampled every `everyMs`, so that an instance that ends mid-phase keeps what it used until its last sample.
 */
export function cpuMeter(pools: Record<string, { pids(): number[] }>, everyMs = 250) {
  const own = process.cpuUsage();
  const first = new Map<number, number>();
  const last = new Map<number, { group: string; ms: number }>();
  // Instances alive at the start count from what they had used by then; those started later, from nothing.
  const sample = async (atStart: boolean) => {
    for (const [group, pool] of Object.entries(pools)) {
      for (const pid of pool.pids()) {
        const ms = await processCpuMs(pid);
        if (ms === undefined) continue;
        if (!first.has(pid)) first.set(pid, atStart ? ms : 0);
        last.set(pid, { group, ms });
      }
    }
  };
  const ready = sample(true);
  const timer = setInterval(() => void ready.then(() => sample(false)), everyMs);
  return {
    /** Resolves once the start is recorded. */
    ready,
    /** Samples once more, stops, and answers the CPU ms each group used per item of the phase. */
    async stop(items: number): Promise<Record<string, number>> {
      clearInterval(timer);
      await ready;
      await sample(false);
      const used = process.cpuUsage(own);
      const perGroup: Record<string, number> = { 'emulators + bench': (used.user + used.system) / 1000 };
      for (const group of Object.keys(pools)) perGroup[group] = 0;
      for (const [pid, { group, ms }] of last) perGroup[group]! += ms - first.get(pid)!;
      return Object.fromEntries(Object.entries(perGroup).map(([group, ms]) => [group, round(ms / items, 2)]));
    },
  };
}
