import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface LoadResult {
  name: string;
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
}

export interface LoadTarget {
  name: string;
  origin: string;
  path: string;
  headers: Record<string, string>;
  /** Request bodies, used round-robin so every target sees the same mix in the same order. */
  bodies: string[];
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/**
 * A closed-loop load generator (autocannon's model): `concurrency` connections, each sending its next
 * request as soon as the previous answer arrives. Requests during `warmupS` are not measured.
 */
export async function runLoad(
  target: LoadTarget,
  opts: { concurrency: number; warmupS: number; durationS: number },
) {
  const pool = new Pool(target.origin, { connections: opts.concurrency, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const start = performance.now();
  const measureFrom = start + opts.warmupS * 1000;
  const stopAt = measureFrom + opts.durationS * 1000;
  const worker = async () => {
    while (performance.now() < stopAt) {
      const body = target.bodies[next++ % target.bodies.length] as string;
      const t0 = performance.now();
      let ok = false;
      try {
        const res = await pool.request({
          method: 'POST',
          path: target.path,
          headers: { 'content-type': 'application/json', ...target.headers },
          body,
        });
        await res.body.text();
        ok = res.statusCode === 200;
      } catch {
        ok = false;
      }
      const t1 = performance.now();
      if (t0 >= measureFrom && t1 <= stopAt) {
        if (ok) latencies.push(t1 - t0);
        else errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  await pool.close();
  const sorted = Float64Array.from(latencies).sort();
  return {
    name: target.name,
    requests: latencies.length,
    errors,
    seconds: opts.durationS,
    rps: latencies.length / opts.durationS,
    p50ms: quantile(sorted, 0.5),
    p99ms: quantile(sorted, 0.99),
  } satisfies LoadResult;
}
