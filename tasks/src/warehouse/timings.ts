/** Time spent in a phase, in milliseconds: on the wall clock and on the CPU (all of the process' threads). */
export interface PhaseTime {
  wall: number;
  cpu: number;
}
export type Timings = Record<string, PhaseTime>;

/** Adds the time since `start` (from `now()`) to `timings[name]`. */
export function lap(timings: Timings, name: string, start: PhaseTime): void {
  const end = now();
  const t = timings[name] ?? { wall: 0, cpu: 0 };
  timings[name] = { wall: t.wall + end.wall - start.wall, cpu: t.cpu + end.cpu - start.cpu };
}

export function now(): PhaseTime {
  const cpu = process.cpuUsage();
  return { wall: performance.now(), cpu: (cpu.user + cpu.system) / 1000 };
}
