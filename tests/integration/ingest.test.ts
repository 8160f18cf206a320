import path from 'node:path';
import { type ObjectStore, openObjectStore, openWarehouse, type Warehouse } from '@driftwood/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIngest } from '../../tasks/src/ingest/index.js';
import { runSimulate } from '../../tasks/src/simulate/index.js';
import { silentLog, tempHome } from '../support/env.js';

const opts = {
  dataset: 'churn',
  piiKey: 'test-key-0123456789abcdef',
  now: () => Date.parse('2026-11-05T00:00:00Z'),
};

describe('ingest into SQLite', () => {
  let home: string;
  let lake: ObjectStore;
  let db: Warehouse;

  beforeAll(async () => {
    home = tempHome();
    lake = openObjectStore(`file://${path.join(home, 'lake')}`);
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    await runSimulate(
      {
        dataset: 'churn',
        start: Date.parse('2026-11-01T00:00:00Z'),
        hours: 30,
        seed: 5,
        customers: 200,
        labelDelayHours: 2,
      },
      { lake, log: silentLog },
    );
  });
  afterAll(async () => db.destroy());

  it('loads every file once and a re-run is a no-op', async () => {
    const first = await runIngest(opts, { lake, db, log: silentLog });
    expect(first.loaded).toBe(first.objectsSeen);
    expect(first.rowsLoaded).toBe(first.rowsRead);
    const counts = async () => ({
      customers: Number((await db('customers').count({ n: '*' }))[0]?.n),
      events: Number((await db('events').count({ n: '*' }))[0]?.n),
    });
    const before = await counts();
    expect(before.customers).toBeGreaterThanOrEqual(200);
    const again = await runIngest(opts, { lake, db, log: silentLog });
    expect(again.loaded).toBe(0);
    expect(again.skipped).toBe(first.objectsSeen);
    expect(await counts()).toEqual(before);
  });

  it('loads only the hours of an interval', async () => {
    await lake.put(
      'raw/churn/dt=2026-11-03/hr=00/events.csv',
      'event_id,customer_id,event_time,event_type,value\n999001,C000001,2026-11-03T00:10:00Z,session,3\n',
    );
    await lake.put(
      'raw/churn/dt=2026-11-03/hr=01/events.csv',
      'event_id,customer_id,event_time,event_type,value\n999002,C000001,2026-11-03T01:10:00Z,session,3\n',
    );
    const r = await runIngest(
      { ...opts, interval: { start: Date.parse('2026-11-03T00:00Z'), end: Date.parse('2026-11-03T01:00Z') } },
      { lake, db, log: silentLog },
    );
    expect(r.loaded).toBe(1);
    expect(await db('events').where({ event_id: 999001 }).first()).toBeDefined();
    expect(await db('events').where({ event_id: 999002 }).first()).toBeUndefined();
  });

  it('quarantines a file with a missing column, with the reason, and loads nothing from it', async () => {
    const key = 'raw/churn/dt=2026-11-04/hr=00/events.csv';
    await lake.put(key, 'event_id,customer_id,event_type\n1,C1,session\n');
    const r = await runIngest(opts, { lake, db, log: silentLog });
    expect(r.quarantined).toBe(1);
    const reason = JSON.parse(
      (await lake.get('quarantine/churn/dt=2026-11-04/hr=00/events.csv.reason.json')).toString(),
    );
    expect(reason.problems[0].reason).toMatch(/missing required column\(s\): event_time/);
    const ledger = await db('ingest_ledger').where({ object_key: key }).first();
    expect(ledger.status).toBe('quarantined');
  });

  it('quarantines bad rows, loads the good ones, and the accounting balances', async () => {
    const key = 'raw/churn/dt=2026-11-04/hr=01/events.csv';
    await lake.put(
      key,
      'event_id,customer_id,event_time,event_type,value\n800001,C000002,2026-11-04T01:00:00Z,session,5\n800002,C000002,not-a-time,session,5\n800003,C000003,2026-11-04T01:30:00Z,purchase,12.5\n',
    );
    const r = await runIngest(opts, { lake, db, log: silentLog });
    expect(r.rowsRead).toBe(3);
    expect(r.rowsLoaded).toBe(2);
    expect(r.rowsRejected).toBe(1);
    const reason = JSON.parse(
      (await lake.get('quarantine/churn/dt=2026-11-04/hr=01/events.csv.reason.json')).toString(),
    );
    expect(reason.problems).toEqual([
      { row: 3, reason: "event_time: expected an ISO time, got 'not-a-time'" },
    ]);
  });

  it('records the same content under another key as a duplicate', async () => {
    const body = await lake.get('raw/churn/dt=2026-11-01/hr=05/events.csv');
    await lake.put('raw/churn/dt=2026-11-04/hr=02/events.csv', body);
    const r = await runIngest(opts, { lake, db, log: silentLog });
    expect(r.duplicates).toBe(1);
    const entry = await db('ingest_ledger')
      .where({ object_key: 'raw/churn/dt=2026-11-04/hr=02/events.csv' })
      .first();
    expect(entry.status).toBe('duplicate');
    expect(entry.reason).toMatch(/dt=2026-11-01\/hr=05/);
  });

  it('stores emails only as tokens', async () => {
    const rows = await db('customers').select('*').limit(50);
    for (const r of rows) {
      expect(JSON.stringify(r)).not.toMatch(/@example\.com/);
      expect(r.email_token).toMatch(/^[0-9a-f]{32}$/);
    }
  });
});
