import { DriftwoodError } from '../errors.js';

/**
 * The fitted feature transform: fitted once on the training split, saved as plain JSON next to the
 * model, and run by the very same `transformRow` in training (batch) and serving (one row), so
 * training and serving compute the same vector for the same raw fields.
 */
export const TRANSFORM_FORMAT = 'driftwood.transform/v2';
export const UNSEEN = '__unseen__';

export type Scaling = 'standard' | 'robust';

export interface TransformOptions {
  /** `standard`: (x − mean) / sd; `robust`: (x − median) / IQR, for heavy-tailed inputs. */
  scaling: Scaling;
  /** A category seen in less than this share of training rows goes to the unseen bucket. */
  minCategoryShare: number;
  /** A feature whose most common value covers at least this share of training rows is dropped. */
  nearConstantShare: number;
  /** Of two numeric features with |Pearson r| at or above this, the later one is dropped. */
  maxCorrelation: number;
}

export const DEFAULT_TRANSFORM_OPTIONS: TransformOptions = {
  scaling: 'standard',
  minCategoryShare: 0.01,
  nearConstantShare: 0.995,
  maxCorrelation: 0.95,
};

export interface NumericState {
  name: string;
  /** Value used when the input is missing (the training median). */
  impute: number;
  center: number;
  scale: number;
  /** Whether a `<name>__missing` 0/1 column follows the value (training saw missing values). */
  missingIndicator: boolean;
  /** The smallest and largest training values (absent in states fitted before they were kept). */
  min?: number;
  max?: number;
}

export interface CategoricalState {
  name: string;
  /** Categories that get their own column; anything else goes to the unseen bucket. */
  categories: string[];
  /** Value used when the input is missing (the most frequent training category). */
  impute: string;
}

export interface DroppedFeature {
  name: string;
  kind: 'numeric' | 'categorical';
  reason: string;
}

export interface TransformState {
  format: typeof TRANSFORM_FORMAT;
  options: TransformOptions;
  numeric: NumericState[];
  categorical: CategoricalState[];
  /** Features the selection removed, each with the reason; requests may still carry them. */
  dropped: DroppedFeature[];
  outputs: string[];
}

export interface TransformSpec {
  numeric: readonly string[];
  categorical: readonly string[];
}

export type Row = Record<string, unknown>;

/**
 * Inputs beyond ±1e12 are clipped: no real feature is that large, and sums of squares of larger ones
 * overflow to Infinity, which would turn a vector into NaN.
 */
export const INPUT_LIMIT = 1e12;

/** A finite number from a number or numeric string (clipped to ±INPUT_LIMIT), else undefined. */
export function toNumber(v: unknown): number | undefined {
  let n: number | undefined;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && v.trim() !== '') n = Number(v);
  if (n === undefined || !Number.isFinite(n)) return undefined;
  return Math.min(Math.max(n, -INPUT_LIMIT), INPUT_LIMIT);
}

const toCategory = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Linear-interpolated quantile of sorted values (the definition numpy and pandas use by default). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

interface NumericColumn {
  name: string;
  /** Imputed training values of evenly spaced rows (at most CORRELATION_SAMPLE), for correlation. */
  sample: Float64Array;
  state: NumericState;
  topShare: number;
}

/** Correlations are measured on at most this many evenly spaced training rows. */
export const CORRELATION_SAMPLE = 100_000;

/** Scratch buffers shared by every numeric column of one fit (one allocation, not one per column). */
interface Scratch {
  values: Float64Array;
  sorted: Float64Array;
  missingAt: Uint8Array;
}

