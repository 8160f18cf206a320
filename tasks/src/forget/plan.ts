import { parseCsv, toCsv } from '../csv.js';
import { DriftwoodError } from '../errors.js';

/** Customer ids as the simulator and the sources write them; anything else is refused before I/O. */
const CUSTOMER_ID = /^[A-Za-z0-9_-]{1,32}$/;

export function checkCustomerId(id: string): string {
  if (!CUSTOMER_ID.test(id)) {
    throw new DriftwoodError(
      'USAGE',
      `--customer: expected a customer id of 1-32 letters, digits, '_' or '-', got '${id}'`,
    );
  }
  return id;
}

/** What forgetting one customer does to one lake file: its new text, or nothing to change. */
export type FileRewrite = { changed: false } | { changed: true; text: string; removed: number; kept: number };

/**
 * Removes a customer's rows from one CSV lake file. Pure: the caller reads and writes the object.
 * Files without a `customer_id` column hold no customer rows and are left alone.
 */
export function planFileRewrite(text: string, customerId: string): FileRewrite {
  const { header, rows } = parseCsv(text);
  if (!header.includes('customer_id')) return { changed: false };
  const kept = rows.filter((r) => r.customer_id !== customerId);
  if (kept.length === rows.length) return { changed: false };
  return {
    changed: true,
    text: toCsv(
      header,
      kept.map((r) => header.map((h) => r[h] ?? '')),
    ),
    removed: rows.length - kept.length,
    kept: kept.length,
  };
}

/** The lake objects that may hold customer rows: raw files and their quarantined copies, by format. */
export function customerFileFormat(key: string, dataset: string): 'csv' | 'jsonl' | 'parquet' | undefined {
  if (!key.startsWith(`raw/${dataset}/`) && !key.startsWith(`quarantine/${dataset}/`)) return undefined;
  if (key.endsWith('.csv')) return 'csv';
  if (key.endsWith('.jsonl') || key.endsWith('.ndjson')) return 'jsonl';
  if (key.endsWith('.parquet')) return 'parquet';
  return undefined;
}

/**
 * Removes the lines whose `field` equals `value` from a JSON Lines file: raw files keyed by
 * `customer_id`, or the API's prediction log keyed by `customer_token`. Pure.
 */
export function planJsonlRewrite(text: string, value: string, field = 'customer_token'): FileRewrite {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const kept = lines.filter((l) => {
    try {
      return (JSON.parse(l) as Record<string, unknown>)[field] !== value;
    } catch {
      // A line we cannot read is kept as it is: forgetting must never lose other people's data.
      return true;
    }
  });
  if (kept.length === lines.length) return { changed: false };
  return {
    changed: true,
    text: kept.map((l) => `${l}\n`).join(''),
    removed: lines.length - kept.length,
    kept: kept.length,
  };
}
