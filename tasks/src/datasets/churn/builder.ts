import { loadContract } from '../../contracts/index.js';
import type { Contract } from '../../contracts/types.js';
import { columnsOfRows, type FeatureColumns, rowsOfColumns } from '../../features/columns.js';
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
  const labelEnd = cutoff + horizonHours * HOUR_MS;
  if (engine === 'duckdb') {
    const columns = await buildInDuckDB(db, cutoff, labelEnd, timings, options);
    const t0 = now();
    const rows = rowsOfColumns(columns);
    lap(timings, 'rows', t0);
    return rows;
  }
  let t0 = now();
  const rows = await selectArrays(
    db,
    sql,
    one === undefined ? [start, cutoff, cutoff, cutoff] : [start, cutoff, one, cutoff, cutoff, one],
  );
  lap(timings, 'aggregate', t0);
  t0 = now();
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

/**
 * The rows `buildChurnRows` builds, as typed columns (`FeatureColumns`): with the DuckDB engine
 * straight from DuckDB's result, no row object made; with the warehouse, its rows turned into
 * columns. Value for value the same table either way.
 */
export async function buildChurnColumns(
  db: Warehouse,
  cutoff: number,
  horizonHours: number,
  options: Omit<ChurnBuildOptions, 'customerId'> = {},
): Promise<FeatureColumns> {
  if (!Number.isSafeInteger(cutoff) || !Number.isSafeInteger(horizonHours))
    throw new RangeError(`cutoff and horizon must be integers, got ${cutoff} and ${horizonHours}`);
  if ((options.engine ?? engineOf(db)) === 'duckdb')
    return buildInDuckDB(db, cutoff, cutoff + horizonHours * HOUR_MS, options.timings ?? {}, options);
  const rows = await buildChurnRows(db, cutoff, horizonHours, { ...options, engine: 'warehouse' });
  return columnsOfRows(rows, { numeric: CHURN_NUMERIC, categorical: CHURN_CATEGORICAL });
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
 * The DuckDB engine: the same rows as `churnStatement`, built in DuckDB from the Parquet files the
 * lake keeps of `customers`, `labels` and `events` (brought in step with the warehouse first). The
 * window's events are aggregated in parallel (reading only the columns and row groups the window
 * needs), joined to the customers and labels and ordered there too; the result comes back column by
 * column into typed arrays, and Node only derives the ratios and recencies while it builds the rows.
 */
