import { tokenise } from '../pii.js';

/** What a raw row became: a typed warehouse row, or the reason it could not be. */
export type Parsed<T> = { ok: true; row: T } | { ok: false; reason: string };

export interface TableSpec<T> {
  table: 'customers' | 'events' | 'labels';
  key: keyof T & string;
  required: readonly string[];
  parse: (raw: Record<string, string>, piiKey: string | undefined) => Parsed<T>;
}

const time = (v: string | undefined): number | undefined => {
  if (v === undefined || v.trim() === '') return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
};
const num = (v: string | undefined): number | undefined => {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
};

export interface CustomerRow {
  customer_id: string;
  email_token: string | null;
  signup_at: number;
  plan: string;
  region: string;
  monthly_charges: number;
}

export interface EventRow {
  event_id: number;
  customer_id: string;
  event_time: number;
  event_type: string;
  value: number | null;
}

export interface LabelRow {
  customer_id: string;
  churned_at: number;
  reported_at: number;
}

export const CUSTOMERS: TableSpec<CustomerRow> = {
  table: 'customers',
  key: 'customer_id',
  required: ['customer_id', 'signup_at', 'plan', 'region', 'monthly_charges'],
  parse: (r, piiKey) => {
    const signup = time(r.signup_at);
    const charges = num(r.monthly_charges);
    if (!r.customer_id) return { ok: false, reason: 'customer_id is empty' };
    if (signup === undefined)
      return { ok: false, reason: `signup_at: expected an ISO time, got '${r.signup_at}'` };
    if (charges === undefined)
      return { ok: false, reason: `monthly_charges: expected a number, got '${r.monthly_charges}'` };
    return {
      ok: true,
      row: {
        customer_id: r.customer_id,
        // PII is tokenised before it is stored; the raw email never reaches the warehouse.
        email_token: r.email ? tokenise(r.email, piiKey) : null,
        signup_at: signup,
        plan: r.plan ?? '',
        region: r.region ?? '',
        monthly_charges: charges,
      },
    };
  },
};

export const EVENTS: TableSpec<EventRow> = {
  table: 'events',
  key: 'event_id',
  required: ['event_id', 'customer_id', 'event_time', 'event_type'],
  parse: (r) => {
    const id = num(r.event_id);
    const at = time(r.event_time);
    if (id === undefined || !Number.isInteger(id))
      return { ok: false, reason: `event_id: expected an integer, got '${r.event_id}'` };
    if (at === undefined)
      return { ok: false, reason: `event_time: expected an ISO time, got '${r.event_time}'` };
    if (!r.customer_id) return { ok: false, reason: 'customer_id is empty' };
    return {
      ok: true,
      row: {
        event_id: id,
        customer_id: r.customer_id,
        event_time: at,
        event_type: r.event_type ?? '',
        value: num(r.value) ?? null,
      },
    };
  },
};

export const LABELS: TableSpec<LabelRow> = {
  table: 'labels',
  key: 'customer_id',
  required: ['customer_id', 'churned_at', 'reported_at'],
  parse: (r) => {
    const churned = time(r.churned_at);
    const reported = time(r.reported_at);
    if (!r.customer_id) return { ok: false, reason: 'customer_id is empty' };
    if (churned === undefined)
      return { ok: false, reason: `churned_at: expected an ISO time, got '${r.churned_at}'` };
    if (reported === undefined)
      return { ok: false, reason: `reported_at: expected an ISO time, got '${r.reported_at}'` };
    return { ok: true, row: { customer_id: r.customer_id, churned_at: churned, reported_at: reported } };
  },
};

export function specForKey(
  key: string,
): TableSpec<CustomerRow> | TableSpec<EventRow> | TableSpec<LabelRow> | undefined {
  const file = key.slice(key.lastIndexOf('/') + 1);
  if (file === 'customers.csv') return CUSTOMERS;
  if (file === 'events.csv') return EVENTS;
  if (file === 'labels.csv') return LABELS;
  return undefined;
}
