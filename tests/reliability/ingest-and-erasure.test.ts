import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openWarehouse, type Warehouse } from '@driftwood/tasks';
import knexFactory from 'knex';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ROOT, runCli, tempHome } from '../support/env.js';
import { seedCustomerEverywhere, tracesLeft } from '../support/forget-seed.js';
import { atScale, recordRow } from '../support/reliability.js';

/**
 * Reliability (issue 20, problems 7 and 8): an ingest killed with SIGKILL at random points and run
 * again ends with the same tables, keys and ledger as a clean ingest of the same lake, and leaves no
 * partial file behind; a customer seeded in every place leaves no trace after `forget`.
 */

const PII_KEY = 'reliability-key-0123456789abcdef';
const PG_DB = process.env.DRIFTWOOD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TABLES = [
  ['customers', 'customer_id'],
  ['events', 'event_id'],
  ['labels', 'customer_id'],
] as const;

const admin = knexFactory({ client: 'pg', connection: PG_DB, pool: { min: 0, max: 1 } });
const schemas: string[] = [];
afterAll(async () => {
  for (const s of schemas) await admin.raw(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await admin.destroy();
});

async function schemaUrl(tag: string): Promise<string> {
  const schema = `dw_rel_${tag}_${Date.now().toString(36)}_${process.pid}`;
  await admin.raw(`CREATE SCHEMA ${schema}`);
  schemas.push(schema);
  return `${PG_DB}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

/** What a warehouse holds, in a form two warehouses can be compared by. */
async function fingerprint(db: Warehouse) {
  const tables: Record<string, { rows: number; keys: number; keysDigest: string }> = {};
  for (const [table, key] of TABLES) {
    const r = (
      await db.raw(
        `SELECT count(*) AS n, count(DISTINCT "${key}") AS k, md5(coalesce(string_agg("${key}"::text, ',' ORDER BY "${key}"::text), '')) AS d FROM "${table}"`,
      )
    ).rows[0];
    tables[table] = { rows: Number(r.n), keys: Number(r.k), keysDigest: r.d };
  }
  const ledger = (
    await db('ingest_ledger')
      .orderBy('object_key')
      .select(
        'object_key',
        'sha256',
        'status',
        'rows_read',
        'rows_loaded',
        'rows_quarantined',
        'rows_duplicate',
      )
  ).map((e) => JSON.stringify(e));
  return { tables, ledger };
}

/** Files with a temporary name anywhere under a folder. */
const tmpFiles = (dir: string): string[] =>
  (existsSync(dir) ? readdirSync(dir, { recursive: true }) : [])
    .map(String)
    .filter((f) => f.endsWith('.tmp'));

describe('reliability: kill -9 during ingest, and erasure of a seeded customer', () => {
  it('kill -9 during ingest: 0 rows lost or duplicated', async () => {
    const kills = atScale({ ci: 3, full: 20 });
    const customers = atScale({ ci: 3_000, full: 100_000 });
    const reference = tempHome('driftwood-rel-ref-');
    const killed = tempHome('driftwood-rel-kill-');
    const sim = await runCli(
      [
        'simulate',
        '--start',
        '2026-11-01T00:00Z',
        '--hours',
        '3',
        '--seed',
        '21',
        '--customers',
        String(customers),
        '--anomalies',
        '0.5',
      ],
      { DRIFTWOOD_HOME: reference, DRIFTWOOD_PII_KEY: PII_KEY },
    );
    expect(sim.code, sim.stderr).toBe(0);
    // The same delivered files for both (half of them with planted anomalies, so files are quarantined
    // and reason files written): the clean reference and the run that is killed.
    cpSync(path.join(reference, 'lake', 'raw'), path.join(killed, 'lake', 'raw'), { recursive: true });
    const envOf = async (home: string, tag: string) => ({
      DRIFTWOOD_HOME: home,
      DRIFTWOOD_PII_KEY: PII_KEY,
      DRIFTWOOD_WAREHOUSE_URL: await schemaUrl(tag),
      LOG_LEVEL: 'warn',
    });
    const args = ['ingest', '--until', '2026-11-01T03:00Z'];

    const refEnv = await envOf(reference, 'ref');
    const t0 = performance.now();
    const clean = await runCli(args, refEnv);
    const cleanMs = performance.now() - t0;
    expect(clean.code, clean.stderr).toBe(0);

    const refDb = await openWarehouse(refEnv.DRIFTWOOD_WAREHOUSE_URL);
    const want = await fingerprint(refDb).finally(() => refDb.destroy());
    const rows = Object.values(want.tables).reduce((a, t) => a + t.rows, 0);

    // Each kill is its own trial: a fresh warehouse, an ingest killed at a random point of a clean
    // run's time (past the process start), the re-run, and a comparison with the reference.
    let landed = 0;
    let early = 0;
    // The time a run takes varies with the machine's load: a run that ends before its kill is due
    // narrows the window to its own duration.
    let window = cleanMs;
    let lost = 0;
    let duplicated = 0;
    let ledgerDiffs = 0;
    let mismatches = 0;
    const leftovers: string[] = [];
    const delays: number[] = [];
    // A run that finishes before its kill is due counts for nothing: trials go on until `kills`
    // kills have landed mid-run (at most twice as many trials).
    for (let i = 0; landed < kills && i < 2 * kills; i++) {
      const killEnv = await envOf(killed, `kill${i}`);
      const delay = Math.round(window * (0.15 + 0.8 * Math.random()));
      const started = performance.now();
      delays.push(delay);
      const child = spawn('node', [path.join(ROOT, 'tasks', 'dist', 'cli.js'), ...args], {
        env: { ...process.env, ...killEnv },
        stdio: 'ignore',
      });
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      const outcome = await Promise.race([
        exited.then(() => 'finished' as const),
        sleep(delay).then(() => 'due' as const),
      ]);
      if (outcome === 'due') {
        child.kill('SIGKILL');
        landed++;
      } else {
        early++;
        window = performance.now() - started;
      }
      await exited;
      const rerun = await runCli(args, killEnv);
      expect(rerun.code, rerun.stderr).toBe(0);
      const db = await openWarehouse(killEnv.DRIFTWOOD_WAREHOUSE_URL);
      const got = await fingerprint(db).finally(() => db.destroy());
      for (const [t] of TABLES) {
        lost += Math.max(0, (want.tables[t]?.rows ?? 0) - (got.tables[t]?.rows ?? 0));
        duplicated += Math.max(0, (got.tables[t]?.rows ?? 0) - (got.tables[t]?.keys ?? 0));
      }
      ledgerDiffs += got.ledger.filter((e) => !want.ledger.includes(e)).length;
      if (JSON.stringify(got) !== JSON.stringify(want)) mismatches++;
      leftovers.push(...tmpFiles(path.join(killed, 'lake')), ...tmpFiles(path.join(killed, 'tmp')));
    }
    const ok =
      landed === kills &&
      lost === 0 &&
      duplicated === 0 &&
      ledgerDiffs === 0 &&
      mismatches === 0 &&
      leftovers.length === 0;
    recordRow({
      check: `kill -9 during ingest (${landed} kills, ${rows} rows)`,
      goal: '0 rows lost or duplicated',
      measured: `${lost} lost, ${duplicated} duplicated, ${ledgerDiffs} ledger differences, ${mismatches} warehouses unlike the reference, ${leftovers.length} partial files left; ${landed} kills landed before their run ended, ${early} runs finished before their kill was due (kills at ${delays.join(', ')} ms of a ${Math.round(cleanMs)} ms clean run)`,
      ok,
    });
    expect({ lost, duplicated, ledgerDiffs, mismatches, leftovers }).toEqual({
      lost: 0,
      duplicated: 0,
      ledgerDiffs: 0,
      mismatches: 0,
      leftovers: [],
    });
    expect(landed).toBe(kills);
  }, 900_000);

  it('seeded PII after forget: 0 traces of a forgotten customer', async () => {
    const s = await seedCustomerEverywhere(inject('mlflowUri'), {
      customers: atScale({ ci: 150, full: 600 }),
      seed: 23,
    });
    const places = Object.keys(s.seeded);
    const seededPlaces = places.filter((p) => (s.seeded[p] ?? []).length > 0);
    const forget = await runCli(['forget', '--customer', s.victim], s.env);
    const left = await tracesLeft(s);
    const again = await runCli(['forget', '--customer', s.victim], s.env);
    const second = JSON.parse(again.stdout || '{}');
    const ok =
      forget.code === 0 &&
      seededPlaces.length === places.length &&
      left.length === 0 &&
      again.code === 0 &&
      second.found === false;
    recordRow({
      check: 'seeded PII after forget',
      goal: '0 traces of a forgotten customer',
      measured: `${seededPlaces.length} of ${places.length} places seeded (${places.join(', ')}), ${left.length} traces found after forget (home, warehouse bytes, MLflow artifact store); re-run: ${second.summary ?? again.stderr.trim()}`,
      ok,
    });
    expect(forget.code, forget.stderr).toBe(0);
    expect(seededPlaces).toEqual(places);
    expect(left).toEqual([]);
    expect(second).toMatchObject({ found: false, complete: true });
  }, 900_000);
});