async function buildInDuckDB(
  db: Warehouse,
  cutoff: number,
  labelEnd: number,
  timings: Timings,
  options: ChurnBuildOptions,
): Promise<FeatureColumns> {
  // Loaded on first use: the native library stays out of every step that does not ask for it.
  const { DuckDBSession } = await import('../../warehouse/duckdb.js');
  const { localColumnar, syncColumnar } = await import('../../warehouse/columnar.js');
  const contract = options.contract ?? (await loadContract('churn'));
  const t0 = now();
  const given = options.lake ?? lakeOf(db);
  // Without a lake (a library caller), a temporary one: correct, but every build exports anew.
  const temporary = given ? undefined : await temporaryLake();
  const lake = (given ?? temporary?.lake) as ObjectStore;
  const opened: { close: () => Promise<void> }[] = [];
  try {
    const sources: Record<string, string> = {};
    for (const table of DUCKDB_TABLES) {
      await syncColumnar(db, lake, contract, table);
      const local = await localColumnar(lake, contract.dataset, table);
      opened.push(local);
      sources[table] =
        local.files.length === 0
          ? `(SELECT ${EMPTY[table]} WHERE false)`
          : `read_parquet([${local.files.map((f) => `'${f.replace(/'/g, "''")}'`).join(', ')}])`;
    }
    lap(timings, 'sync', t0);
    const duck = await DuckDBSession.open();
    try {
      const aggregates = churnAggregates(cutoff, 'duckdb');
      const names = Object.keys(aggregates) as (keyof typeof aggregates)[];
      // NULL never crosses over: it would cost a validity check per value. Counts and sums without
      // events are 0 (as the warehouse path reads them), absent times NaN.
      const absent = new Set<string>(['churned_at', 'last_session_at', 'last_purchase_at']);
      const double = (expr: string, name: string) =>
        `COALESCE(CAST(${expr} AS DOUBLE), ${absent.has(name) ? "'NaN'::DOUBLE" : '0'}) AS ${name}`;
      // Plans and regions come back as ENUMs: each value is then one of a few shared strings, instead
      // of a string decoded per row.
      for (const name of ['plan', 'region'])
        await duck.run(
          `CREATE TYPE ${name}_values AS ENUM (SELECT 'null' UNION SELECT COALESCE(${name}, 'null') FROM ${sources.customers})`,
        );
      const { rows, columns } = await duck.table(
        `WITH a AS (
           SELECT e.customer_id AS agg_customer_id,
             ${names.map((n) => `${aggregates[n]} AS ${n}`).join(',\n             ')}
           FROM ${sources.events} e
           WHERE e.event_time >= ${cutoff - WINDOWS_DAYS.d90 * DAY_MS} AND e.event_time < ${cutoff}
           GROUP BY e.customer_id
         )
         SELECT c.customer_id, CAST(COALESCE(c.plan, 'null') AS plan_values),
           CAST(COALESCE(c.region, 'null') AS region_values),
           ${[
             double('c.monthly_charges', 'monthly_charges'),
             double('c.signup_at', 'signup_at'),
             double('l.churned_at', 'churned_at'),
             ...names.map((n) => double(`a.${n}`, n)),
           ].join(',\n           ')}
         FROM ${sources.customers} c
         LEFT JOIN a ON a.agg_customer_id = c.customer_id
         LEFT JOIN ${sources.labels} l ON l.customer_id = c.customer_id
         WHERE c.signup_at < ${cutoff} AND (l.churned_at IS NULL OR l.churned_at >= ${cutoff})
         ORDER BY c.customer_id`,
        new Set(Array.from({ length: 3 + names.length }, (_, k) => k + 3)),
      );
      Object.assign(timings, duck.timings);
      const t1 = now();
      const order = await warehouseOrder(db, cutoff, columns[0] as string[]);
      lap(timings, 'order', t1);
      const t2 = now();
      const [ids, plans, regions, ...numbers] = columns as [string[], string[], string[], ...Float64Array[]];
      const of = Object.fromEntries(
        ['monthly_charges', 'signup_at', 'churned_at', ...names].map((n, k) => [
          n,
          numbers[k] as Float64Array,
        ]),
      ) as Record<'monthly_charges' | 'signup_at' | 'churned_at' | (typeof names)[number], Float64Array>;
      // The derived fields, computed column by column into typed arrays (NaN where a row has null).
      const at = order ?? Int32Array.from({ length: rows }, (_, j) => j);
      const column = (value: (i: number) => number) => {
        const out = new Float64Array(rows);
        for (let j = 0; j < rows; j++) out[j] = value(at[j] as number);
        return out;
      };
      const same = (name: keyof typeof of) => {
        const from = of[name];
        return column((i) => from[i] as number);
      };
      const rounded = (name: keyof typeof of) => {
        const from = of[name];
        return column((i) => round(from[i] as number));
      };
      const since = (name: 'last_session_at' | 'last_purchase_at', unit: number) => {
        const from = of[name];
        return column((i) => {
          const t = from[i] as number;
          return Number.isNaN(t) ? Number.NaN : round((cutoff - t) / unit);
        });
      };
      const numeric: Record<(typeof CHURN_NUMERIC)[number], Float64Array> = {
        tenure_days: column((i) => round((cutoff - (of.signup_at[i] as number)) / DAY_MS)),
        monthly_charges: same('monthly_charges'),
        sessions_3d: same('sessions_3d'),
        sessions_7d: same('sessions_7d'),
        sessions_30d: same('sessions_30d'),
        sessions_90d: same('sessions_90d'),
        minutes_7d: rounded('minutes_7d'),
        minutes_30d: rounded('minutes_30d'),
        minutes_90d: rounded('minutes_90d'),
        avg_session_minutes_30d: column((i) => {
          const sessions30 = of.sessions_30d[i] as number;
          return sessions30 === 0 ? Number.NaN : round((of.minutes_30d[i] as number) / sessions30);
        }),
        purchases_30d: same('purchases_30d'),
        spend_30d: rounded('spend_30d'),
        spend_90d: rounded('spend_90d'),
        tickets_7d: same('tickets_7d'),
        tickets_30d: same('tickets_30d'),
        tickets_90d: same('tickets_90d'),
        payment_failures_30d: same('payment_failures_30d'),
        payment_failures_90d: same('payment_failures_90d'),
        hours_since_last_session: since('last_session_at', HOUR_MS),
        days_since_last_purchase: since('last_purchase_at', DAY_MS),
        session_rate_trend: column((i) =>
          round((of.sessions_7d[i] as number) / 7 - (of.sessions_prev30[i] as number) / 30),
        ),
      };
      const labels = new Uint8Array(rows);
      for (let j = 0; j < rows; j++) {
        const churnedAt = of.churned_at[at[j] as number] as number;
        labels[j] = !Number.isNaN(churnedAt) && churnedAt < labelEnd ? 1 : 0;
      }
      const pick = (from: string[]) => (order ? Array.from(order, (i) => from[i] as string) : from);
      const built: FeatureColumns = {
        rows,
        ids: pick(ids),
        labels,
        numeric,
        categorical: { plan: pick(plans), region: pick(regions) },
        order: [...CHURN_NUMERIC, ...CHURN_CATEGORICAL],
      };
      lap(timings, 'derive', t2);
      return built;
    } finally {
      duck.close();
    }
  } finally {
    for (const local of opened) await local.close();
    await temporary?.close();
  }
}

