import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time of a server, read from /proc (Linux): the whole process group (a Python server's workers
 * are child processes) and the main thread alone (a Node server's event loop). Seconds, user + system.
 */
export interface CpuSample {
  group: number;
  mainThread: number;
}

const ticksPerSecond = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim();
  return Number(out) > 0 ? Number(out) : 100;
})();

/** utime + stime and the process group of one /proc stat line (fields 14, 15 and 5). */
function parseStat(text: string): { seconds: number; pgrp: number } | undefined {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { seconds: (utime + stime) / ticksPerSecond, pgrp: Number(fields[2]) };
}

const readStat = (file: string) => {
  try {
    return parseStat(readFileSync(file, 'utf8'));
  } catch {
    return undefined; // the process ended between listing and reading
  }
};

/** undefined where /proc is not there (not Linux): the table then leaves the CPU columns out. */
export function sampleCpu(pid: number): CpuSample | undefined {
  const main = readStat(`/proc/${pid}/task/${pid}/stat`);
  if (!main) return undefined;
  let group = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readStat(`/proc/${entry}/stat`);
    if (s?.pgrp === pid) group += s.seconds;
  }
  return { group, mainThread: main.seconds };
}
