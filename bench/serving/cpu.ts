import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time of a server, read from /proc (Linux), seconds, user + system: the whole process group and
 * the main threads of its processes. run.ts starts each server detached, so it leads a process group
 * of its own, and the processes it forks stay in that group: a Python server's workers, and the
 * workers of a node:cluster primary (cluster.fork does not detach them).
 */
export interface CpuSample {
  group: number;
  /**
   * The main threads of all processes of the group: for a Node server its event loops. A single
   * process: its one event loop. A node:cluster: the workers' event loops plus the primary's, which
   * only hands new connections to the workers (few: the load keeps its connections alive).
   */
  mainThreads: number;
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
  if (!readStat(`/proc/${pid}/stat`)) return undefined;
  let group = 0;
  let mainThreads = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readStat(`/proc/${entry}/stat`);
    if (s?.pgrp !== pid) continue;
    group += s.seconds;
    mainThreads += readStat(`/proc/${entry}/task/${entry}/stat`)?.seconds ?? 0;
  }
  return { group, mainThreads };
}
