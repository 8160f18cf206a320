import http from 'node:http';

/** What became of one request of a closed-loop client. */
export type Outcome =
  /** Answered, with this status; `closing` when the server said `Connection: close`. */
  | { kind: 'answered'; status: number; closing: boolean; retryAfter: string | undefined; ms: number }
  /** A new connection was refused: the request was never sent (the listener is closed). */
  | { kind: 'refused' }
  /** Written and never answered: reset, hung up, or cut. */
  | { kind: 'lost'; error: string };

export interface ClosedLoopResult {
  outcomes: Outcome[];
  answered: number;
  lost: number;
  refused: number;
  /** Answers by status code. */
  byStatus: Map<number, number>;
  /** Latencies (ms) of the 2xx answers, sorted. */
  okMs: number[];
}

/**
 * A closed-loop HTTP/1.1 client: `connections` keep-alive connections, each sending its next request
 * the moment the previous one is answered, until `stop()` (or until the server answers with
 * `Connection: close`, after which that connection sends nothing more: the server said it is going).
 * Every request is classified: answered (by status), refused (a new connection the listener refused,
 * never sent) or lost.
 */
export function closedLoop(opts: {
  port: number;
  connections: number;
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
}): { stop: () => Promise<ClosedLoopResult>; sent: () => number } {
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: opts.connections,
    maxFreeSockets: opts.connections,
  });
  const outcomes: Outcome[] = [];
  let stopping = false;
  const headers = {
    ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
    ...opts.headers,
  };
  const once = () =>
    new Promise<Outcome>((resolve) => {
      const started = performance.now();
      const req = http.request(
        { host: '127.0.0.1', port: opts.port, method: opts.method, path: opts.path, agent, headers },
        (res) => {
          res.resume();
          res.on('end', () =>
            resolve({
              kind: 'answered',
              status: res.statusCode ?? 0,
              closing: res.headers.connection === 'close',
              retryAfter: res.headers['retry-after'],
              ms: performance.now() - started,
            }),
          );
          res.on('error', (err) => resolve({ kind: 'lost', error: err.message }));
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) =>
        resolve(
          err.code === 'ECONNREFUSED'
            ? { kind: 'refused' }
            : { kind: 'lost', error: err.code ?? err.message },
        ),
      );
      req.end(opts.body);
    });
  const lane = async () => {
    while (!stopping) {
      const outcome = await once();
      outcomes.push(outcome);
      if (outcome.kind !== 'answered' || outcome.closing) return;
    }
  };
  const lanes = Array.from({ length: opts.connections }, lane);
  return {
    sent: () => outcomes.length,
    stop: async () => {
      stopping = true;
      await Promise.all(lanes);
      agent.destroy();
      const byStatus = new Map<number, number>();
      const okMs: number[] = [];
      for (const o of outcomes)
        if (o.kind === 'answered') {
          byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
          if (o.status < 300) okMs.push(o.ms);
        }
      okMs.sort((a, b) => a - b);
      return {
        outcomes,
        answered: outcomes.filter((o) => o.kind === 'answered').length,
        lost: outcomes.filter((o) => o.kind === 'lost').length,
        refused: outcomes.filter((o) => o.kind === 'refused').length,
        byStatus,
        okMs,
      };
    },
  };
}

/** The `q` quantile of sorted values (nearest rank). */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}
