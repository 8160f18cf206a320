import type { LabelledRow, RawFeatures } from './rows.js';
import { toNumber } from './transform.js';

/**
 * A labelled table held column by column: what a columnar build (the DuckDB engine) hands on, so the
 * split, the transform's fit and the transform itself touch typed arrays instead of a million row
 * objects. Value for value it is the same table as the `LabelledRow`s (`columnsOfRows` and
 * `rowsOfColumns` go between the two): a missing number is NaN here and null in a row.
 */
export interface FeatureColumns {
  rows: number;
  ids: string[];
  labels: Uint8Array;
  /** One array per numeric input; NaN where the row has null. */
  numeric: Record<string, Float64Array>;
  /** One array per categorical input (null where the row has null). */
  categorical: Record<string, (string | null)[]>;
  /** The raw fields in the rows' key order (numeric and categorical interleaved as the builder makes them). */
  order: string[];
  /** When each row happened (epoch ms), for builders that know it. */
  time?: Float64Array;
}

/**
 * The rows as columns. A numeric field is read as the transform reads it (`toNumber`: numbers and
 * numeric strings, clipped to ±1e12), so fitting on the columns fits what fitting on the rows fits.
 */
export function columnsOfRows(
  rows: readonly LabelledRow[],
  spec: { numeric: readonly string[]; categorical: readonly string[] },
): FeatureColumns {
  const n = rows.length;
  const numeric: Record<string, Float64Array> = {};
  const categorical: Record<string, (string | null)[]> = {};
  for (const name of spec.numeric) {
    const col = new Float64Array(n);
    for (let i = 0; i < n; i++) col[i] = toNumber((rows[i] as LabelledRow).features[name]) ?? Number.NaN;
    numeric[name] = col;
  }
  for (const name of spec.categorical)
    categorical[name] = rows.map((r) => {
      const v = r.features[name];
      return v === null || v === undefined ? null : String(v);
    });
  const hasTime = n > 0 && rows.every((r) => r.time !== undefined);
  return {
    rows: n,
    ids: rows.map((r) => r.customerId),
    labels: Uint8Array.from(rows, (r) => r.label),
    numeric,
    categorical,
    order: Object.keys(rows[0]?.features ?? {}),
    ...(hasTime ? { time: Float64Array.from(rows, (r) => r.time as number) } : {}),
  };
}

/** The columns as rows (NaN becomes null), in the fields' order the builder gives. */
export function rowsOfColumns(table: FeatureColumns): LabelledRow[] {
  const out = new Array<LabelledRow>(table.rows);
  const fields = table.order.map((name) => ({
    name,
    numeric: table.numeric[name],
    categorical: table.categorical[name],
  }));
  for (let i = 0; i < table.rows; i++) {
    const features: RawFeatures = {};
    for (const f of fields) {
      if (f.numeric) {
        const v = f.numeric[i] as number;
        features[f.name] = Number.isNaN(v) ? null : v;
      } else features[f.name] = (f.categorical as (string | null)[])[i] ?? null;
    }
    out[i] = {
      customerId: table.ids[i] as string,
      features,
      label: table.labels[i] as 0 | 1,
      ...(table.time ? { time: table.time[i] as number } : {}),
    };
  }
  return out;
}

/** The rows at `at` (positions in the table, in that order): a split's part, still as columns. */
export function takeColumns(table: FeatureColumns, at: Int32Array): FeatureColumns {
  const numeric: Record<string, Float64Array> = {};
  const categorical: Record<string, (string | null)[]> = {};
  const gather = (col: Float64Array) => {
    const out = new Float64Array(at.length);
    for (let k = 0; k < at.length; k++) out[k] = col[at[k] as number] as number;
    return out;
  };
  for (const [name, col] of Object.entries(table.numeric)) numeric[name] = gather(col);
  for (const [name, col] of Object.entries(table.categorical))
    categorical[name] = Array.from(at, (i) => col[i] ?? null);
  return {
    rows: at.length,
    ids: Array.from(at, (i) => table.ids[i] as string),
    labels: Uint8Array.from(at, (i) => table.labels[i] as number),
    numeric,
    categorical,
    order: table.order,
    ...(table.time ? { time: gather(table.time) } : {}),
  };
}
