/**
 * Scoring by id: the latency of `POST /v1/predict/by-id` for one id at a time on a simulated
 * PostgreSQL warehouse, beside `POST /v1/predict` with the same customers' full rows.
 *   1. `driftwood simulate` + `driftwood ingest` land BENCH_CUSTOMERS customers over BENCH_HOURS hours
 *      of activity in a fresh PostgreSQL database; `driftwood train` fits a logistic champion on it
 *      (not timed)
 *   2. the API (`buildApp`, the prediction log on) listens on a port; one keep-alive client sends
 *      one request at a time: BENCH_IDS distinct ids (each a cache miss: the point-in-time statement
 *      for that id in PostgreSQL), the same ids again (cache hits), the same customers' full rows to
 *      /v1/predict, unknown ids (404 after a query); then BENCH_IDS more distinct ids from
 *      BENCH_CONCURRENCY clients at once
 *   3. the statement alone (`profile.rowOf`, in process, no HTTP), and the server's own
 *      `driftwood_feature_lookup_seconds`
 *
 *   make bench-serving-by-id     (BENCH_CUSTOMERS, BENCH_HOURS, BENCH_IDS, BENCH_CONCURRENCY,
 *                                 BENCH_PG: an admin URL, MLFLOW_TRACKING_URI to reuse a server)
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { loadContract, MlflowClient, openWarehouse, tabularProfile } from '@driftwood/tasks';
import knexFactory from 'knex';

// Run from the repository root (make does). The API is loaded from its build by path.
const root = process.cwd();
const { buildApp } = (await import(
  pathToFileURL(path.join(root, 'serving', 'dist', 'app.js')).href
)) as typeof import('../../serving/dist/app.js');

const customers = Number(process.env.BENCH_CUSTOMERS ?? 20_000);
const hours = Number(process.env.BENCH_HOURS ?? 240);
const nIds = Number(process.env.BENCH_IDS ?? 1000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 8);
const pgAdmin = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const mlflowPort = Number(process.env.BENCH_MLFLOW_PORT ?? 7262);
const dir = path.join(root, '.driftwood', 'bench', 'serving-by-id');
const dbName = `driftwood_bench_by_id_${randomBytes(3).toString('hex')}`;
const warehouseUrl = pgAdmin.replace(/\/[^/]*$/, `/${dbName}`);
const log = (msg: string) => console.log(`[by-id] ${msg}`);

function cli(args: string[], env: Record<string, string>): string {
  const r = spawnSync('node', [path.join(root, 'tasks', 'dist', 'cli.js'), ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`driftwood ${args[0]} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** [p50, p99, max] in ms. */
function percentiles(ms: number[]): [number, number, number] {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] as number;
  return [at(0.5), at(0.99), s.at(-1) as number];
}

const fmt = (x: number) => x.toFixed(2).padStart(7);
const rows: string[] = [];
function report(name: string, ms: number[], extra = ''): void {
  const [p50, p99, max] = percentiles(ms);
  rows.push(`| ${name} | ${ms.length} | ${fmt(p50)} | ${fmt(p99)} | ${fmt(max)} | ${extra} |`);
}

