import { loadContract } from '../../contracts/index.js';
import type { Contract } from '../../contracts/types.js';
import type { LabelledRow } from '../../features/rows.js';
import type { ObjectStore } from '../../lake/object-store.js';
import { DAY_MS, HOUR_MS } from '../../time.js';
import type { Warehouse } from '../../warehouse/db.js';
import { engineOf, type FeatureEngine } from '../../warehouse/engine.js';
import { lap, now, type Timings } from '../../warehouse/timings.js';

/**
 * The raw, customer-level fields a churn model sees; the API takes the same fields. Windows end at
 * the cutoff (exclusive): `_7d` is [cutoff − 7 days, cutoff).
 */
export const CHURN_NUMERIC = [
  'tenure_days',
  'monthly_charges',
  // frequency
  'sessions_3d',
  'sessions_7d',
  'sessions_30d',
  'sessions_90d',
  // engagement depth
  'minutes_7d',
  'minutes_30d',
  'minutes_90d',
  'avg_session_minutes_30d',
  // monetary
  'purchases_30d',
  'spend_30d',
  'spend_90d',
  // friction
  'tickets_7d',
  'tickets_30d',
  'tickets_90d',
  'payment_failures_30d',
  'payment_failures_90d',
  // recency
  'hours_since_last_session',
  'days_since_last_purchase',
  // trend: daily session rate of the last 7 days minus that of the 30 days before them
  'session_rate_trend',
] as const;
export const CHURN_CATEGORICAL = ['plan', 'region'] as const;

export type { LabelledRow, RawFeatures } from '../../features/rows.js';

const WINDOWS_DAYS = { d3: 3, d7: 7, d30: 30, d90: 90, prev30Start: 37 } as const;

/**
 * Builds one row per customer as of `cutoff`, point in time: only events strictly before the cutoff
 * enter the features; the label is whether the customer churned in [cutoff, cutoff + horizon).
 * Customers who signed up at or after the cutoff, or churned before it, are left out.
 * The aggregation runs as one SQL statement in the warehouse (the same on SQLite and PostgreSQL);
 * Node only turns the per-customer aggregates into ratios and recencies.
 *
 * With the `duckdb` engine (`engine`, else the warehouse handle's: DRIFTWOOD_FEATURE_ENGINE) the events of
 * the window are aggregated in an embedded DuckDB instead, read from their Parquet files in the lake
 * (`warehouse/columnar.ts`, brought in step with the warehouse first): same rows, same values, same
 * order.
 * `timings`, when given, receives where the build spent its time (wall and CPU milliseconds per phase).
 * `customerId` builds that customer's row alone (none when the build would leave it out): the same
 * statement with both scans filtered to the id, which the API runs to score a customer by id. It
 * always runs in the warehouse, where the id's events are one index range.
 */
export interface ChurnBuildOptions {
  engine?: FeatureEngine;
  timings?: Timings;
  customerId?: string;
  /** The dataset's contract (the DuckDB engine's Parquet files are kept per dataset); churn's when not given. */
  contract?: Contract;
  /** The lake holding the events' Parquet files; else the warehouse handle's, else a temporary folder. */
  lake?: ObjectStore;
}

