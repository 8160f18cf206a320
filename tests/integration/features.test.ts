import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { buildChurnRows, loadContract, openWarehouse, type Warehouse } from '@driftwood/tasks';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureContractTables } from '../../tasks/src/ingest/schema.js';
import { tempHome } from '../support/env.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T = Date.UTC(2026, 10, 20); // the cutoff
const PG_ADMIN = process.env.DRIFTWOOD_TEST_PG_ADMIN ?? 'postgres://postgres@127.0.0.1:5432/postgres';

type Event = [customer: string, at: number, type: string, value: number];

async function seed(db: Warehouse, events: Event[]): Promise<void> {
  const customer = (id: string, signupAt: number) => ({
    customer_id: id,
    email_token: null,
    signup_at: signupAt,
    plan: 'basic',
    region: 'north',
    monthly_charges: 19,
    source_key: 'test',
  });
  await db('customers').insert([
    customer('A', T - 100 * DAY),
    customer('B', T - 100 * DAY),
    customer('C', T), // signs up at the cutoff: not a customer yet
    customer('D', T - 10 * DAY),
  ]);
  let id = 1;
  await db('events').insert(
    events.map(([c, at, type, value]) => ({
      event_id: id++,
      customer_id: c,
      event_time: at,
      event_type: type,
      value,
      source_key: 'test',
    })),
  );
  await db('labels').insert([
    { customer_id: 'A', churned_at: T + 5 * HOUR, reported_at: T + 29 * HOUR, source_key: 'test' },
    { customer_id: 'B', churned_at: T - HOUR, reported_at: T + 23 * HOUR, source_key: 'test' }, // gone before
    { customer_id: 'D', churned_at: T + 49 * HOUR, reported_at: T + 73 * HOUR, source_key: 'test' }, // after horizon
  ]);
}

const before: Event[] = [
  ['A', T - HOUR, 'session', 10],
  ['A', T - 8 * DAY, 'session', 20],
  ['A', T - 40 * DAY, 'session', 30],
  ['A', T - 2 * DAY, 'purchase', 25],
  ['A', T - 3 * DAY, 'support_ticket', 1],
  ['A', T - 95 * DAY, 'session', 99], // older than every window
  ['D', T - 6 * DAY, 'payment_failure', 19],
];
// Everything at or after the cutoff: if any of it leaked into the features, the rows would differ.
const atOrAfter: Event[] = [
  ['A', T, 'session', 500],
  ['A', T + HOUR, 'purchase', 900],
  ['A', T + 2 * HOUR, 'support_ticket', 1],
  ['D', T + DAY, 'session', 40],
];

function behavesPointInTime(open: () => Promise<{ db: Warehouse; close: () => Promise<void> }>) {
  let clean: Awaited<ReturnType<typeof open>>;
  let leaky: Awaited<ReturnType<typeof open>>;
  beforeAll(async () => {
    clean = await open();
    leaky = await open();
    await seed(clean.db, before);
    await seed(leaky.db, [...before, ...atOrAfter]);
  });
  afterAll(async () => {
    await clean?.close();
    await leaky?.close();
  });

  it('aggregates each window from events strictly before the cutoff', async () => {
    const rows = await buildChurnRows(clean.db, T, 48);
    expect(rows.map((r) => r.customerId)).toEqual(['A', 'D']);
    const a = rows[0];
    expect(a?.label).toBe(1);
    expect(a?.features).toMatchObject({
      tenure_days: 100,
      sessions_3d: 1,
      sessions_7d: 1,
      sessions_30d: 2,
      sessions_90d: 3,
      minutes_7d: 10,
      minutes_30d: 30,
      minutes_90d: 60,
      avg_session_minutes_30d: 15,
      purchases_30d: 1,
      spend_30d: 25,
      tickets_7d: 1,
      hours_since_last_session: 1,
      days_since_last_purchase: 2,
      // 1 session in the last 7 days, 1 in the 30 days before them
      session_rate_trend: Math.round((1 / 7 - 1 / 30) * 1e4) / 1e4,
      plan: 'basic',
      region: 'north',
    });
    const d = rows[1];
    expect(d?.label).toBe(0);
    expect(d?.features).toMatchObject({
      sessions_30d: 0,
      avg_session_minutes_30d: null,
      hours_since_last_session: null,
      payment_failures_30d: 1,
    });
  });

  it('gives the same rows when events at or after the cutoff exist: nothing leaks', async () => {
    expect(await buildChurnRows(leaky.db, T, 48)).toEqual(await buildChurnRows(clean.db, T, 48));
  });

  it('takes labels from the window after the cutoff only', async () => {
    const short = await buildChurnRows(clean.db, T, 4); // A churns at T + 5 h: outside a 4 h horizon
    expect(short.find((r) => r.customerId === 'A')?.label).toBe(0);
    const long = await buildChurnRows(clean.db, T, 72); // D churns at T + 49 h: inside 72 h
    expect(long.find((r) => r.customerId === 'D')?.label).toBe(1);
  });
}

describe('churn features on SQLite', () => {
  behavesPointInTime(async () => {
    const db = await openWarehouse(`sqlite://${path.join(tempHome('driftwood-features-'), 'w.db')}`);
    await ensureContractTables(db, await loadContract('churn'));
    return { db, close: () => db.destroy() };
  });
});

describe('churn features on PostgreSQL', () => {
  const admin = knexFactory({ client: 'pg', connection: PG_ADMIN, pool: { min: 0, max: 1 } });
  const created: string[] = [];
  afterAll(async () => {
    for (const name of created) await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.destroy();
  });
  behavesPointInTime(async () => {
    const name = `driftwood_features_${randomBytes(4).toString('hex')}`;
    await admin.raw(`CREATE DATABASE ${name}`);
    created.push(name);
    const db = await openWarehouse(PG_ADMIN.replace(/\/[^/]*$/, `/${name}`));
    await ensureContractTables(db, await loadContract('churn'));
    return { db, close: () => db.destroy() };
  });
});
