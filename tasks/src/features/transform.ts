import { DriftwoodError } from '../errors.js';

export const TRANSFORM_FORMAT = 'driftwood.transform/v1';
const UNSEEN = '__unseen__';

export interface NumericState {
  name: string;
  /** Value used when the input is missing (the training median). */
  impute: number;
  center: number;
  scale: number;
  /** Whether a `<name>__missing` 0/1 column follows the value. */
  missingIndicator: boolean;
}

export interface CategoricalState {
  name: string;
  categories: string[];
}

/** The fitted transform: plain JSON, saved next to the model, rebuilt by serving. */
export interface TransformState {
  format: typeof TRANSFORM_FORMAT;
  numeric: NumericState[];
  categorical: CategoricalState[];
  outputs: string[];
}

export type Row = Record<string, unknown>;

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function median(sorted: number[]): number {
  if (sorted.length === 0) return 0;
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Fits imputation (median, with a missing indicator where training saw missing values), standard
 * scaling and one-hot encoding (with an unseen bucket) on the training rows only.
 */
export function fitTransform(
  rows: readonly Row[],
  spec: { numeric: readonly string[]; categorical: readonly string[] },
): TransformState {
  if (rows.length === 0)
    throw new DriftwoodError('DATA_MISSING', 'cannot fit the feature transform on zero rows');
  const numeric = spec.numeric.map((name): NumericState => {
    const values: number[] = [];
    let missing = 0;
    for (const r of rows) {
      const v = toNumber(r[name]);
      if (v === undefined) missing++;
      else values.push(v);
    }
    values.sort((a, b) => a - b);
    const impute = median(values);
    const filled = values.concat(new Array<number>(missing).fill(impute));
    const mean = filled.reduce((a, b) => a + b, 0) / filled.length;
    const variance = filled.reduce((a, b) => a + (b - mean) ** 2, 0) / filled.length;
    const sd = Math.sqrt(variance);
    return { name, impute, center: mean, scale: sd > 1e-12 ? sd : 1, missingIndicator: missing > 0 };
  });
  const categorical = spec.categorical.map((name): CategoricalState => {
    const seen = new Set<string>();
    for (const r of rows) {
      const v = r[name];
      if (typeof v === 'string' && v !== '') seen.add(v);
    }
    return { name, categories: [...seen].sort() };
  });
  const outputs: string[] = [];
  for (const n of numeric) {
    outputs.push(n.name);
    if (n.missingIndicator) outputs.push(`${n.name}__missing`);
  }
  for (const c of categorical) for (const cat of [...c.categories, UNSEEN]) outputs.push(`${c.name}=${cat}`);
  return { format: TRANSFORM_FORMAT, numeric, categorical, outputs };
}

/** Turns one raw row into the model's input vector. Training (batch) and serving (one row) both call this. */
export function transformRow(
  state: TransformState,
  row: Row,
  out: Float32Array = new Float32Array(state.outputs.length),
): Float32Array {
  let i = 0;
  for (const n of state.numeric) {
    const v = toNumber(row[n.name]);
    out[i++] = ((v ?? n.impute) - n.center) / n.scale;
    if (n.missingIndicator) out[i++] = v === undefined ? 1 : 0;
  }
  for (const c of state.categorical) {
    const v = row[c.name];
    const idx = typeof v === 'string' ? c.categories.indexOf(v) : -1;
    for (let k = 0; k <= c.categories.length; k++) out[i + k] = 0;
    out[i + (idx === -1 ? c.categories.length : idx)] = 1;
    i += c.categories.length + 1;
  }
  return out;
}

/** Batch form: a row-major matrix of N rows, built by the very same `transformRow`. */
export function transformRows(state: TransformState, rows: readonly Row[]): Float32Array {
  const width = state.outputs.length;
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => {
    transformRow(state, r, out.subarray(i * width, (i + 1) * width));
  });
  return out;
}

/** Checks a parsed JSON document is a transform this code can run. */
export function parseTransformState(json: unknown): TransformState {
  const s = json as Partial<TransformState> | null;
  if (
    !s ||
    s.format !== TRANSFORM_FORMAT ||
    !Array.isArray(s.numeric) ||
    !Array.isArray(s.categorical) ||
    !Array.isArray(s.outputs)
  ) {
    throw new DriftwoodError('MODEL_INVALID', `transform.json: expected format ${TRANSFORM_FORMAT}`);
  }
  return s as TransformState;
}