function fitNumeric(rows: readonly Row[], name: string, scaling: Scaling, scratch: Scratch): NumericColumn {
  // Typed arrays throughout: boxed numbers in plain arrays, or fresh buffers per column, keep the
  // garbage collector busier than the maths once there are a million rows.
  const n = rows.length;
  const { values, missingAt } = scratch;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const v = toNumber((rows[i] as Row)[name]);
    if (v === undefined) missingAt[i] = 1;
    else {
      missingAt[i] = 0;
      values[i] = v;
      scratch.sorted[count++] = v;
    }
  }
  const sorted = scratch.sorted.subarray(0, count).sort();
  const impute = quantile(sorted, 0.5);
  const missing = n - count;
  for (let i = 0; i < n; i++) if (missingAt[i]) values[i] = impute;
  let center: number;
  let spread: number;
  if (scaling === 'robust') {
    const all = values.slice(0, n).sort();
    center = quantile(all, 0.5);
    spread = quantile(all, 0.75) - quantile(all, 0.25);
  } else {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[i] as number;
    center = sum / n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += ((values[i] as number) - center) ** 2;
    spread = Math.sqrt(ss / n);
  }
  // The share of the most common value (missing ones count as the imputed value), from the sorted
  // values' longest run: the near-constant check.
  let top = missing;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j < sorted.length && sorted[j] === sorted[i]) j++;
    top = Math.max(top, j - i + (sorted[i] === impute ? missing : 0));
    i = j;
  }
  const m = Math.min(n, CORRELATION_SAMPLE);
  const sample = new Float64Array(m);
  for (let k = 0; k < m; k++) sample[k] = values[Math.floor((k * n) / m)] as number;
  return {
    name,
    sample,
    topShare: top / n,
    state: {
      name,
      impute,
      center,
      scale: spread > 1e-12 ? spread : 1,
      missingIndicator: missing > 0,
      // + 0 turns -0 into 0, which JSON would do anyway: the state survives a round trip unchanged.
      ...(count > 0 ? { min: (sorted[0] as number) + 0, max: (sorted[count - 1] as number) + 0 } : {}),
    },
  };
}

function pearson(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] as number;
    mb += b[i] as number;
  }
  ma /= n;
  mb /= n;
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < n; i++) {
    const da = (a[i] as number) - ma;
    const db = (b[i] as number) - mb;
    cov += da * db;
    va += da * da;
    vb += db * db;
  }
  return va === 0 || vb === 0 ? 0 : cov / Math.sqrt(va * vb);
}

const round4 = (x: number): string => x.toFixed(4);

/**
 * Fits the transform on the training rows only: median imputation with missing indicators, standard
 * or robust scaling, one-hot encoding with a minimum frequency and an unseen bucket (missing
 * categories take the most frequent one), and feature selection that drops near-constant and highly
 * correlated features, recording the reason for each.
 */