export async function buildChurnRows(
  db: Warehouse,
  cutoff: number,
  horizonHours: number,
  options: ChurnBuildOptions = {},
): Promise<LabelledRow[]> {
  // Window bounds go into the statement as integer literals (they are computed, never user text).
  if (!Number.isSafeInteger(cutoff) || !Number.isSafeInteger(horizonHours))
    throw new RangeError(`cutoff and horizon must be integers, got ${cutoff} and ${horizonHours}`);
  const one = options.customerId;
  const engine = one === undefined ? (options.engine ?? engineOf(db)) : 'warehouse';
  const timings = options.timings ?? {};
  const { sql, column } = churnStatement(cutoff, one !== undefined);
  const start = cutoff - WINDOWS_DAYS.d90 * DAY_MS;
  let t0 = now();
  const rows =
    engine === 'duckdb'
      ? await aggregateInDuckDB(db, cutoff, timings, options)
      : await selectArrays(
          db,
          sql,
          one === undefined ? [start, cutoff, cutoff, cutoff] : [start, cutoff, one, cutoff, cutoff, one],
        );
  if (engine !== 'duckdb') lap(timings, 'aggregate', t0);
  t0 = now();
  const labelEnd = cutoff + horizonHours * HOUR_MS;
  const n = (v: unknown): number => Number(v ?? 0);
  const maybe = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
  const built = rows.map((r): LabelledRow => {
    const churnedAt = maybe(r[column.churned_at]);
    const lastSession = maybe(r[column.last_session_at]);
    const lastPurchase = maybe(r[column.last_purchase_at]);
    const sessions7 = n(r[column.sessions_7d]);
    const sessions30 = n(r[column.sessions_30d]);
    const minutes30 = n(r[column.minutes_30d]);
    return {
      customerId: String(r[column.customer_id]),
      features: {
        tenure_days: round((cutoff - n(r[column.signup_at])) / DAY_MS),
        monthly_charges: n(r[column.monthly_charges]),
        sessions_3d: n(r[column.sessions_3d]),
        sessions_7d: sessions7,
        sessions_30d: sessions30,
        sessions_90d: n(r[column.sessions_90d]),
        minutes_7d: round(n(r[column.minutes_7d])),
        minutes_30d: round(minutes30),
        minutes_90d: round(n(r[column.minutes_90d])),
        avg_session_minutes_30d: sessions30 === 0 ? null : round(minutes30 / sessions30),
        purchases_30d: n(r[column.purchases_30d]),
        spend_30d: round(n(r[column.spend_30d])),
        spend_90d: round(n(r[column.spend_90d])),
        tickets_7d: n(r[column.tickets_7d]),
        tickets_30d: n(r[column.tickets_30d]),
        tickets_90d: n(r[column.tickets_90d]),
        payment_failures_30d: n(r[column.payment_failures_30d]),
        payment_failures_90d: n(r[column.payment_failures_90d]),
        hours_since_last_session: lastSession === undefined ? null : round((cutoff - lastSession) / HOUR_MS),
        days_since_last_purchase: lastPurchase === undefined ? null : round((cutoff - lastPurchase) / DAY_MS),
        session_rate_trend: round(sessions7 / 7 - n(r[column.sessions_prev30]) / 30),
        plan: String(r[column.plan]),
        region: String(r[column.region]),
      },
      label: churnedAt !== undefined && churnedAt < labelEnd ? 1 : 0,
    };
  });
  lap(timings, 'rows', t0);
  return built;
}

/** The event types the features count. */
type EventType = 'session' | 'purchase' | 'support_ticket' | 'payment_failure';

/**
 * The per-customer aggregates over the events of the 90-day window, as SQL expressions. Every
 * aggregate carries a FILTER (SQLite ≥ 3.30, PostgreSQL, DuckDB) rather than wrapping its argument in
 * a `CASE`: an event only steps the aggregates of its own type and windows instead of all of them,
 * and a type's `_90d` aggregate needs no condition beyond the type. On DuckDB counts are DOUBLE (no
 * bigint to convert on the way back) and sums are compensated (`FSUM`), as SQLite's are.
 */
function churnAggregates(cutoff: number, engine: FeatureEngine) {
  const duck = engine === 'duckdb';
  const sum = duck ? 'FSUM' : 'SUM';
  const count = (filter: string) => (duck ? `CAST(COUNT(*) ${filter} AS DOUBLE)` : `COUNT(*) ${filter}`);
  const since = (days: number) => `e.event_time >= ${cutoff - days * DAY_MS}`;
  const of = (type: EventType, ...conditions: string[]) =>
    `FILTER (WHERE ${[`e.event_type = '${type}'`, ...conditions].join(' AND ')})`;
  return {
    sessions_3d: count(of('session', since(WINDOWS_DAYS.d3))),
    sessions_7d: count(of('session', since(WINDOWS_DAYS.d7))),
    sessions_30d: count(of('session', since(WINDOWS_DAYS.d30))),
    sessions_90d: count(of('session')),
    sessions_prev30: count(
      of('session', since(WINDOWS_DAYS.prev30Start), `e.event_time < ${cutoff - WINDOWS_DAYS.d7 * DAY_MS}`),
    ),
    minutes_7d: `${sum}(e.value) ${of('session', since(WINDOWS_DAYS.d7))}`,
    minutes_30d: `${sum}(e.value) ${of('session', since(WINDOWS_DAYS.d30))}`,
    minutes_90d: `${sum}(e.value) ${of('session')}`,
    purchases_30d: count(of('purchase', since(WINDOWS_DAYS.d30))),
    spend_30d: `${sum}(e.value) ${of('purchase', since(WINDOWS_DAYS.d30))}`,
    spend_90d: `${sum}(e.value) ${of('purchase')}`,
    tickets_7d: count(of('support_ticket', since(WINDOWS_DAYS.d7))),
    tickets_30d: count(of('support_ticket', since(WINDOWS_DAYS.d30))),
    tickets_90d: count(of('support_ticket')),
    payment_failures_30d: count(of('payment_failure', since(WINDOWS_DAYS.d30))),
    payment_failures_90d: count(of('payment_failure')),
    last_session_at: `MAX(e.event_time) ${of('session')}`,
    last_purchase_at: `MAX(e.event_time) ${of('purchase')}`,
  };
}