const admin = knexFactory({ client: 'pg', connection: pgAdmin, pool: { min: 0, max: 1 } });
let ownMlflow = false;
try {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log(
    `load average at start: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  let trackingUri = process.env.MLFLOW_TRACKING_URI;
  if (!trackingUri) {
    log(`starting an MLflow server on :${mlflowPort}`);
    spawnSync(
      path.join(root, 'scripts', 'mlflow.sh'),
      ['start', String(mlflowPort), path.join(dir, 'mlflow')],
      {
        stdio: 'inherit',
      },
    );
    trackingUri = `http://127.0.0.1:${mlflowPort}`;
    ownMlflow = true;
  }
  await admin.raw(`CREATE DATABASE ${dbName}`);
  const modelName = `churn-by-id-bench-${Date.now().toString(36)}`;
  const env = {
    DRIFTWOOD_HOME: dir,
    DRIFTWOOD_WAREHOUSE_URL: warehouseUrl,
    DRIFTWOOD_PII_KEY: 'bench-by-id-key-0123456789',
    MLFLOW_TRACKING_URI: trackingUri,
    DRIFTWOOD_MODEL_NAME: modelName,
    DRIFTWOOD_EXPERIMENT: modelName,
  };
  const start = Date.parse('2026-11-01T00:00:00Z');
  let t0 = performance.now();
  cli(
    ['simulate', '--dataset', 'churn', '--start', '2026-11-01T00:00Z', '--hours', String(hours)].concat([
      '--seed',
      '7',
      '--customers',
      String(customers),
    ]),
    env,
  );
  cli(['ingest', '--dataset', 'churn', '--until', new Date(start + hours * 3_600_000).toISOString()], env);
  log(`simulated and ingested into PostgreSQL ${dbName}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  t0 = performance.now();
  cli(['train', '--dataset', 'churn', '--model', 'logistic'], env);
  const train = JSON.parse(readFileSync(path.join(dir, 'results', 'train.json'), 'utf8')) as {
    modelVersion: string;
  };
  const mlflow = new MlflowClient(trackingUri, { timeoutMs: 30_000, retries: 2, backoffMs: 200 });
  await mlflow.setAlias(modelName, 'champion', train.modelVersion);
  log(`trained version ${train.modelVersion}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const db = await openWarehouse(warehouseUrl);
  const contract = await loadContract('churn');
  const profile = tabularProfile(contract);
  const counts = (await db.raw(
    'SELECT (SELECT COUNT(*) FROM customers) AS customers, (SELECT COUNT(*) FROM events) AS events',
  )) as { rows: { customers: string; events: string }[] };
  const now = Date.now();
  // Customers who are customers now (the ids a client would ask about), in a random order.
  const picked = (
    await db.raw(
      `SELECT c.customer_id FROM customers c LEFT JOIN labels l ON l.customer_id = c.customer_id
       WHERE l.churned_at IS NULL OR l.churned_at >= ? ORDER BY md5(c.customer_id) LIMIT ?`,
      [now, 3 * nIds],
    )
  ).rows.map((r: { customer_id: string }) => r.customer_id) as string[];
  if (picked.length < 3 * nIds) throw new Error(`only ${picked.length} customers; lower BENCH_IDS`);
  const [sequential, concurrent, direct] = [0, 1, 2].map((k) => picked.slice(k * nIds, (k + 1) * nIds)) as [
    string[],
    string[],
    string[],
  ];

  // The statement alone, in process: what a lookup costs before HTTP, JSON and scoring.
  const statement: number[] = [];
  for (const id of direct) {
    const s = performance.now();
    if (!(await profile.rowOf(db, now, id))) throw new Error(`no row for a picked id`);
    statement.push(performance.now() - s);
  }

  const app = await buildApp({
    mlflow,
    modelName,
    dataset: 'churn',
    alias: 'champion',
    openAccess: true,
    predictionLog: { dir: path.join(dir, 'predictions'), piiKey: env.DRIFTWOOD_PII_KEY },
    featureStore: { warehouse: async () => db, contract: async () => contract },
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const post = async (route: string, body: unknown, status = 200): Promise<number> => {
    const s = performance.now();
    const res = await fetch(`${url}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    const ms = performance.now() - s;
    if (res.status !== status) throw new Error(`${route}: HTTP ${res.status}, expected ${status}`);
    return ms;
  };
  // Warm-up: connections, JIT, the warehouse's first statements (ids not measured after).
  for (const id of direct.slice(0, 50)) await post('/v1/predict/by-id', { customer_id: id });

  // The server's own lookup times of the one-at-a-time misses and hits: the histogram's sums and
  // counts before and after them.
  const scrape = async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const series = (result: string, what: 'sum' | 'count') =>
      Number(
        text
          .split('\n')
          .find((l) =>
            l.startsWith(`driftwood_feature_lookup_seconds_${what}{dataset="churn",result="${result}"}`),
          )
          ?.split(' ')
          .at(-1) ?? 0,
      );
    return {
      missSum: series('miss', 'sum'),
      missN: series('miss', 'count'),
      hitSum: series('hit', 'sum'),
      hitN: series('hit', 'count'),
    };
  };
  const before = await scrape();
  const miss: number[] = [];
  for (const id of sequential) miss.push(await post('/v1/predict/by-id', { customer_id: id }));
  const hit: number[] = [];
  for (const id of sequential) hit.push(await post('/v1/predict/by-id', { customer_id: id }));
  const after = await scrape();
  const meanMs = (sum: 'missSum' | 'hitSum', n: 'missN' | 'hitN') =>
    (1000 * (after[sum] - before[sum])) / Math.max(1, after[n] - before[n]);
  const fullRows = await Promise.all(sequential.map((id) => profile.rowOf(db, now, id)));
  const full: number[] = [];
  for (const [i, id] of sequential.entries())
    full.push(await post('/v1/predict', { customer_id: id, ...fullRows[i] }));
  const unknown: number[] = [];
  for (let i = 0; i < Math.min(200, nIds); i++)
    unknown.push(await post('/v1/predict/by-id', { customer_id: `UNKNOWN-${i}` }, 404));
  const parallel: number[] = [];
  const queue = [...concurrent];
  const tp = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let id = queue.pop(); id !== undefined; id = queue.pop())
        parallel.push(await post('/v1/predict/by-id', { customer_id: id }));
    }),
  );
  const rate = concurrent.length / ((performance.now() - tp) / 1000);

  await app.close();
  await db.destroy();

  report('statement alone (`rowOf`, in process)', statement);
  report(
    '`/v1/predict/by-id`, cache miss',
    miss,
    `server lookup mean ${meanMs('missSum', 'missN').toFixed(2)} ms`,
  );
  report(
    '`/v1/predict/by-id`, cache hit',
    hit,
    `server lookup mean ${meanMs('hitSum', 'hitN').toFixed(3)} ms`,
  );
  report('`/v1/predict`, the full row', full);
  report('`/v1/predict/by-id`, unknown id (404)', unknown);
  report(`\`/v1/predict/by-id\`, miss, ${concurrency} clients`, parallel, `${rate.toFixed(0)} req/s`);
  const c = counts.rows[0];
  console.log(
    `\nscoring by id on PostgreSQL: ${Number(c?.customers).toLocaleString()} customers, ${Number(c?.events).toLocaleString()} events (${hours} h simulated), load average ${loadavg()[0]?.toFixed(2)}`,
  );
  console.log('| request | n | p50 ms | p99 ms | max ms | |\n| --- | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) console.log(r);
} finally {
  await admin.raw(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
  await admin.destroy();
  if (ownMlflow)
    spawnSync(path.join(root, 'scripts', 'mlflow.sh'), ['stop', String(mlflowPort)], { stdio: 'inherit' });
}
