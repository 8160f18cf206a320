import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openObjectStore, openWarehouse, type Warehouse } from '@driftwood/tasks';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runForget } from '../../tasks/src/forget/index.js';
import { runIngest } from '../../tasks/src/ingest/index.js';
import { tokenise } from '../../tasks/src/pii.js';
import { inputParquet, readScoresParquet, scoresParquet } from '../../tasks/src/score/files.js';
import { replaceScores } from '../../tasks/src/score/table.js';
import { runSimulate } from '../../tasks/src/simulate/index.js';
import { runCli, silentLog, tempHome, uniqueName } from '../support/env.js';

const PG_ADMIN = process.env.DRIFTWOOD_TEST_PG_ADMIN ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const PII_KEY = 'forget-test-key-0123456789abcdef';

/** Every file under a folder, with its text. */
function filesUnder(dir: string): { file: string; text: string }[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const file = path.join(e.parentPath, e.name);
      return { file, text: readFileSync(file, 'utf8') };
    });
}

async function countsFor(db: Warehouse, id: string) {
  const n = async (table: string) =>
    Number((await db(table).where({ customer_id: id }).count({ n: '*' }))[0]?.n ?? 0);
  return { customers: await n('customers'), events: await n('events'), labels: await n('labels') };
}

async function totals(db: Warehouse) {
  const n = async (table: string) => Number((await db(table).count({ n: '*' }))[0]?.n ?? 0);
  return { customers: await n('customers'), events: await n('events'), labels: await n('labels') };
}