/** The tables the DuckDB engine reads from the lake, and each one's empty stand-in when it has no files. */
const DUCKDB_TABLES = ['customers', 'labels', 'events'] as const;
const EMPTY: Record<(typeof DUCKDB_TABLES)[number], string> = {
  customers:
    'NULL::VARCHAR AS customer_id, NULL::VARCHAR AS plan, NULL::VARCHAR AS region, NULL::DOUBLE AS monthly_charges, NULL::BIGINT AS signup_at',
  labels: 'NULL::VARCHAR AS customer_id, NULL::BIGINT AS churned_at',
  events:
    'NULL::VARCHAR AS customer_id, NULL::BIGINT AS event_time, NULL::VARCHAR AS event_type, NULL::DOUBLE AS value',
};

/**
 * DuckDB orders the ids by their bytes, as SQLite does. Another warehouse orders by its collation
 * (PostgreSQL's may be a locale's): there the warehouse gives the order of the ids, and this returns
 * the result's row positions in it (undefined: DuckDB's order is the warehouse's).
 */
async function warehouseOrder(db: Warehouse, cutoff: number, ids: string[]): Promise<Int32Array | undefined> {
  if (db.client.config.client === 'better-sqlite3') return undefined;
  const rank = new Map<string, number>();
  (
    await selectArrays(db, 'SELECT customer_id FROM customers WHERE signup_at < ? ORDER BY customer_id', [
      cutoff,
    ])
  ).forEach((r, k) => {
    rank.set(String(r[0]), k);
  });
  const ranks = Float64Array.from(ids, (id) => rank.get(id) ?? Number.POSITIVE_INFINITY);
  return Int32Array.from(ids.keys()).sort((x, y) => (ranks[x] as number) - (ranks[y] as number));
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
// Only a value within that 12-digit rounding of a tie takes the slow path through toPrecision: for
// any other, both round to the same integer, and toPrecision's string costs more than the whole row.
const round = (x: number): number => {
  const y = x * 1e4;
  if (Math.abs(y - Math.floor(y) - 0.5) > Math.abs(y) * 1e-11 + 1e-9) return Math.round(y) / 1e4;
  return Math.round(Number(x.toPrecision(12)) * 1e4) / 1e4;
};

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
