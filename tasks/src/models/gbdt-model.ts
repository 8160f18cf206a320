/**
 * The saved form of the gradient-boosted trees, its validation, and scoring. Plain JSON: every number
 * is finite, so JSON.stringify → JSON.parse gives back the very same doubles.
 *
 * A split sends a row left when `x[feature] <= threshold`, right when it is greater, and a missing
 * value (NaN) to the side `missingLeft` says. The thresholds are the training bin edges themselves,
 * so this raw comparison puts every training row in the leaf the binned training put it in.
 */
import { DriftwoodError } from '../errors.js';

/** One tree as parallel arrays, node 0 the root; a child always comes after its parent. */
export interface GbdtTree {
  /** Per node: the column compared, or −1 for a leaf. */
  feature: number[];
  /** Per node: the split's threshold (0 for a leaf). */
  threshold: number[];
  /** Per node: where a missing value goes (false for a leaf). */
  missingLeft: boolean[];
  /** Per node: the child indices (−1 for a leaf). */
  left: number[];
  right: number[];
  /** Per node: the leaf's contribution to the log-odds, shrinkage included (0 for a split). */
  value: number[];
}

export interface GbdtModel {
  format: 'driftwood-gbdt';
  version: 1;
  /** Columns of the input rows. */
  width: number;
  /** Log-odds every prediction starts from. */
  baseScore: number;
  trees: GbdtTree[];
}

/** Rejects what is not a model this code can score, naming what is wrong. */
export function parseGbdtModel(json: unknown): GbdtModel {
  // JSON.stringify would print NaN and Infinity as null; the message should name them.
  const show = (v: unknown): string => (typeof v === 'number' ? String(v) : JSON.stringify(v));
  const fail = (what: string): never => {
    throw new DriftwoodError('MODEL_INVALID', `gbdt model: ${what}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return fail('expected an object');
  const m = json as Record<string, unknown>;
  if (m.format !== 'driftwood-gbdt') fail(`format: expected 'driftwood-gbdt', got ${show(m.format)}`);
  if (m.version !== 1) fail(`version: expected 1, got ${show(m.version)}`);
  const width = m.width;
  if (!(typeof width === 'number' && Number.isInteger(width) && width >= 1))
    fail(`width: expected a whole number ≥ 1, got ${show(width)}`);
  if (!(typeof m.baseScore === 'number' && Number.isFinite(m.baseScore)))
    fail(`baseScore: expected a finite number, got ${show(m.baseScore)}`);
  if (!Array.isArray(m.trees)) return fail('trees: expected an array');
  const trees = m.trees as unknown[];
  trees.forEach((raw, t) => {
    const where = `trees[${t}]`;
    if (typeof raw !== 'object' || raw === null) fail(`${where}: expected an object`);
    const tree = raw as Record<string, unknown>;
    const keys = ['feature', 'threshold', 'missingLeft', 'left', 'right', 'value'] as const;
    const size = Array.isArray(tree.feature) ? tree.feature.length : 0;
    if (size === 0) fail(`${where}.feature: expected a non-empty array`);
    for (const k of keys)
      if (!Array.isArray(tree[k]) || (tree[k] as unknown[]).length !== size)
        fail(`${where}.${k}: expected an array of ${size} entries (one per node)`);
    const [feature, threshold, missingLeft, left, right, value] = keys.map((k) => tree[k] as unknown[]);
    const parents = new Int32Array(size).fill(-1);
    for (let i = 0; i < size; i++) {
      const node = `${where} node ${i}`;
      const f = feature?.[i];
      if (!(typeof f === 'number' && Number.isInteger(f) && f >= -1 && f < (width as number)))
        fail(`${node}: feature index ${show(f)} is not −1 (leaf) or a column 0..${(width as number) - 1}`);
      const v = value?.[i];
      if (!(typeof v === 'number' && Number.isFinite(v)))
        fail(`${node}: value ${show(v)} is not a finite number`);
      if (typeof missingLeft?.[i] !== 'boolean') fail(`${node}: missingLeft is not true or false`);
      if (f === -1) {
        if (left?.[i] !== -1 || right?.[i] !== -1) fail(`${node}: a leaf's left and right must be −1`);
        continue;
      }
      const thr = threshold?.[i];
      if (!(typeof thr === 'number' && Number.isFinite(thr)))
        fail(`${node}: threshold ${show(thr)} is not a finite number`);
      for (const [side, c] of [
        ['left', left?.[i]],
        ['right', right?.[i]],
      ] as const) {
        // Children after their parent, each with one parent: the nodes form a tree, no cycle.
        if (!(typeof c === 'number' && Number.isInteger(c) && c > i && c < size))
          fail(`${node}: ${side} child ${show(c)} is not a node after it (${i + 1}..${size - 1})`);
        if (parents[c as number] !== -1)
          fail(`${node}: ${side} child ${c} already has parent ${parents[c as number]}`);
        parents[c as number] = i;
      }
    }
    for (let i = 1; i < size; i++) if (parents[i] === -1) fail(`${where} node ${i}: no parent points to it`);
  });
  return m as unknown as GbdtModel;
}

