/**
 * The load generator, run by run.ts as a process of its own so that it is scheduled apart from the
 * server it measures: autocannon (closed loop, `connections` connections, each sending its next
 * request when the previous answer arrives), a warm-up on fresh connections, then the measured run.
 *
 *   node cannon.js <spec.json>   →  one JSON LoadResult on stdout
 *
 * autocannon's own percentiles are whole milliseconds; the exact response times it reports per
 * response are kept as well, so p50/p99 are printed to 0.01 ms.
 */
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

export interface LoadSpec {
  name: string;
  url: string;
  path: string;
  headers: Record<string, string>;
  /** Request bodies, sent in this order on every connection, so each target sees the same mix. */
  bodies: string[];
  connections: number;
  warmupS: number;
  durationS: number;
}

export interface LoadResult {
  name: string;
  /** 2xx answers in the measured run. */
  requests: number;
  /** Transport errors, timeouts and non-2xx answers. */
  errors: number;
  statusCodes: Record<string, number>;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  /** autocannon's histogram, for reference (whole ms). */
  autocannon: { rps: number; p50ms: number; p99ms: number };
  /** Answers of any status, warm-up included: what the server's CPU time is divided by. */
  answered: number;
  /** 2xx answers, warm-up included: the predictions the server must have logged. */
  answered2xx: number;
  /** The generator's own CPU time per measured answer (µs), so its share of the cores shows. */
  generatorCpuUsPerRequest: number;
  /**
   * Filled in by run.ts from /proc: the server's CPU time per answer (µs), all its processes, and
   * for a Node server the main threads (event loops) of its processes (cpu.ts).
   */
  serverCpuUsPerRequest?: number;
  serverMainThreadsCpuUsPerRequest?: number;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function main(specPath: string): Promise<void> {
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as LoadSpec;
  const headers = { 'content-type': 'application/json', ...spec.headers };
  const instance = autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.durationS,
    timeout: 10,
    ...(spec.warmupS > 0 ? { warmup: { connections: spec.connections, duration: spec.warmupS } } : {}),
    requests: spec.bodies.map((body) => ({ method: 'POST', path: spec.path, headers, body })),
  });
  let times = new Float64Array(1 << 16);
  let n = 0;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  // The warm-up has a tracker of its own, so only the measured run's answers arrive here.
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    cpuAtStart ??= process.cpuUsage();
    if (status < 200 || status > 299) return;
    if (n === times.length) {
      const grown = new Float64Array(times.length * 2);
      grown.set(times);
      times = grown;
    }
    times[n++] = ms;
  });
  const r = await instance;
  const cpu = process.cpuUsage(cpuAtStart);
  const warm = r.warmup;
  const answered = r['2xx'] + r.non2xx + (warm ? warm['2xx'] + warm.non2xx : 0);
  const sorted = times.subarray(0, n).sort();
  const statusCodes = Object.fromEntries(Object.entries(r.statusCodeStats).map(([c, s]) => [c, s.count]));
  const result: LoadResult = {
    name: spec.name,
    requests: r['2xx'],
    errors: r.errors + r.timeouts + r.non2xx,
    statusCodes,
    seconds: r.duration,
    rps: r['2xx'] / r.duration,
    p50ms: quantile(sorted, 0.5),
    p99ms: quantile(sorted, 0.99),
    autocannon: { rps: r.requests.average, p50ms: r.latency.p50, p99ms: r.latency.p99 },
    answered,
    answered2xx: r['2xx'] + (warm ? warm['2xx'] : 0),
    generatorCpuUsPerRequest: (cpu.user + cpu.system) / Math.max(1, r['2xx'] + r.non2xx),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main(process.argv[2] as string).catch((err) => {
  process.stderr.write(`cannon: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
