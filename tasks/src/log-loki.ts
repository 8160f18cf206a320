import { writeSync } from 'node:fs';
import { pinoLoki } from 'pino-loki';

/** The options `createLogger` hands the Loki target (they cross into the transport's worker thread). */
export interface LokiTarget {
  url: string;
  batchSeconds: number;
  timeoutMs: number;
  labels: Record<string, string>;
}

/**
 * The pino transport target that ships lines to Loki's push API (`/loki/api/v1/push`), run by pino
 * in a worker thread. It is pino-loki's, with two choices of ours:
 * - labels stay few and of low cardinality (`service`, `dataset`, plus pino-loki's `level` and
 *   `hostname`); request ids, model versions and DAG run ids stay in the JSON line, where LogQL's
 *   `| json` finds them (https://grafana.com/docs/loki/latest/get-started/labels/bp-labels/);
 * - a Loki that cannot be reached is said once on stderr, not on every batch: the lines are still
 *   on stderr, and the process goes on.
 */
export default function lokiTarget(target: LokiTarget) {
  const { url, basicAuth } = splitCredentials(target.url);
  reportFailuresOnce(url);
  return pinoLoki({
    host: url,
    ...(basicAuth ? { basicAuth } : {}),
    labels: target.labels,
    // A line that names its dataset (an API request, a step) is labelled with it.
    propsToLabels: ['dataset'],
    structuredMetaKey: false,
    batching: { interval: target.batchSeconds, maxBufferSize: 10_000 },
    timeout: target.timeoutMs,
  });
}

/** fetch refuses a URL with credentials in it: `https://user:pass@host` becomes Basic auth. */
export function splitCredentials(raw: string): {
  url: string;
  basicAuth?: { username: string; password: string };
} {
  const parsed = new URL(raw);
  if (parsed.username === '' && parsed.password === '') return { url: `${raw.replace(/\/+$/, '')}/` };
  const basicAuth = {
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  };
  parsed.username = '';
  parsed.password = '';
  return { url: `${parsed.toString().replace(/\/+$/, '')}/`, basicAuth };
}

/**
 * pino-loki reports each failed push with console.error; in this worker nothing else uses the
 * console, so the first report becomes one pino-shaped line on stderr and later ones are dropped.
 */
function reportFailuresOnce(url: string): void {
  let reported = false;
  console.error = (...args: unknown[]) => {
    if (reported) return;
    reported = true;
    const cause = args.map(describe).join(' ').replace(/\s+/g, ' ').trim().slice(0, 500);
    const line = {
      level: 40,
      time: Date.now(),
      name: 'driftwood',
      msg: `logs: Loki at ${url} did not take a batch of log lines (DRIFTWOOD_LOKI_URL): ${cause}; the lines stay on stderr, and later failures are not reported`,
    };
    // Straight to fd 2: a worker's process.stderr is relayed by the main thread, which may be exiting.
    writeSync(2, `${JSON.stringify(line)}\n`);
  };
}

function describe(value: unknown): string {
  if (!(value instanceof Error)) return String(value);
  const cause = (value as { cause?: { code?: unknown; message?: unknown } }).cause;
  const detail = cause?.code ?? cause?.message;
  return detail === undefined ? value.message : `${value.message} (${String(detail)})`;
}
