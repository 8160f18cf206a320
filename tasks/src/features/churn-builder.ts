import { DAY_MS, HOUR_MS } from '../time.js';
import type { Warehouse } from '../warehouse/db.js';

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

export type RawFeatures = Record<string, number | string | null>;

export interface LabelledRow {
  customerId: string;
  features: RawFeatures;
  label: 0 | 1;
}

const WINDOWS_DAYS = { d3: 3, d7: 7, d30: 30, d90: 90, prev30Start: 37 } as const;

/**
 * Builds one row per customer as of `cutoff`, point in time: only events strictly before the cutoff
 * enter the features; the label is whether the customer churned in [cutoff, cutoff + horizon).
 * Customers who signed up at or after the cutoff, or churned before it, are left out.
 * The aggregation runs as one SQL statement in the warehouse (the same on SQLite and PostgreSQL);
 * Node only turns the per-customer aggregates into ratios and recencies.
 */
export async function buildChurnRows(
  db: Warehouse,
  cutoff: number,
  horizonHours: number,
): Promise<LabelledRow[]> {
  // Window bounds go into the statement as integer literals (they are computed, never user text).
  if (!Number.isSafeInteger(cutoff) || !Number.isSafeInteger(horizonHours))
    throw new RangeError(`cutoff and horizon must be integers, got ${cutoff} and ${horizonHours}`);
  const at = (days: number) => cutoff - days * DAY_MS;
  const labelEnd = cutoff + horizonHours * HOUR_MS;
  const when = (type: string, days: number, then: string) =>
    `SUM(CASE WHEN e.event_type = '${type}' AND e.event_time >= ${at(days)} THEN ${then} ELSE 0 END)`;
  // Events are aggregated first, in one pass over the window, then joined to the customers: far
  // cheaper than joining every customer to its events and grouping the wide result.
  const sql = `
    SELECT c.customer_id, c.plan, c.region, c.monthly_charges, c.signup_at, l.churned_at, a.*
    FROM customers c
    LEFT JOIN (
      SELECT e.customer_id AS agg_customer_id,
        ${when('session', WINDOWS_DAYS.d3, '1')} AS sessions_3d,
        ${when('session', WINDOWS_DAYS.d7, '1')} AS sessions_7d,
        ${when('session', WINDOWS_DAYS.d30, '1')} AS sessions_30d,
        ${when('session', WINDOWS_DAYS.d90, '1')} AS sessions_90d,
        SUM(CASE WHEN e.event_type = 'session' AND e.event_time >= ${at(WINDOWS_DAYS.prev30Start)}
                 AND e.event_time < ${at(WINDOWS_DAYS.d7)} THEN 1 ELSE 0 END) AS sessions_prev30,
        ${when('session', WINDOWS_DAYS.d7, 'e.value')} AS minutes_7d,
        ${when('session', WINDOWS_DAYS.d30, 'e.value')} AS minutes_30d,
        ${when('session', WINDOWS_DAYS.d90, 'e.value')} AS minutes_90d,
        ${when('purchase', WINDOWS_DAYS.d30, '1')} AS purchases_30d,
        ${when('purchase', WINDOWS_DAYS.d30, 'e.value')} AS spend_30d,
        ${when('purchase', WINDOWS_DAYS.d90, 'e.value')} AS spend_90d,
        ${when('support_ticket', WINDOWS_DAYS.d7, '1')} AS tickets_7d,
        ${when('support_ticket', WINDOWS_DAYS.d30, '1')} AS tickets_30d,
        ${when('support_ticket', WINDOWS_DAYS.d90, '1')} AS tickets_90d,
        ${when('payment_failure', WINDOWS_DAYS.d30, '1')} AS payment_failures_30d,
        ${when('payment_failure', WINDOWS_DAYS.d90, '1')} AS payment_failures_90d,
        MAX(CASE WHEN e.event_type = 'session' THEN e.event_time END) AS last_session_at,
        MAX(CASE WHEN e.event_type = 'purchase' THEN e.event_time END) AS last_purchase_at
      FROM events e
      WHERE e.event_time >= ? AND e.event_time < ?
      GROUP BY e.customer_id
    ) a ON a.agg_customer_id = c.customer_id
    LEFT JOIN labels l ON l.customer_id = c.customer_id
    WHERE c.signup_at < ? AND (l.churned_at IS NULL OR l.churned_at >= ?)
    ORDER BY c.customer_id`;
  const result = await db.raw(sql, [at(WINDOWS_DAYS.d90), cutoff, cutoff, cutoff]);
  const rows: Record<string, unknown>[] = Array.isArray(result) ? result : result.rows;
  const n = (v: unknown): number => Number(v ?? 0);
  const maybe = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
  return rows.map((r) => {
    const churnedAt = maybe(r.churned_at);
    const lastSession = maybe(r.last_session_at);
    const lastPurchase = maybe(r.last_purchase_at);
    const sessions30 = n(r.sessions_30d);
    return {
      customerId: String(r.customer_id),
      features: {
        tenure_days: round((cutoff - n(r.signup_at)) / DAY_MS),
        monthly_charges: n(r.monthly_charges),
        sessions_3d: n(r.sessions_3d),
        sessions_7d: n(r.sessions_7d),
        sessions_30d: sessions30,
        sessions_90d: n(r.sessions_90d),
        minutes_7d: round(n(r.minutes_7d)),
        minutes_30d: round(n(r.minutes_30d)),
        minutes_90d: round(n(r.minutes_90d)),
        avg_session_minutes_30d: sessions30 === 0 ? null : round(n(r.minutes_30d) / sessions30),
        purchases_30d: n(r.purchases_30d),
        spend_30d: round(n(r.spend_30d)),
        spend_90d: round(n(r.spend_90d)),
        tickets_7d: n(r.tickets_7d),
        tickets_30d: n(r.tickets_30d),
        tickets_90d: n(r.tickets_90d),
        payment_failures_30d: n(r.payment_failures_30d),
        payment_failures_90d: n(r.payment_failures_90d),
        hours_since_last_session: lastSession === undefined ? null : round((cutoff - lastSession) / HOUR_MS),
        days_since_last_purchase: lastPurchase === undefined ? null : round((cutoff - lastPurchase) / DAY_MS),
        session_rate_trend: round(n(r.sessions_7d) / 7 - n(r.sessions_prev30) / 30),
        plan: String(r.plan),
        region: String(r.region),
      },
      label: churnedAt !== undefined && churnedAt < labelEnd ? 1 : 0,
    };
  });
}

const round = (x: number): number => Math.round(x * 1e4) / 1e4;

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
