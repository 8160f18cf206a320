import { DAY_MS, HOUR_MS } from '../time.js';
import type { Warehouse } from '../warehouse/db.js';

/** The raw, customer-level fields a churn model sees; the API takes the same fields. */
export const CHURN_NUMERIC = [
  'tenure_days',
  'monthly_charges',
  'sessions_3d',
  'sessions_7d',
  'sessions_30d',
  'minutes_30d',
  'tickets_7d',
  'tickets_30d',
  'payment_failures_30d',
  'purchases_30d',
  'hours_since_last_session',
] as const;
export const CHURN_CATEGORICAL = ['plan', 'region'] as const;

export type RawFeatures = Record<string, number | string | null>;

export interface LabelledRow {
  customerId: string;
  features: RawFeatures;
  label: 0 | 1;
}

/**
 * Builds one row per customer as of `cutoff`, point in time: only events strictly before the cutoff
 * enter the features; the label is whether the customer churned in [cutoff, cutoff + horizon).
 * Customers who signed up at or after the cutoff, or churned before it, are left out.
 * The aggregation runs as SQL in the warehouse (the same statement on SQLite and PostgreSQL).
 */
export async function buildChurnRows(
  db: Warehouse,
  cutoff: number,
  horizonHours: number,
): Promise<LabelledRow[]> {
  const d3 = cutoff - 3 * DAY_MS;
  const d7 = cutoff - 7 * DAY_MS;
  const d30 = cutoff - 30 * DAY_MS;
  const labelEnd = cutoff + horizonHours * HOUR_MS;
  const sql = `
    SELECT c.customer_id, c.plan, c.region, c.monthly_charges, c.signup_at, l.churned_at,
      SUM(CASE WHEN e.event_type = 'session' AND e.event_time >= ? THEN 1 ELSE 0 END) AS sessions_3d,
      SUM(CASE WHEN e.event_type = 'session' AND e.event_time >= ? THEN 1 ELSE 0 END) AS sessions_7d,
      SUM(CASE WHEN e.event_type = 'session' THEN 1 ELSE 0 END) AS sessions_30d,
      SUM(CASE WHEN e.event_type = 'session' THEN e.value ELSE 0 END) AS minutes_30d,
      SUM(CASE WHEN e.event_type = 'support_ticket' AND e.event_time >= ? THEN 1 ELSE 0 END) AS tickets_7d,
      SUM(CASE WHEN e.event_type = 'support_ticket' THEN 1 ELSE 0 END) AS tickets_30d,
      SUM(CASE WHEN e.event_type = 'payment_failure' THEN 1 ELSE 0 END) AS payment_failures_30d,
      SUM(CASE WHEN e.event_type = 'purchase' THEN e.value ELSE 0 END) AS purchases_30d,
      MAX(CASE WHEN e.event_type = 'session' THEN e.event_time END) AS last_session_at
    FROM customers c
    LEFT JOIN events e ON e.customer_id = c.customer_id AND e.event_time >= ? AND e.event_time < ?
    LEFT JOIN labels l ON l.customer_id = c.customer_id
    WHERE c.signup_at < ? AND (l.churned_at IS NULL OR l.churned_at >= ?)
    GROUP BY c.customer_id, c.plan, c.region, c.monthly_charges, c.signup_at, l.churned_at
    ORDER BY c.customer_id`;
  const result = await db.raw(sql, [d3, d7, d7, d30, cutoff, cutoff, cutoff]);
  const rows: Record<string, unknown>[] = Array.isArray(result) ? result : result.rows;
  const n = (v: unknown): number => Number(v ?? 0);
  return rows.map((r) => {
    const churnedAt = r.churned_at === null || r.churned_at === undefined ? undefined : n(r.churned_at);
    const last = r.last_session_at === null || r.last_session_at === undefined ? null : n(r.last_session_at);
    return {
      customerId: String(r.customer_id),
      features: {
        tenure_days: round((cutoff - n(r.signup_at)) / DAY_MS),
        monthly_charges: n(r.monthly_charges),
        sessions_3d: n(r.sessions_3d),
        sessions_7d: n(r.sessions_7d),
        sessions_30d: n(r.sessions_30d),
        minutes_30d: round(n(r.minutes_30d)),
        tickets_7d: n(r.tickets_7d),
        tickets_30d: n(r.tickets_30d),
        payment_failures_30d: n(r.payment_failures_30d),
        purchases_30d: round(n(r.purchases_30d)),
        hours_since_last_session: last === null ? null : round((cutoff - last) / HOUR_MS),
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