describe('driftwood forget --customer: erasure from the warehouse and the lake (built CLI)', () => {
  const home = tempHome('driftwood-forget-');
  const lakeDir = path.join(home, 'lake');
  // forget checks the dataset's MLflow artifacts too: without a reachable server it reports the
  // erasure incomplete.
  const env = {
    DRIFTWOOD_HOME: home,
    DRIFTWOOD_PII_KEY: PII_KEY,
    MLFLOW_TRACKING_URI: inject('mlflowUri'),
    DRIFTWOOD_EXPERIMENT: uniqueName('exp-forget'),
  };
  let db: Warehouse;
  let victim: string;
  let victimEmail: string;
  let before: { customers: number; events: number; labels: number };
  let victimRows: { customers: number; events: number; labels: number };

  beforeAll(async () => {
    const sim = await runCli(
      ['simulate', '--start', '2026-11-01T00:00Z', '--hours', '72', '--seed', '5', '--customers', '150'],
      env,
    );
    expect(sim.code, sim.stderr).toBe(0);
    const ingest = await runCli(['ingest', '--until', '2026-11-05T00:00Z'], env);
    expect(ingest.code, ingest.stderr).toBe(0);
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    // A customer with rows in all three tables, so every kind of trace is exercised.
    const row = await db('labels')
      .join('customers', 'customers.customer_id', 'labels.customer_id')
      .whereExists(db('events').whereRaw('events.customer_id = labels.customer_id'))
      .first('labels.customer_id as id');
    if (!row) throw new Error('no customer with a label and events in the simulated data');
    victim = row.id;
    victimEmail = `${victim.toLowerCase()}@example.com`;
    victimRows = await countsFor(db, victim);
    before = await totals(db);
    await db.destroy();
  });

  afterAll(async () => {
    await db?.destroy();
  });

  it('the chosen customer has rows everywhere before the request', () => {
    expect(victimRows.customers).toBe(1);
    expect(victimRows.events).toBeGreaterThan(0);
    expect(victimRows.labels).toBe(1);
    const lakeText = filesUnder(lakeDir)
      .map((f) => f.text)
      .join('\n');
    expect(lakeText).toContain(victim);
    expect(lakeText).toContain(victimEmail);
    // Positive control for the byte search below: the warehouse file holds the id and the email token.
    const warehouseBytes = readFileSync(path.join(home, 'warehouse.db')).toString('latin1');
    expect(warehouseBytes).toContain(victim);
    expect(warehouseBytes).toContain(tokenise(victimEmail, PII_KEY));
  });

  it('removes every trace from the warehouse and the lake, keeps everyone else, and audits without PII', async () => {
    // A quarantined copy of a file holding the customer (as ingest writes for a file with a bad row).
    const holding = filesUnder(path.join(lakeDir, 'raw')).find(
      (f) => f.file.endsWith('events.csv') && f.text.includes(`,${victim},`),
    );
    if (!holding) throw new Error('no events file holds the customer');
    const qKey = path.relative(path.join(lakeDir, 'raw'), holding.file);
    const qFile = path.join(lakeDir, 'quarantine', qKey);
    mkdirSync(path.dirname(qFile), { recursive: true });
    writeFileSync(qFile, holding.text);
    // And a JSON Lines file (a delivery format the readers accept) with one of the victim's rows.
    const jsonl = path.join(lakeDir, 'quarantine', 'churn', 'dt=2026-11-02', 'hr=05', 'events.jsonl');
    mkdirSync(path.dirname(jsonl), { recursive: true });
    writeFileSync(
      jsonl,
      `${JSON.stringify({ event_id: 1, customer_id: victim, event_type: 'login' })}\n${JSON.stringify({ event_id: 2, customer_id: 'C999999', event_type: 'login' })}\n`,
    );

    // The API's prediction log names customers by token: two of the victim's lines, one of someone else's.
    const victimToken = tokenise(victim, PII_KEY);
    const predictions = path.join(home, 'predictions', 'dt=2026-11-03', 'hr=10', 'predictions.jsonl');
    mkdirSync(path.dirname(predictions), { recursive: true });
    const line = (token: string, p: number) =>
      `${JSON.stringify({ ts: '2026-11-03T10:00:00.000Z', customer_token: token, features: { plan: 'basic' }, probability: p, label: 0 })}\n`;
    writeFileSync(
      predictions,
      line(victimToken, 0.1) + line(tokenise('C999999', PII_KEY), 0.2) + line(victimToken, 0.3),
    );

    // A batch scoring run's output names customers by the same token: a scores partition and the table.
    const otherToken = tokenise('C999999', PII_KEY);
    const score = (entityToken: string, s: number) => ({
      entityToken,
      score: s,
      label: 0 as const,
      modelName: 'churn',
      modelVersion: '1',
      asOf: Date.parse('2026-11-04T05:00Z'),
    });
    const scoresFile = path.join(
      lakeDir,
      'scores',
      'churn',
      'dt=2026-11-04',
      'hr=05',
      'part-00000-node.parquet',
    );
    mkdirSync(path.dirname(scoresFile), { recursive: true });
    writeFileSync(scoresFile, scoresParquet([score(victimToken, 0.4), score(otherToken, 0.6)]));
    // The Spark engine's input of the same run: the token and the raw inputs, counted by its manifest.
    const inputDir = path.join(lakeDir, 'scoring', 'churn', 'dt=2026-11-04', 'hr=05', 'input');
    mkdirSync(inputDir, { recursive: true });
    const inputs = [victimToken, otherToken].map((entityToken, i) => ({
      entityToken,
      features: { sessions_30d: i + 1, plan: 'basic' },
    }));
    writeFileSync(path.join(inputDir, 'rows.parquet'), inputParquet(inputs, ['sessions_30d'], ['plan']));
    writeFileSync(
      path.join(inputDir, 'manifest.json'),
      JSON.stringify({ rows: 2, numeric: ['sessions_30d'], categorical: ['plan'] }),
    );
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    await replaceScores(db, 'churn', Date.parse('2026-11-04T05:00Z'), [
      score(victimToken, 0.4),
      score(otherToken, 0.6),
    ]);
    await db.destroy();

    const r = await runCli(['forget', '--customer', victim], env);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.places.batchScores).toMatchObject({ filesRewritten: 2, rowsRemoved: 2, problems: [] });
    expect(JSON.parse(readFileSync(path.join(inputDir, 'manifest.json'), 'utf8')).rows).toBe(1);
    expect(result.warehouse.batch_scores).toBe(1);
    const scoresLeft = await readScoresParquet(scoresFile, readFileSync(scoresFile));
    expect(scoresLeft.map((s) => [s.entityToken, s.score])).toEqual([[otherToken, 0.6]]);
    expect(result).toMatchObject({
      found: true,
      warehouse: victimRows,
      predictions: { filesRewritten: 1, linesRemoved: 2 },
    });
    const left = readFileSync(predictions, 'utf8').trim().split('\n');
    expect(left).toHaveLength(1);
    expect(JSON.parse(left[0] ?? '{}').probability).toBe(0.2);
    expect(result.lake.rowsRemoved).toBeGreaterThanOrEqual(victimRows.events + 3);
    expect(result.lake.parquetNotRewritten).toEqual([]);
    expect(readFileSync(jsonl, 'utf8').trim().split('\n')).toHaveLength(1);

    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    expect(await countsFor(db, victim)).toEqual({ customers: 0, events: 0, labels: 0 });
    expect((await db('batch_scores').select('entity_token')).map((r) => r.entity_token)).toEqual([
      otherToken,
    ]);
    const after = await totals(db);
    expect(after).toEqual({
      customers: before.customers - 1,
      events: before.events - victimRows.events,
      labels: before.labels - 1,
    });
    await db.destroy();

    // No file anywhere under DRIFTWOOD_HOME mentions the id or the email: lake, quarantine, audit,
    // step results, and the SQLite warehouse file and its WAL read as raw bytes (deleted rows must
    // not linger in free pages).
    for (const f of filesUnder(home)) {
      expect(f.text.includes(victim), `${f.file} still mentions the customer id`).toBe(false);
      expect(f.text.includes(victimEmail), `${f.file} still holds the email`).toBe(false);
      expect(f.text.includes(victimToken), `${f.file} still holds the customer's token`).toBe(false);
      expect(f.text.includes(tokenise(victimEmail, PII_KEY)), `${f.file} still holds the email token`).toBe(
        false,
      );
    }
    expect(r.stderr).not.toContain(victim);

    const audit = JSON.parse(readFileSync(path.join(lakeDir, result.auditKey), 'utf8'));
    expect(audit).toMatchObject({ action: 'forget', subjectToken: result.subjectToken, found: true });
    expect(audit.subjectToken).toMatch(/^[0-9a-f]{32}$/);
  });

  it('a later ingest does not bring the customer back, and a second request finds nothing', async () => {
    const ingest = await runCli(['ingest', '--until', '2026-11-05T00:00Z'], env);
    expect(ingest.code, ingest.stderr).toBe(0);
    expect(JSON.parse(ingest.stdout)).toMatchObject({ loaded: 0, rowsLoaded: 0 });
    const again = await runCli(['forget', '--customer', victim], env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      found: false,
      warehouse: { customers: 0, events: 0, labels: 0 },
      lake: { filesRewritten: 0, rowsRemoved: 0 },
    });
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    expect(await countsFor(db, victim)).toEqual({ customers: 0, events: 0, labels: 0 });
    await db.destroy();
  });

  it('with MLflow unreachable it erases everything else, prints what it did and exits 1 (issue 20, problem 7)', async () => {
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    const other = (await db('customers').whereNot({ customer_id: victim }).first('customer_id'))
      ?.customer_id as string;
    await db.destroy();
    const r = await runCli(['forget', '--customer', other], {
      ...env,
      MLFLOW_TRACKING_URI: 'http://127.0.0.1:9',
      DRIFTWOOD_HTTP_RETRIES: '0',
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/ERASURE_INCOMPLETE: erasure incomplete: 1 place\(s\) not reached/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({
      found: true,
      complete: false,
      retryable: true,
      warehouse: { customers: 1 },
    });
    expect(result.unreached[0]).toMatch(/^mlflowArtifacts: experiment /);
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    expect(await countsFor(db, other)).toEqual({ customers: 0, events: 0, labels: 0 });
    await db.destroy();
  });

  it("leaves a running API's spill file alone, says so, and exits 1 so the erasure is run again", async () => {
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    const other = (await db('customers').whereNot({ customer_id: victim }).first('customer_id'))
      ?.customer_id as string;
    await db.destroy();
    // This test process stands for the running API that owns the spill file.
    const spill = path.join(home, 'predictions', '.spill', `${process.pid}-1.spill`);
    mkdirSync(path.dirname(spill), { recursive: true });
    const text = `${JSON.stringify({ ts: '2026-11-03T10:00:00.000Z', customer_token: tokenise(other, PII_KEY), probability: 0.5 })}\n`;
    writeFileSync(spill, text);
    const r = await runCli(['forget', '--customer', other], env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/ERASURE_INCOMPLETE: .*spill file of a running API process/);
    expect(JSON.parse(r.stdout)).toMatchObject({ complete: false, retryable: true });
    expect(readFileSync(spill, 'utf8')).toBe(text);
    rmSync(spill);
  });

  it('a malformed id is a usage error naming --customer, and nothing is touched', async () => {
    const r = await runCli(['forget', '--customer', '../etc'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/USAGE: --customer: expected a customer id/);
    const missing = await runCli(['forget'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--customer is required/);
  });
});

describe('runForget on a PostgreSQL warehouse', () => {
  const admin = knexFactory({ client: 'pg', connection: PG_ADMIN, pool: { min: 0, max: 1 } });
  const name = `driftwood_forget_${process.pid}_${Date.now().toString(36)}`;
  const home = tempHome('driftwood-forget-pg-');
  const lake = openObjectStore(`file://${path.join(home, 'lake')}`);
  let db: Warehouse;

  beforeAll(async () => {
    await admin.raw(`CREATE DATABASE ${name}`);
    db = await openWarehouse(PG_ADMIN.replace(/\/[^/]*$/, `/${name}`));
    const start = Date.parse('2026-11-01T00:00:00Z');
    await runSimulate(
      { dataset: 'churn', start, hours: 48, seed: 8, entities: 80, labelDelayHours: 24 },
      { lake, log: silentLog },
    );
    await runIngest({ dataset: 'churn', piiKey: PII_KEY, now: Date.now }, { lake, db, log: silentLog });
  });

  afterAll(async () => {
    await db?.destroy();
    await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.destroy();
  });

  it('deletes the rows in one transaction and keeps the ledger in step with the rewritten files', async () => {
    const row = await db('events').first('customer_id');
    const id = row?.customer_id as string;
    const before = await countsFor(db, id);
    expect(before.customers + before.events).toBeGreaterThan(1);
    const loadedBefore = Number((await db('ingest_ledger').sum({ n: 'rows_loaded' }))[0]?.n);

    const result = await runForget(
      { customerId: id, dataset: 'churn', piiKey: PII_KEY, now: Date.now },
      { lake, db, log: silentLog },
    );
    expect(result.warehouse).toEqual(before);
    expect(await countsFor(db, id)).toEqual({ customers: 0, events: 0, labels: 0 });
    // Every row removed from a loaded file is subtracted from that file's ledger entry.
    const loadedAfter = Number((await db('ingest_ledger').sum({ n: 'rows_loaded' }))[0]?.n);
    expect(loadedBefore - loadedAfter).toBe(result.lake.rowsRemoved);
    const again = await runIngest(
      { dataset: 'churn', piiKey: PII_KEY, now: Date.now },
      { lake, db, log: silentLog },
    );
    expect(again).toMatchObject({ loaded: 0, rowsLoaded: 0 });
    expect(await countsFor(db, id)).toEqual({ customers: 0, events: 0, labels: 0 });
  });
});
