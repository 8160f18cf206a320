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
  /**
   * Imputed training values of evenly spaced rows (at most CORRELATION_SAMPLE) minus their mean, and
   * the sum of their squares: what every correlation of this column needs, computed once.
   */
  deviations: Float64Array;
  sumSquares: number;
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
  radix: RadixBuffers;
}

interface RadixBuffers {
  hi: Uint32Array;
  lo: Uint32Array;
  hi2: Uint32Array;
  lo2: Uint32Array;
  counts: Uint32Array;
}

const radixBuffers = (n: number): RadixBuffers => ({
  hi: new Uint32Array(n),
  lo: new Uint32Array(n),
  hi2: new Uint32Array(n),
  lo2: new Uint32Array(n),
  counts: new Uint32Array(1 << 16),
});

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Sorts finite numbers in place, ascending, -0 before 0: the order `Float64Array.prototype.sort`
 * gives, by an LSD radix sort on the numbers' bits (four 16-bit digits of keys that order as the
 * numbers do, a digit all keys share skipped). A million values sort in a few passes instead of a
 * comparison sort's twenty, which was most of a fit's time.
 */
export function sortNumbers(a: Float64Array, buf: RadixBuffers = radixBuffers(a.length)): Float64Array {
  const n = a.length;
  if (n < 1024 || !LITTLE_ENDIAN) return a.sort();
  const words = new Uint32Array(a.buffer, a.byteOffset, n * 2);
  let hi = buf.hi.subarray(0, n);
  let lo = buf.lo.subarray(0, n);
  let hi2 = buf.hi2.subarray(0, n);
  let lo2 = buf.lo2.subarray(0, n);
  const counts = buf.counts;
  // Negative numbers: every bit flipped (larger magnitudes sort first); others: the sign bit set.
  for (let i = 0; i < n; i++) {
    const h = words[2 * i + 1] as number;
    const l = words[2 * i] as number;
    if (h & 0x80000000) {
      hi[i] = ~h >>> 0;
      lo[i] = ~l >>> 0;
    } else {
      hi[i] = (h | 0x80000000) >>> 0;
      lo[i] = l;
    }
  }
  for (let pass = 0; pass < 4; pass++) {
    const key = pass < 2 ? lo : hi;
    const shift = (pass & 1) * 16;
    counts.fill(0);
    for (let i = 0; i < n; i++) (counts[((key[i] as number) >>> shift) & 0xffff] as number)++;
    if (counts[((key[0] as number) >>> shift) & 0xffff] === n) continue;
    let total = 0;
    for (let d = 0; d < 1 << 16; d++) {
      const c = counts[d] as number;
      counts[d] = total;
      total += c;
    }
    for (let i = 0; i < n; i++) {
      const d = ((key[i] as number) >>> shift) & 0xffff;
      const at = counts[d] as number;
      counts[d] = at + 1;
      hi2[at] = hi[i] as number;
      lo2[at] = lo[i] as number;
    }
    [hi, hi2] = [hi2, hi];
    [lo, lo2] = [lo2, lo];
  }
  for (let i = 0; i < n; i++) {
    const h = hi[i] as number;
    const l = lo[i] as number;
    if (h & 0x80000000) {
      words[2 * i + 1] = (h & 0x7fffffff) >>> 0;
      words[2 * i] = l;
    } else {
      words[2 * i + 1] = ~h >>> 0;
      words[2 * i] = ~l >>> 0;
    }
  }
  return a;
}

/**
 * Where a fit reads its training values from: row objects or typed columns. Both give each numeric
 * column's values in row order through the same `toNumber` rule and each categorical column's
 * values, so the maths after the read (and so the fitted state) is one and the same.
 */
interface FitSource {
  rows: number;
  /** Writes the column's values into `values` (missing ones flagged in `missingAt`) and, in row order, into `sorted`; returns how many are present. */
  readNumeric(name: string, scratch: Scratch): number;
  /** How many rows hold each category (missing ones not counted). */
  countCategories(name: string): Map<string, number>;
}

