import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import {
  CHURN_CATEGORICAL,
  CHURN_NUMERIC,
  type Contract,
  ensureContractTables,
  type LabelledRow,
  loadContract,
  openWarehouse,
  Rng,
  type TabularProfile,
  tabularProfile,
  type Warehouse,
} from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import knexFactory from 'knex';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { mlflowClient, tempHome, uniqueName } from '../support/env.js';
import { eventually, registerTestModel, spawnServe } from '../support/serving-model.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T = Date.UTC(2026, 10, 20); // the as-of time: the training cutoff, and "now" for the API
const PG_ADMIN = process.env.DRIFTWOOD_TEST_PG_ADMIN ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TYPES = ['session', 'session', 'session', 'purchase', 'support_ticket', 'payment_failure', 'other'];
// Every window's edge, on both sides: an id filter that moved a window would move these events.
const EDGES = [0, 3, 7, 30, 37, 90].flatMap((d) => [T - d * DAY, T - d * DAY - 1, T - d * DAY + 1]);
const IDS = Array.from({ length: 200 }, (_, i) => `${['C', 'c', 'b_', 'Z'][i % 4]}${i}`);

/**
 * Customers whose rows the build leaves out (signed up at or after T, churned before it), labels
 * after T, events on every window edge and after T, null values and an event type no feature counts.
 */
async function seed(db: Warehouse): Promise<void> {
  const rng = new Rng(23);
  await db.batchInsert(
    'customers',
    IDS.map((id, i) => ({
      customer_id: id,
      email_token: null,
      signup_at: i % 29 === 0 ? T + (i % 2) * DAY : T - rng.int(1, 900) * DAY,
      plan: ['basic', 'standard', 'premium'][i % 3],
      region: ['north', 'south', 'east', 'west'][i % 4],
      monthly_charges: Math.round((19 + 30 * rng.next()) * 100) / 100,
      source_key: 'test',
    })),
    200,
  );
  const events = Array.from({ length: 5000 }, (_, i) => ({
    event_id: i + 1,
    customer_id: IDS[rng.int(0, IDS.length)],
    event_time: i % 10 === 0 ? (EDGES[i % EDGES.length] as number) : T - rng.int(-5 * DAY, 120 * DAY),
    event_type: TYPES[rng.int(0, TYPES.length)],
    value: i % 97 === 0 ? null : Math.round(rng.next() * 6000) / 100 + 0.1,
    source_key: 'test',
  }));
  await db.batchInsert('events', events, 500);
  await db.batchInsert(
    'labels',
    IDS.filter((_, i) => i % 5 === 0).map((id) => {
      const churnedAt = T + rng.int(-10 * DAY, 5 * DAY);
      return { customer_id: id, churned_at: churnedAt, reported_at: churnedAt + DAY, source_key: 'test' };
    }),
    200,
  );
}

/** For every id, the online row equals the training row at the same as-of time, or both are absent. */
async function expectOnlineEqualsTraining(profile: TabularProfile, db: Warehouse): Promise<LabelledRow[]> {
  const training = await profile.build(db, T, 48);
  const byId = new Map(training.map((r) => [r.customerId, r.features]));
  // The data leaves some ids out of the training rows: online they must be left out too.
  expect(training.length).toBeGreaterThan(150);
  expect(training.length).toBeLessThan(IDS.length);
  for (const id of IDS) expect([id, await profile.rowOf(db, T, id)]).toEqual([id, byId.get(id)]);
  return training;
}