/** The logistic function, the one training and scoring share (so their probabilities agree exactly). */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/**
 * One row (its first `width` values) → log-odds. All trees flattened into typed arrays; a leaf is
 * coded as ~index into the leaf values, so the walk is a loop over numbers only.
 */
export function compileGbdtMargin(model: GbdtModel): (x: ArrayLike<number>, offset?: number) => number {
  let nodes = 0;
  for (const t of model.trees) nodes += t.feature.length;
  const feature = new Int32Array(nodes);
  const threshold = new Float64Array(nodes);
  const left = new Int32Array(nodes);
  const right = new Int32Array(nodes);
  const missingLeft = new Uint8Array(nodes);
  const leafValue = new Float64Array(nodes);
  const roots = new Int32Array(model.trees.length);
  let at = 0;
  model.trees.forEach((t, k) => {
    const base = at;
    const ref = (i: number): number => (t.feature[i] === -1 ? ~(base + i) : base + i);
    roots[k] = ref(0);
    for (let i = 0; i < t.feature.length; i++, at++) {
      feature[at] = t.feature[i] as number;
      threshold[at] = t.threshold[i] as number;
      missingLeft[at] = t.missingLeft[i] ? 1 : 0;
      leafValue[at] = t.value[i] as number;
      if (t.feature[i] !== -1) {
        left[at] = ref(t.left[i] as number);
        right[at] = ref(t.right[i] as number);
      }
    }
  });
  const baseScore = model.baseScore;
  const count = roots.length;
  return (x, offset = 0) => {
    // Summed in tree order from baseScore, as training accumulates its margins.
    let z = baseScore;
    for (let k = 0; k < count; k++) {
      let node = roots[k] as number;
      while (node >= 0) {
        const v = x[offset + (feature[node] as number)] as number;
        const thr = threshold[node] as number;
        node = (
          v <= thr ? left[node] : v > thr ? right[node] : missingLeft[node] ? left[node] : right[node]
        ) as number;
      }
      z += leafValue[~node] as number;
    }
    return z;
  };
}

/** One row → probability of the positive class; allocates nothing per call. */
export function compileGbdt(model: GbdtModel): (x: Float32Array) => number {
  const margin = compileGbdtMargin(model);
  return (x) => sigmoid(margin(x, 0));
}

/** Probabilities for rows x (row-major, `width` columns). */
export function scoreGbdt(model: GbdtModel, x: Float32Array, width: number): Float32Array {
  if (width !== model.width)
    throw new DriftwoodError('USAGE', `gbdt: the model takes ${model.width} columns, the rows have ${width}`);
  if (x.length % width !== 0)
    throw new DriftwoodError('USAGE', `gbdt: ${x.length} values are not whole rows of ${width} columns`);
  const n = x.length / width;
  const margin = compileGbdtMargin(model);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sigmoid(margin(x, i * width));
  return out;
}