const CUSTOMER_COLUMNS = [
  'customer_id',
  'plan',
  'region',
  'monthly_charges',
  'signup_at',
  'churned_at',
] as const;

/**
 * The point-in-time statement in the warehouse and the position of each output column (customer
 * columns, then the aggregates). Events of the 90-day window are aggregated per customer first (read
 * from the covering `events_feature_scan` index, in customer order), then joined to the customers.
 * `oneCustomer` adds a bound customer id to both scans (after each scan's time bounds).
 */
function churnStatement(cutoff: number, oneCustomer = false) {
  const aggregates = churnAggregates(cutoff, 'warehouse');
  const aggregateColumns = Object.keys(aggregates) as (keyof typeof aggregates)[];
  const source = (name: (typeof CUSTOMER_COLUMNS)[number]) => (name === 'churned_at' ? 'l' : 'c');
  const sql = `
    SELECT ${[
      ...CUSTOMER_COLUMNS.map((name) => `${source(name)}.${name} AS ${name}`),
      ...aggregateColumns.map((name) => `a.${name}`),
    ].join(', ')}
    FROM customers c
    LEFT JOIN (
      SELECT e.customer_id AS agg_customer_id,
        ${aggregateColumns.map((name) => `${aggregates[name]} AS ${name}`).join(',\n        ')}
      FROM events e
      WHERE e.event_time >= ? AND e.event_time < ?${oneCustomer ? ' AND e.customer_id = ?' : ''}
      GROUP BY e.customer_id
    ) a ON a.agg_customer_id = c.customer_id
    LEFT JOIN labels l ON l.customer_id = c.customer_id
    WHERE c.signup_at < ? AND (l.churned_at IS NULL OR l.churned_at >= ?)${oneCustomer ? ' AND c.customer_id = ?' : ''}
    ORDER BY c.customer_id`;
  const column = Object.fromEntries(
    [...CUSTOMER_COLUMNS, ...aggregateColumns].map((name, i) => [name, i]),
  ) as Record<(typeof CUSTOMER_COLUMNS)[number] | keyof typeof aggregates, number>;
  return { sql, column };
}

/**
 * The DuckDB engine: the same rows as `churnStatement`, in the same column layout. The customers
 * signed up before the cutoff (in the warehouse's order and collation) and their labels come from
 * the warehouse; the window's events are aggregated by DuckDB straight from their Parquet files in
 * the lake (in parallel, reading only the columns and row groups the window needs), and the result
 * is joined back to the customers by id.
 */