describe('scoring by id', () => {
  const home = tempHome('driftwood-by-id-');
  const modelName = uniqueName('churn-by-id');
  const piiKey = 'by-id-key-0123456789abcdef';
  const logLines: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  );
  let contract: Contract;
  let profile: TabularProfile;
  let db: Warehouse;
  let training: LabelledRow[];
  let app: FastifyInstance;
  let queries = 0;
  let clock = T;
  const apps: FastifyInstance[] = [];

  const build = async (featureStore: Parameters<typeof buildApp>[0]['featureStore']) => {
    const built = await buildApp({
      openAccess: true,
      mlflow: mlflowClient(inject('mlflowUri')),
      modelName,
      dataset: 'churn',
      alias: 'champion',
      logger,
      predictionLog: { dir: path.join(home, 'predictions'), piiKey },
      ...(featureStore ? { featureStore } : {}),
    });
    apps.push(built);
    await built.ready();
    return built;
  };

  beforeAll(async () => {
    contract = await loadContract('churn');
    profile = tabularProfile(contract);
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    await ensureContractTables(db, contract);
    await seed(db);
    training = await profile.build(db, T, 48);
    // Every statement the builder runs takes a connection: counting them counts warehouse queries.
    const acquire = db.client.acquireConnection.bind(db.client);
    db.client.acquireConnection = () => {
      queries++;
      return acquire();
    };
    await registerTestModel(mlflowClient(inject('mlflowUri')), {
      modelName,
      experiment: uniqueName('by-id'),
      seed: 5,
      alias: 'champion',
      fields: { numeric: [...CHURN_NUMERIC], categorical: [...CHURN_CATEGORICAL] },
      rows: training.map((r) => r.features),
    });
    app = await build({ warehouse: async () => db, contract: async () => contract, now: () => clock });
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await db?.destroy();
  });

  it('computes each id’s features online equal to its training row at the same as-of time (SQLite)', async () => {
    await expectOnlineEqualsTraining(profile, db);
  });

  it('answers by id with the probability and label /v1/predict gives the training row, and logs the same features', async () => {
    const sample = training.filter((_, i) => i % 4 === 0);
    for (const r of sample) {
      const byId = await app.inject({
        method: 'POST',
        url: '/v1/predict/by-id',
        payload: { customer_id: r.customerId },
      });
      expect(byId.statusCode, byId.body).toBe(200);
      const full = await app.inject({
        method: 'POST',
        url: '/v1/predict',
        payload: { customer_id: r.customerId, ...r.features },
      });
      expect(full.statusCode, full.body).toBe(200);
      const { as_of, ...prediction } = byId.json();
      expect(as_of).toBe(new Date(T).toISOString());
      expect(prediction).toEqual(full.json());
    }
    // The dataset's prefixed route is the same route, sharing the cache.
    const prefixed = await app.inject({
      method: 'POST',
      url: '/v1/datasets/churn/predict/by-id',
      payload: { customer_id: sample[0]?.customerId },
    });
    expect(prefixed.statusCode, prefixed.body).toBe(200);

    await app.predictionLog?.flush();
    const lines = readLines(path.join(home, 'predictions')).map(
      (l) => JSON.parse(l) as { customer_token: string; features: Record<string, unknown> },
    );
    const byToken = new Map<string, typeof lines>();
    for (const l of lines) byToken.set(l.customer_token, [...(byToken.get(l.customer_token) ?? []), l]);
    expect(byToken.size).toBe(sample.length);
    for (const group of byToken.values()) {
      expect(group.length).toBeGreaterThanOrEqual(2);
      // The by-id line's features (computed online) are the ones the client sent in full.
      for (const l of group) expect(l.features).toEqual(group[0]?.features);
    }
    const sent = new Set(sample.map((r) => JSON.stringify(sortKeys(r.features))));
    for (const l of lines) expect(sent.has(JSON.stringify(sortKeys(l.features)))).toBe(true);
  });

  it('answers 404 naming an id the warehouse does not have, or has not as of now', async () => {
    const unknown = await app.inject({
      method: 'POST',
      url: '/v1/predict/by-id',
      payload: { customer_id: 'NOPE-1' },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({
      error: 'unknown_id',
      message: `customer_id 'NOPE-1' has no churn row as of ${new Date(T).toISOString()}: not in the warehouse, or not in the dataset's rows at that time`,
    });
    // C0 signed up at T: not a customer yet as of T.
    const later = await app.inject({
      method: 'POST',
      url: '/v1/predict/by-id',
      payload: { customer_id: 'C0' },
    });
    expect(later.statusCode).toBe(404);
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/predict/by-id',
      payload: { customer_id: 'C1', plan: 'basic' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toBe('body.plan is not a known field');
  });

  it('keeps an id’s features for the TTL without querying again, then computes them anew', async () => {
    // A customer with no cancellation at all: still one at any later as-of time.
    const id = training.find((r) => IDS.indexOf(r.customerId) % 5 !== 0)?.customerId as string;
    const ask = () => app.inject({ method: 'POST', url: '/v1/predict/by-id', payload: { customer_id: id } });
    const hits = async () => lookups(await app.inject({ method: 'GET', url: '/metrics' }), 'hit');
    clock = T + 5 * DAY; // a new as-of time: nothing kept for it from the tests before
    const before = queries;
    const first = await ask();
    expect(first.statusCode, first.body).toBe(200);
    expect(queries).toBeGreaterThan(before);
    const afterFirst = queries;
    const hitsBefore = await hits();
    clock += 59_999;
    const second = await ask();
    expect(second.json()).toEqual(first.json());
    expect(queries).toBe(afterFirst);
    expect(await hits()).toBe(hitsBefore + 1);
    clock += 1; // 60 s after the first: the TTL has passed
    const third = await ask();
    expect(queries).toBe(afterFirst + 1); // one statement per id
    expect(third.json().as_of).toBe(new Date(clock).toISOString());
    // Concurrent requests for one id share one query.
    clock += 60_000;
    const atOnce = queries;
    const answers = await Promise.all([ask(), ask(), ask(), ask()]);
    for (const a of answers) expect(a.statusCode).toBe(200);
    expect(queries - atOnce).toBe(1);
  });

  it('answers 503 naming DRIFTWOOD_WAREHOUSE_URL for a warehouse that lacks the dataset, and makes no table', async () => {
    const empty = await openWarehouse(`sqlite://${path.join(tempHome('driftwood-by-id-empty-'), 'w.db')}`);
    try {
      const wrong = await build({ warehouse: async () => empty, contract: async () => contract });
      const r = await wrong.inject({
        method: 'POST',
        url: '/v1/predict/by-id',
        payload: { customer_id: 'C1' },
      });
      expect(r.statusCode).toBe(503);
      expect(r.json()).toEqual({
        error: 'warehouse_unavailable',
        message:
          'the warehouse (DRIFTWOOD_WAREHOUSE_URL) has no table customers of dataset churn: ingest into it, or point the setting at the warehouse training reads',
      });
      expect(await empty.schema.hasTable('customers')).toBe(false);
    } finally {
      await empty.destroy();
    }
    // An app built without a feature store does not serve the route (`driftwood serve` always gives one).
    const none = await build(undefined);
    const r = await none.inject({ method: 'POST', url: '/v1/predict/by-id', payload: { customer_id: 'C1' } });
    expect(r.statusCode).toBe(404);
  });

  it('`driftwood serve` names DRIFTWOOD_WAREHOUSE_URL while no warehouse is there, then scores by id from it', async () => {
    const port = 18_000 + Math.floor(Math.random() * 2000);
    const missing = path.join(tempHome('driftwood-by-id-serve-'), 'warehouse.db');
    const server = spawnServe({
      home: tempHome('driftwood-by-id-serve-'),
      port,
      modelName,
      mlflowUri: inject('mlflowUri'),
      extraEnv: {
        DRIFTWOOD_WAREHOUSE_URL: `sqlite://${missing}`,
        DRIFTWOOD_DATASET: 'churn',
        LOG_LEVEL: 'warn',
      },
    });
    try {
      await eventually(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined);
        return res?.ok ? true : undefined;
      }, 60_000);
      const ask = () =>
        fetch(`http://127.0.0.1:${port}/v1/predict/by-id`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ customer_id: id }),
        });
      // A customer with no cancellation: still one as of the real clock.
      const id = training.find((r) => IDS.indexOf(r.customerId) % 5 !== 0)?.customerId as string;
      const down = await ask();
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({
        error: 'warehouse_unavailable',
        message: `setting DRIFTWOOD_WAREHOUSE_URL: no SQLite warehouse at ${missing}: ingest first, or point the setting at the warehouse training reads`,
      });
      expect(existsSync(missing)).toBe(false);
      // The warehouse arrives: the next request opens it (a failed open is not remembered).
      await db.raw('VACUUM INTO ?', [missing]);
      const ok = await ask();
      expect(ok.status, await ok.clone().text()).toBe(200);
      expect((await ok.json()).model.name).toBe(modelName);
      expect(server.output()).not.toContain(id);
    } finally {
      server.child.kill('SIGTERM');
      await server.exit;
    }
  });

  it('never writes a customer id to the API log or the prediction log', async () => {
    await app.predictionLog?.flush();
    const text = [...logLines, ...readLines(path.join(home, 'predictions'))].join('\n');
    expect(text.length).toBeGreaterThan(0);
    for (const id of [...IDS, 'NOPE-1']) expect(text).not.toMatch(new RegExp(`"${id}"|'${id}'`));
  });
});

