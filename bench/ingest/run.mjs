// Ingest throughput: N rows x 30 columns of CSV in the lake into PostgreSQL, three ways on the same
// file: `driftwood ingest` (contract validation of every cell, exactly-once ledger, one streamed COPY
// into the table), `psql \copy` (no validation, no ledger), knex batchInsert (parsed rows, no
// validation). Prints measured figures and the load average (the machine may be shared); asserts
// nothing. Usage: node bench/ingest/run.mjs  (BENCH_ROWS=1000000 by default)
// Needs `npx tsc -b tasks` first and the local PostgreSQL (DRIFTWOOD_BENCH_PG, default db test).
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import knexFactory from 'knex';
import { createLogger, DEFAULT_CONTRACTS_DIR, openObjectStore, openWarehouse, readCsv } from '../../tasks/dist/index.js';
import { runIngest } from '../../tasks/dist/ingest/index.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const PG = process.env.DRIFTWOOD_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCHEMA = `bench_ingest_${process.pid}`;
const COLS = ['id', 'at', ...Array.from({ length: 28 }, (_, i) => `f${i}`)];

const dir = mkdtempSync(path.join(os.tmpdir(), 'driftwood-bench-ingest-'));
const contracts = path.join(dir, 'contracts');
mkdirSync(contracts);
copyFileSync(path.join(DEFAULT_CONTRACTS_DIR, 'contract.schema.json'), path.join(contracts, 'contract.schema.json'));
writeFileSync(
  path.join(contracts, 'bench.yaml'),
  JSON.stringify({
    dataset: 'bench',
    version: 1,
    task: 'regression',
    builder: 'columns',
    tables: [
      {
        name: 'bench_rows',
        files: ['rows.csv'],
        key: 'id',
        columns: [
          { name: 'id', type: 'integer', role: 'id', nullable: false },
          { name: 'at', type: 'timestamp', role: 'timestamp', nullable: false },
          ...COLS.slice(2).map((name) => ({ name, type: 'number', role: 'feature', nullable: true, on_anomaly: 'coerce' })),
        ],
      },
    ],
  }),
);

// The file: written once into the lake, streamed by every loader.
const lakeDir = path.join(dir, 'lake');
const key = 'raw/bench/dt=2026-11-01/hr=00/rows.csv';
const file = path.join(lakeDir, key);
mkdirSync(path.dirname(file), { recursive: true });
const out = createWriteStream(file);
out.write(`${COLS.join(',')}\n`);
const t0 = Date.parse('2026-11-01T00:00:00Z');
for (let i = 0; i < ROWS; i++) {
  let line = `${i},${new Date(t0 + i * 1000).toISOString()}`;
  for (let j = 0; j < 28; j++) line += `,${((i * 7919 + j * 104729) % 100000) / 100}`;
  if (!out.write(`${line}\n`)) await once(out, 'drain');
}
out.end();
await once(out, 'finish');
const mb = (statSync(file).size / 1e6).toFixed(1);
console.log(`file: ${ROWS} rows x ${COLS.length} columns, ${mb} MB CSV`);
// CPU seconds of every PostgreSQL server process (backends, WAL writer, checkpointer) from /proc:
// the server's share of a load, which moves far less than wall time on a shared machine.
const pgCpu = () => {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (!stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).startsWith('postgres')) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // The process ended while being read.
    }
  }
  return ticks / 100;
};
const ownCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const cpu = (s) => `${s.toFixed(1)} s`;
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(`load average before: ${load()} (${os.cpus().length} cores)`);

const admin = knexFactory({ client: 'pg', connection: PG, pool: { min: 0, max: 1 } });
await admin.raw(`CREATE SCHEMA ${SCHEMA}`);
const url = `${PG}?options=${encodeURIComponent(`-c search_path=${SCHEMA}`)}`;
const rate = (ms) => Math.round((ROWS / ms) * 1000);
try {
  // 1. driftwood ingest (contract-driven, exactly-once ledger, batched upserts in one transaction).
  const db = await openWarehouse(url);
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 100);
  const pg0 = pgCpu();
  const own0 = ownCpu();
  const a = performance.now();
  const r = await runIngest(
    { dataset: 'bench', piiKey: undefined, now: Date.now, contractsDir: contracts, batchRows: 5000 },
    { lake: openObjectStore(`file://${lakeDir}`), db, log: createLogger('warn') },
  );
  const ours = performance.now() - a;
  const oursCpu = { node: ownCpu() - own0, pg: pgCpu() - pg0 };
  clearInterval(sampler);
  if (r.rowsLoaded !== ROWS) throw new Error(`loaded ${r.rowsLoaded} of ${ROWS}`);
  console.log(`driftwood ingest: ${rate(ours)} rows/s (${(ours / 1000).toFixed(1)} s), peak RSS ${(peak / 1e6).toFixed(0)} MB; CPU: node ${cpu(oursCpu.node)}, PostgreSQL ${cpu(oursCpu.pg)}`);

  // 2. psql \copy into a table of the same shape.
  await db.raw('CREATE TABLE copy_rows (LIKE bench_rows INCLUDING ALL)');
  await db.raw('ALTER TABLE copy_rows ALTER COLUMN at TYPE text, ALTER COLUMN source_key DROP NOT NULL');
  const pg1 = pgCpu();
  const b = performance.now();
  execFileSync('psql', [url.replace(/\?.*$/, ''), '-v', 'ON_ERROR_STOP=1', '-c', `SET search_path=${SCHEMA}`, '-c', `\\copy copy_rows (${COLS.join(',')}) FROM '${file}' CSV HEADER`], { stdio: 'ignore' });
  const psql = performance.now() - b;
  console.log(`psql \\copy:       ${rate(psql)} rows/s (${(psql / 1000).toFixed(1)} s); CPU: PostgreSQL ${cpu(pgCpu() - pg1)}`);

  // 3. knex batchInsert of the parsed rows (no validation), 1000 per statement.
  await db.raw('CREATE TABLE knex_rows (LIKE copy_rows INCLUDING ALL)');
  const c = performance.now();
  const src = await readCsv((await import('node:fs')).createReadStream(file));
  let batch = [];
  await db.transaction(async (trx) => {
    for await (const row of src.rows) {
      batch.push(row.values);
      if (batch.length === 10_000) {
        await trx.batchInsert('knex_rows', batch, 1000);
        batch = [];
      }
    }
    if (batch.length) await trx.batchInsert('knex_rows', batch, 1000);
  });
  const knex = performance.now() - c;
  console.log(`knex batchInsert:  ${rate(knex)} rows/s (${(knex / 1000).toFixed(1)} s)`);
  console.log(`ours / psql \\copy: ${(psql / ours).toFixed(2)}x`);
  console.log(`load average after: ${load()}`);
  await db.destroy();
} finally {
  await admin.raw(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await admin.destroy();
  rmSync(dir, { recursive: true, force: true });
}
