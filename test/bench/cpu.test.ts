import { describe, expect, it } from 'vitest';
import { cpuMeter, processCpuMs } from '../../bench/cpu.js';

/** Keeps this thread busy until it has used `ms` more CPU time, by Node's own count (getrusage). */
function useCpu(ms: number): void {
  const start = process.cpuUsage();
  for (;;) {
    const used = process.cpuUsage(start);
    if ((used.user + used.system) / 1000 >= ms) return;
  }
}

describe('process CPU', () => {
  it("reads a process's CPU time from /proc, as Node counts it, and nothing for a process that is not there", async () => {
    const before = (await processCpuMs(process.pid))!;
    useCpu(200);
    const after = (await processCpuMs(process.pid))!;
    // /proc counts in ticks of 10 ms: within two ticks of the 200 ms used, above it by the other threads' work.
    expect(after - before).toBeGreaterThanOrEqual(180);
    expect(after - before).toBeLessThan(400);
    expect(await processCpuMs(2 ** 22 + 1)).toBeUndefined();
  });

  it("counts CPU per item from when the phase began: this process's, and each pool's instances'", async () => {
    useCpu(100); // used before the phase: not counted
    const meter = cpuMeter({ self: { pids: () => [process.pid] } });
    await meter.ready;
    useCpu(300);
    const perItem = await meter.stop(3);
    expect(Object.keys(perItem)).toEqual(['emulators + bench', 'self']);
    expect(perItem['emulators + bench']).toBeGreaterThanOrEqual(100);
    expect(perItem['emulators + bench']).toBeLessThan(180);
    expect(perItem.self).toBeGreaterThanOrEqual(93);
    expect(perItem.self).toBeLessThan(180);
  });
});