export function fitTransform(
  rows: readonly Row[],
  spec: TransformSpec,
  overrides: Partial<TransformOptions> = {},
): TransformState {
  if (rows.length === 0)
    throw new DriftwoodError('DATA_MISSING', 'cannot fit the feature transform on zero rows');
  const options = { ...DEFAULT_TRANSFORM_OPTIONS, ...overrides };
  const dropped: DroppedFeature[] = [];

  const kept: NumericColumn[] = [];
  const n = rows.length;
  const scratch = { values: new Float64Array(n), sorted: new Float64Array(n), missingAt: new Uint8Array(n) };
  for (const name of spec.numeric) {
    const col = fitNumeric(rows, name, options.scaling, scratch);
    if (col.topShare >= options.nearConstantShare) {
      dropped.push({
        name,
        kind: 'numeric',
        reason: `near-constant: one value in ${round4(col.topShare * 100)}% of training rows`,
      });
      continue;
    }
    let twin: { name: string; r: number } | undefined;
    for (const other of kept) {
      const r = pearson(col.sample, other.sample);
      if (Math.abs(r) >= options.maxCorrelation) {
        twin = { name: other.name, r };
        break;
      }
    }
    if (twin) {
      dropped.push({
        name,
        kind: 'numeric',
        reason: `correlated with ${twin.name}: r = ${round4(twin.r)} (|r| ≥ ${options.maxCorrelation})`,
      });
      continue;
    }
    kept.push(col);
  }

  const categorical: CategoricalState[] = [];
  for (const name of spec.categorical) {
    const counts = new Map<string, number>();
    for (const r of rows) {
      const v = toCategory(r[name]);
      if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    // Most frequent first, ties by name, so the fitted state does not depend on row order.
    const ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const impute = ranked[0]?.[0] ?? UNSEEN;
    const missing = rows.length - [...counts.values()].reduce((a, b) => a + b, 0);
    const topShare = ((ranked[0]?.[1] ?? 0) + missing) / rows.length;
    if (topShare >= options.nearConstantShare) {
      dropped.push({
        name,
        kind: 'categorical',
        reason: `near-constant: '${impute}' in ${round4(topShare * 100)}% of training rows`,
      });
      continue;
    }
    const categories = ranked
      .filter(([, c]) => c / rows.length >= options.minCategoryShare)
      .map(([v]) => v)
      .sort();
    categorical.push({ name, categories, impute });
  }

  const numeric = kept.map((c) => c.state);
  const outputs: string[] = [];
  for (const n of numeric) {
    outputs.push(n.name);
    if (n.missingIndicator) outputs.push(`${n.name}__missing`);
  }
  for (const c of categorical) for (const cat of [...c.categories, UNSEEN]) outputs.push(`${c.name}=${cat}`);
  return { format: TRANSFORM_FORMAT, options, numeric, categorical, dropped, outputs };
}

/** Turns one raw row into the model's input vector. Training (batch) and serving (one row) both call this. */
export function transformRow(
  state: TransformState,
  row: Row,
  out: Float32Array = new Float32Array(state.outputs.length),
): Float32Array {
  writeRow(state, row, out, 0);
  return out;
}

/** Batch form: a row-major matrix of N rows, each written by the very same `writeRow`. */
export function transformRows(state: TransformState, rows: readonly Row[]): Float32Array {
  const width = state.outputs.length;
  const out = new Float32Array(rows.length * width);
  // Offsets rather than a subarray per row: a million rows would allocate a million views.
  for (let r = 0; r < rows.length; r++) writeRow(state, rows[r] as Row, out, r * width);
  return out;
}

function writeRow(state: TransformState, row: Row, out: Float32Array, offset: number): void {
  let i = offset;
  for (const n of state.numeric) {
    const v = toNumber(row[n.name]);
    out[i++] = ((v ?? n.impute) - n.center) / n.scale;
    if (n.missingIndicator) out[i++] = v === undefined ? 1 : 0;
  }
  for (const c of state.categorical) {
    const v = toCategory(row[c.name]) ?? c.impute;
    const idx = c.categories.indexOf(v);
    for (let k = 0; k <= c.categories.length; k++) out[i + k] = 0;
    out[i + (idx === -1 ? c.categories.length : idx)] = 1;
    i += c.categories.length + 1;
  }
}

/** Every raw field a request may carry: the fitted features and the ones selection dropped. */
export function inputFields(state: TransformState): { numeric: string[]; categorical: string[] } {
  const droppedOf = (kind: DroppedFeature['kind']) =>
    state.dropped.filter((d) => d.kind === kind).map((d) => d.name);
  return {
    numeric: [...state.numeric.map((n) => n.name), ...droppedOf('numeric')],
    categorical: [...state.categorical.map((c) => c.name), ...droppedOf('categorical')],
  };
}

/** Checks a parsed JSON document is a transform this code can run, naming what is wrong. */
export function parseTransformState(json: unknown): TransformState {
  const s = json as Partial<TransformState> | null;
  const bad = (what: string): never => {
    throw new DriftwoodError('MODEL_INVALID', `transform.json: ${what}`);
  };
  if (!s || typeof s !== 'object') return bad('expected a JSON object');
  if (s.format !== TRANSFORM_FORMAT)
    return bad(`expected format ${TRANSFORM_FORMAT}, got ${JSON.stringify(s.format)}: retrain the model`);
  if (!Array.isArray(s.numeric) || !Array.isArray(s.categorical) || !Array.isArray(s.outputs))
    return bad('numeric, categorical and outputs must be arrays');
  if (!Array.isArray(s.dropped) || !s.options) return bad('dropped and options are required');
  const width =
    s.numeric.reduce((a, n) => a + 1 + (n.missingIndicator ? 1 : 0), 0) +
    s.categorical.reduce((a, c) => a + c.categories.length + 1, 0);
  if (width !== s.outputs.length)
    return bad(`the features make ${width} columns but outputs lists ${s.outputs.length}`);
  for (const n of s.numeric)
    if (![n.impute, n.center, n.scale].every(Number.isFinite) || n.scale === 0)
      return bad(`numeric feature ${n.name} has a non-finite or zero parameter`);
  return s as TransformState;
}