describe('scoring by id on PostgreSQL', () => {
  const admin = knexFactory({ client: 'pg', connection: PG_ADMIN, pool: { min: 0, max: 1 } });
  const name = `driftwood_by_id_${randomBytes(4).toString('hex')}`;
  let db: Warehouse | undefined;
  afterAll(async () => {
    await db?.destroy();
    await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.destroy();
  });

  it('computes each id’s features online equal to its training row at the same as-of time', async () => {
    await admin.raw(`CREATE DATABASE ${name}`);
    db = await openWarehouse(PG_ADMIN.replace(/\/[^/]*$/, `/${name}`));
    const contract = await loadContract('churn');
    await ensureContractTables(db, contract);
    await seed(db);
    await expectOnlineEqualsTraining(tabularProfile(contract), db);
  });
});

describe('scoring by id on a columns dataset', () => {
  it('computes a row online as the build does, and keeps a row to score that has no label yet', async () => {
    const contract = {
      dataset: 'loans',
      version: 1,
      task: 'binary_classification',
      builder: 'columns',
      alert_threshold: 0.05,
      file_rules: {
        extra_columns: 'accept',
        missing_column: 'quarantine_file',
        type_change: 'quarantine_file',
        type_change_share: 0.5,
      },
      tables: [
        {
          name: 'applications',
          files: ['applications.csv'],
          key: 'application_id',
          columns: [
            { name: 'application_id', type: 'string', role: 'id' },
            { name: 'submitted_at', type: 'timestamp', role: 'timestamp' },
            { name: 'income', type: 'number', role: 'feature' },
            { name: 'purpose', type: 'string', role: 'feature' },
            { name: 'defaulted', type: 'string', role: 'target', positive: 'Y' },
          ],
        },
      ],
      digest: 'x',
    } as Contract;
    const db = await openWarehouse(`sqlite://${path.join(tempHome('driftwood-by-id-columns-'), 'w.db')}`);
    try {
      await ensureContractTables(db, contract);
      const key = (hour: number) =>
        `raw/loans/dt=2026-11-19/hr=${String(hour).padStart(2, '0')}/applications.csv`;
      await db('applications').insert([
        {
          application_id: 'A1',
          submitted_at: T - DAY,
          income: 10,
          purpose: 'car',
          defaulted: 'Y',
          source_key: key(1),
        },
        {
          application_id: 'A2',
          submitted_at: T - DAY,
          income: null,
          purpose: 'home',
          defaulted: 'N',
          source_key: key(2),
        },
        // No label yet: what scoring by id is for; the training build leaves it out.
        {
          application_id: 'A3',
          submitted_at: T - HOUR,
          income: 30,
          purpose: 'study',
          defaulted: null,
          source_key: key(3),
        },
        // Submitted after the as-of time.
        {
          application_id: 'A4',
          submitted_at: T + HOUR,
          income: 40,
          purpose: 'car',
          defaulted: 'N',
          source_key: key(4),
        },
      ]);
      const profile = tabularProfile(contract);
      const training = await profile.build(db, T, 48);
      expect(training.map((r) => r.customerId)).toEqual(['A1', 'A2']);
      for (const r of training) expect(await profile.rowOf(db, T, r.customerId)).toEqual(r.features);
      expect(await profile.rowOf(db, T, 'A3')).toEqual({ income: 30, purpose: 'study' });
      expect(await profile.rowOf(db, T, 'A4')).toBeUndefined();
      expect(await profile.rowOf(db, T, 'A9')).toBeUndefined();
    } finally {
      await db.destroy();
    }
  });
});

function readLines(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n'))
    .filter((l) => l.length > 0);
}

const sortKeys = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/** The count of feature lookups with a result, from the Prometheus text. */
function lookups(res: { body: string }, result: string): number {
  const line = res.body
    .split('\n')
    .find((l) => l.startsWith(`driftwood_feature_lookup_seconds_count{dataset="churn",result="${result}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}