function rowSource(rows: readonly Row[]): FitSource {
  return {
    rows: rows.length,
    readNumeric(name, scratch) {
      const { values, missingAt, sorted } = scratch;
      let count = 0;
      for (let i = 0; i < rows.length; i++) {
        const v = toNumber((rows[i] as Row)[name]);
        if (v === undefined) missingAt[i] = 1;
        else {
          missingAt[i] = 0;
          values[i] = v;
          sorted[count++] = v;
        }
      }
      return count;
    },
    countCategories(name) {
      const counts = new Map<string, number>();
      for (const r of rows) {
        const v = toCategory(r[name]);
        if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
      }
      return counts;
    },
  };
}

/** The numeric and categorical columns of a table, as a columnar build gives them. */
export interface ColumnTable {
  rows: number;
  /** NaN (or ±Infinity) where a value is missing, as `toNumber` finds it missing. */
  numeric: Readonly<Record<string, Float64Array>>;
  categorical: Readonly<Record<string, readonly (string | null)[]>>;
}

/** A number as `toNumber` reads it: undefined when not finite, else clipped to ±INPUT_LIMIT. */
const clip = (v: number): number => Math.min(Math.max(v, -INPUT_LIMIT), INPUT_LIMIT);

const columnOf = <T>(columns: Readonly<Record<string, T>>, name: string): T => {
  const col = columns[name];
  if (col === undefined)
    throw new DriftwoodError('SCHEMA_MISMATCH', `the feature table has no column '${name}'`);
  return col;
};

function columnSource(table: ColumnTable): FitSource {
  return {
    rows: table.rows,
    readNumeric(name, scratch) {
      const col = columnOf(table.numeric, name);
      const { values, missingAt, sorted } = scratch;
      let count = 0;
      for (let i = 0; i < table.rows; i++) {
        const x = col[i] as number;
        if (!Number.isFinite(x)) missingAt[i] = 1;
        else {
          const v = clip(x);
          missingAt[i] = 0;
          values[i] = v;
          sorted[count++] = v;
        }
      }
      return count;
    },
    countCategories(name) {
      const col = columnOf(table.categorical, name);
      // Counted per distinct value first: a column holds a few values many times.
      const counts = new Map<string | null, number>();
      for (let i = 0; i < table.rows; i++) {
        const v = col[i] ?? null;
        counts.set(v, (counts.get(v) ?? 0) + 1);
      }
      const out = new Map<string, number>();
      for (const [v, c] of counts) {
        const cat = toCategory(v);
        if (cat !== undefined) out.set(cat, c);
      }
      return out;
    },
  };
}

/**
 * The k-th smallest (from 0) of `a`, moving its values about: a quickselect with a three-way
 * partition, so columns of a few values repeated many times (counts) take few rounds.
 */
function select(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const x = a[lo] as number;
    const y = a[(lo + hi) >>> 1] as number;
    const z = a[hi] as number;
    const pivot = Math.max(Math.min(x, y), Math.min(Math.max(x, y), z)); // the middle of the three
    let lt = lo;
    let i = lo;
    let gt = hi;
    while (i <= gt) {
      const v = a[i] as number;
      if (v < pivot) {
        a[i++] = a[lt] as number;
        a[lt++] = v;
      } else if (v > pivot) {
        a[i] = a[gt] as number;
        a[gt--] = v;
      } else i++;
    }
    if (k < lt) hi = lt - 1;
    else if (k > gt) lo = gt + 1;
    else return pivot;
  }
  return a[lo] as number;
}

/**
 * `quantile(sorted, 0.5)` of unsorted values, without sorting them: the two middle values by
 * selection, then the same interpolation. (-0 and 0 may swap places against a sort; the median of
 * either comes out the same, since -0 + 0 is 0.)
 */