async function aggregateInDuckDB(
  db: Warehouse,
  cutoff: number,
  timings: Timings,
  options: ChurnBuildOptions,
): Promise<unknown[][]> {
  // Loaded on first use: the native library stays out of every step that does not ask for it.
  const { DuckDBSession } = await import('../../warehouse/duckdb.js');
  const { localColumnar, syncColumnar } = await import('../../warehouse/columnar.js');
  const contract = options.contract ?? (await loadContract('churn'));
  let t0 = now();
  const given = options.lake ?? lakeOf(db);
  // Without a lake (a library caller), a temporary one: correct, but every build exports anew.
  const temporary = given ? undefined : await temporaryLake();
  const lake = (given ?? temporary?.lake) as ObjectStore;
  try {
    await syncColumnar(db, lake, contract, 'events');
    lap(timings, 'sync', t0);
    t0 = now();
    const customers = await selectArrays(
      db,
      'SELECT customer_id, plan, region, monthly_charges, signup_at FROM customers WHERE signup_at < ? ORDER BY customer_id',
      [cutoff],
    );
    const labels = new Map<string, unknown>(
      (
        await selectArrays(db, 'SELECT customer_id, churned_at FROM labels WHERE churned_at IS NOT NULL', [])
      ).map((r) => [String(r[0]), r[1]]),
    );
    lap(timings, 'customers', t0);
    const local = await localColumnar(lake, contract.dataset, 'events');
    const duck = await DuckDBSession.open();
    try {
      const aggregates = churnAggregates(cutoff, 'duckdb');
      const names = Object.keys(aggregates) as (keyof typeof aggregates)[];
      const source =
        local.files.length === 0
          ? '(SELECT NULL::VARCHAR AS customer_id, NULL::BIGINT AS event_time, NULL::VARCHAR AS event_type, NULL::DOUBLE AS value WHERE false)'
          : `read_parquet([${local.files.map((f) => `'${f.replace(/'/g, "''")}'`).join(', ')}])`;
      const [ids, ...values] = await duck.columns(
        `SELECT e.customer_id, ${names.map((n) => aggregates[n]).join(', ')}
         FROM ${source} e
         WHERE e.event_time >= ${cutoff - WINDOWS_DAYS.d90 * DAY_MS} AND e.event_time < ${cutoff}
         GROUP BY e.customer_id`,
      );
      const t1 = now();
      const byCustomer = new Map<string, number>();
      (ids as string[]).forEach((id, k) => {
        byCustomer.set(id, k);
      });
      const rows: unknown[][] = [];
      for (const c of customers) {
        const id = String(c[0]);
        const churned = labels.get(id) ?? null;
        if (churned !== null && Number(churned) < cutoff) continue;
        const k = byCustomer.get(id);
        rows.push([
          c[0],
          c[1],
          c[2],
          c[3],
          c[4],
          churned,
          ...values.map((column) => (k === undefined ? null : column[k])),
        ]);
      }
      lap(timings, 'join', t1);
      Object.assign(timings, duck.timings);
      return rows;
    } finally {
      duck.close();
      await local.close();
    }
  } finally {
    await temporary?.close();
  }
}

/** The lake the warehouse handle was opened with (`openWarehouse`'s option), if any. */
function lakeOf(db: Warehouse): ObjectStore | undefined {
  return (db.userParams as { lake?: ObjectStore } | undefined)?.lake;
}

async function temporaryLake(): Promise<{ lake: ObjectStore; close: () => Promise<void> }> {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const os = await import('node:os');
  const path = await import('node:path');
  const { openObjectStore } = await import('../../lake/object-store.js');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'driftwood-engine-lake-'));
  return {
    lake: openObjectStore(`file://${path.join(dir, 'lake')}`),
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Runs a SELECT and returns its rows as arrays. better-sqlite3 builds a row object by setting its
 * properties one native call at a time, which for a million rows of 24 columns costs more than the
 * aggregation itself; in raw mode each row arrives as an array built in one step.
 */
async function selectArrays(db: Warehouse, sql: string, bindings: (number | string)[]): Promise<unknown[][]> {
  if (db.client.config.client === 'better-sqlite3') {
    const conn = (await db.client.acquireConnection()) as import('better-sqlite3').Database;
    try {
      return conn
        .prepare(sql)
        .raw(true)
        .all(...bindings) as unknown[][];
    } finally {
      await db.client.releaseConnection(conn);
    }
  }
  const result = await db.raw(sql, bindings).options({ rowMode: 'array' });
  return result.rows;
}

// Rounded to 12 significant digits first: SQLite sums with compensation, PostgreSQL does not, so a
// ratio can land a hair either side of a rounding tie (251.5 / 16 = 15.71875); this makes both
// backends give the same value, and so the same snapshot id.
const round = (x: number): number => Math.round(Number(x.toPrecision(12)) * 1e4) / 1e4;

/** The default training cutoff: late enough for labels of the whole horizon to have arrived. */
export async function defaultCutoff(
  db: Warehouse,
  horizonHours: number,
  labelDelayHours: number,
): Promise<number | undefined> {
  const row = await db('events').max({ latest: 'event_time' }).first();
  const latest = row?.latest === null || row?.latest === undefined ? undefined : Number(row.latest);
  if (latest === undefined) return undefined;
  const hour = Math.floor(latest / HOUR_MS) * HOUR_MS;
  return hour - (horizonHours + labelDelayHours) * HOUR_MS;
}