function medianOf(a: Float64Array): number {
  if (a.length === 0) return 0;
  const pos = (a.length - 1) * 0.5;
  const lo = Math.floor(pos);
  const x = select(a, lo);
  let y = x;
  if (Math.ceil(pos) !== lo) {
    // After selection everything past `lo` is at least `x`: the next value is their smallest.
    y = a[lo + 1] as number;
    for (let i = lo + 2; i < a.length; i++) if ((a[i] as number) < y) y = a[i] as number;
  }
  return x + (y - x) * (pos - lo);
}

function fitNumeric(
  source: FitSource,
  name: string,
  options: Pick<TransformOptions, 'scaling' | 'nearConstantShare'>,
  scratch: Scratch,
): NumericColumn {
  // Typed arrays throughout: boxed numbers in plain arrays, or fresh buffers per column, keep the
  // garbage collector busier than the maths once there are a million rows.
  const n = source.rows;
  const { values, missingAt } = scratch;
  const count = source.readNumeric(name, scratch);
  const present = scratch.sorted.subarray(0, count);
  // Standard scaling needs of the order only the median, the smallest and the largest value, and a
  // near-constant share above one half can only be the median's (a value in more than half of the
  // rows is the median): no sort then. Robust scaling's quartiles, or a lower share, sort.
  const sortFree = options.scaling === 'standard' && options.nearConstantShare > 0.5;
  const sorted = sortFree ? undefined : sortNumbers(present, scratch.radix);
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  if (sorted) {
    min = sorted[0] as number;
    max = sorted[count - 1] as number;
  } else
    for (let i = 0; i < count; i++) {
      const v = present[i] as number;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  const impute = sorted ? quantile(sorted, 0.5) : medianOf(present);
  const missing = n - count;
  for (let i = 0; i < n; i++) if (missingAt[i]) values[i] = impute;
  let center: number;
  let spread: number;
  if (options.scaling === 'robust') {
    const all = sortNumbers(values.slice(0, n), scratch.radix);
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
  // The share of the most common value (missing ones count as the imputed value): the near-constant
  // check. From the sorted values' longest run; without a sort, the median's rows and the missing
  // ones, which is that share whenever it reaches the threshold (and stays below it otherwise).
  let top = missing;
  if (sorted)
    for (let i = 0; i < sorted.length; ) {
      let j = i;
      while (j < sorted.length && sorted[j] === sorted[i]) j++;
      top = Math.max(top, j - i + (sorted[i] === impute ? missing : 0));
      i = j;
    }
  else for (let i = 0; i < n; i++) if (!missingAt[i] && values[i] === impute) top++;
  const m = Math.min(n, CORRELATION_SAMPLE);
  const deviations = new Float64Array(m);
  let sampleSum = 0;
  for (let k = 0; k < m; k++) {
    const v = values[Math.floor((k * n) / m)] as number;
    deviations[k] = v;
    sampleSum += v;
  }
  const sampleMean = sampleSum / m;
  let sumSquares = 0;
  for (let k = 0; k < m; k++) {
    const d = (deviations[k] as number) - sampleMean;
    deviations[k] = d;
    sumSquares += d * d;
  }
  return {
    name,
    deviations,
    sumSquares,
    topShare: top / n,
    state: {
      name,
      impute,
      center,
      scale: spread > 1e-12 ? spread : 1,
      missingIndicator: missing > 0,
      // + 0 turns -0 into 0, which JSON would do anyway: the state survives a round trip unchanged.
      ...(count > 0 ? { min: min + 0, max: max + 0 } : {}),
    },
  };
}

/** Pearson's r of two columns' samples, from their deviations (the same sums, in the same order, as computing it whole). */
function pearson(a: NumericColumn, b: NumericColumn): number {
  const x = a.deviations;
  const y = b.deviations;
  let cov = 0;
  for (let i = 0; i < x.length; i++) cov += (x[i] as number) * (y[i] as number);
  return a.sumSquares === 0 || b.sumSquares === 0 ? 0 : cov / Math.sqrt(a.sumSquares * b.sumSquares);
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
  return fit(rowSource(rows), spec, overrides);
}

/**
 * `fitTransform` on a table held as typed columns (a columnar build's): the same state as fitting on
 * the same table as rows, without building a row.
 */
export function fitTransformColumns(
  table: ColumnTable,
  spec: TransformSpec,
  overrides: Partial<TransformOptions> = {},
): TransformState {
  return fit(columnSource(table), spec, overrides);
}

function fit(source: FitSource, spec: TransformSpec, overrides: Partial<TransformOptions>): TransformState {
  const n = source.rows;
  if (n === 0) throw new DriftwoodError('DATA_MISSING', 'cannot fit the feature transform on zero rows');
  const options = { ...DEFAULT_TRANSFORM_OPTIONS, ...overrides };
  const dropped: DroppedFeature[] = [];

  const kept: NumericColumn[] = [];
  const scratch = {
    values: new Float64Array(n),
    sorted: new Float64Array(n),
    missingAt: new Uint8Array(n),
    radix: radixBuffers(n),
  };
  for (const name of spec.numeric) {
    const col = fitNumeric(source, name, options, scratch);
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
      const r = pearson(col, other);
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
    const counts = source.countCategories(name);
    // Most frequent first, ties by name, so the fitted state does not depend on row order.
    const ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const impute = ranked[0]?.[0] ?? UNSEEN;
    const missing = n - [...counts.values()].reduce((a, b) => a + b, 0);
    const topShare = ((ranked[0]?.[1] ?? 0) + missing) / n;
    if (topShare >= options.nearConstantShare) {
      dropped.push({
        name,
        kind: 'categorical',
        reason: `near-constant: '${impute}' in ${round4(topShare * 100)}% of training rows`,
      });
      continue;
    }
    const categories = ranked
      .filter(([, c]) => c / n >= options.minCategoryShare)
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

/**
 * `transformRows` on a table held as typed columns: the same row-major matrix, value for value, as
 * `transformRows` on the same table as rows (the same arithmetic per value), written a block of rows
 * at a time, column by column, with each category's position looked up once per distinct value.
 */
export function transformColumns(state: TransformState, table: ColumnTable): Float32Array {
  const width = state.outputs.length;
  const n = table.rows;
  const out = new Float32Array(n * width);
  const numeric = state.numeric.map((s) => ({ s, col: columnOf(table.numeric, s.name) }));
  const categorical = state.categorical.map((c) => ({
    c,
    col: columnOf(table.categorical, c.name),
    at: new Map<string | null, number>(),
  }));
  // A block of rows whose slice of the matrix stays in the cache while every column is written.
  const BLOCK = 2048;
  for (let start = 0; start < n; start += BLOCK) {
    const end = Math.min(n, start + BLOCK);
    let k = 0;
    for (const { s, col } of numeric) {
      for (let i = start; i < end; i++) {
        const x = col[i] as number;
        const missing = !Number.isFinite(x);
        out[i * width + k] = ((missing ? s.impute : clip(x)) - s.center) / s.scale;
        if (s.missingIndicator) out[i * width + k + 1] = missing ? 1 : 0;
      }
      k += s.missingIndicator ? 2 : 1;
    }
    for (const { c, col, at } of categorical) {
      for (let i = start; i < end; i++) {
        const v = col[i] ?? null;
        let idx = at.get(v);
        if (idx === undefined) {
          const found = c.categories.indexOf(toCategory(v) ?? c.impute);
          idx = found === -1 ? c.categories.length : found;
          at.set(v, idx);
        }
        // The matrix starts zeroed: only the one is written.
        out[i * width + k + idx] = 1;
      }
      k += c.categories.length + 1;
    }
  }
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
