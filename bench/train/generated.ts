/**
 * Generated datasets for the training benchmark: four shapes a churn-like table takes, each seeded so
 * every run (and every learner) sees the same rows. Each names the model family it favours, so the
 * table shows where Driftwood's models stand against the references on data that suits them and on
 * data that does not.
 *
 * Values are raw: numeric columns with NaN where missing, categorical columns as level codes (−1
 * missing). The learners' inputs are made from them in prepare.ts.
 */
import { Rng } from '@driftwood/tasks';

export interface RawDataset {
  name: string;
  /** One line: the shape and what it tests. */
  description: string;
  rows: number;
  numeric: string[];
  categorical: { name: string; levels: number }[];
  /** rows × numeric.length, row-major; NaN = missing. */
  num: Float64Array;
  /** rows × categorical.length, row-major; level code, −1 = missing. */
  cat: Int32Array;
  y: Float32Array;
}

export const GENERATED = ['linear', 'interactions', 'categorical', 'missing'] as const;
export type GeneratedName = (typeof GENERATED)[number];

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
/** a[i] of an index known to be in range. */
const at = <T>(a: ArrayLike<T>, i: number): T => a[i] as T;

/** Student's t with `dof` degrees of freedom (heavy tails for small dof). */
function studentT(rng: Rng, dof: number): number {
  let chi2 = 0;
  for (let k = 0; k < dof; k++) chi2 += rng.normal() ** 2;
  return rng.normal() / Math.sqrt(chi2 / dof);
}

function empty(
  name: string,
  description: string,
  rows: number,
  numeric: number,
  categorical: { name: string; levels: number }[] = [],
): RawDataset {
  return {
    name,
    description,
    rows,
    numeric: Array.from({ length: numeric }, (_, j) => `x${j}`),
    categorical,
    num: new Float64Array(rows * numeric),
    cat: new Int32Array(rows * categorical.length),
    y: new Float32Array(rows),
  };
}

/**
 * (a) Logistic truth on 20 correlated columns (AR(1) across columns, ρ = 0.7) of very different
 * scales and offsets: the logistic regression is the right model here, trees can only approach it.
 */
export function linearDataset(rows: number, seed: number): RawDataset {
  const w = 20;
  const d = empty(
    'linear',
    'logistic truth, 20 correlated numeric columns (AR(1) ρ=0.7), scales 0.1–100',
    rows,
    w,
  );
  const rng = new Rng(seed);
  const beta = Array.from({ length: w }, (_, j) => at([0.8, -0.5, 0, 0.3], j % 4) / (1 + j / 10));
  const scale = Array.from({ length: w }, (_, j) => 10 ** ((j % 4) - 1));
  for (let i = 0; i < rows; i++) {
    let prev = rng.normal();
    let z = -1.4;
    for (let j = 0; j < w; j++) {
      const v = j === 0 ? prev : 0.7 * prev + Math.sqrt(1 - 0.49) * rng.normal();
      prev = v;
      z += at(beta, j) * v;
      d.num[i * w + j] = v * at(scale, j) + 5 * (j % 3);
    }
    d.y[i] = rng.next() < sigmoid(z) ? 1 : 0;
  }
  return d;
}

/**
 * (b) XOR and threshold effects on 10 numeric columns (4 pure noise): sign(x0)·sign(x1), steps on
 * x2, and x3 × x4 jointly past thresholds, with a small linear term on x5. A linear model sees almost
 * none of the XOR.
 */
export function interactionsDataset(rows: number, seed: number): RawDataset {
  const w = 10;
  const d = empty(
    'interactions',
    'XOR of two signs, threshold steps and a joint threshold, small linear term; 10 numeric columns, 4 noise',
    rows,
    w,
  );
  const rng = new Rng(seed);
  for (let i = 0; i < rows; i++) {
    const x = Array.from({ length: w }, () => rng.normal());
    const xor = Math.sign(at(x, 0)) * Math.sign(at(x, 1));
    const z =
      -1.2 +
      1.6 * xor +
      1.4 * (at(x, 2) > 0.8 ? 1 : 0) -
      0.9 * (at(x, 2) < -1 ? 1 : 0) +
      1.3 * (at(x, 3) < -0.3 && at(x, 4) > 0.2 ? 1 : 0) +
      0.4 * at(x, 5);
    x.forEach((v, j) => {
      d.num[i * w + j] = v;
    });
    d.y[i] = rng.next() < sigmoid(z) ? 1 : 0;
  }
  return d;
}

/**
 * (c) A 200-level categorical column with a per-level effect (levels Zipf-like: the rarest has
 * ~0.2 % of rows), a 20-level one, 1 % of each missing, and 6 numeric columns with linear effects.
 */
export function categoricalDataset(rows: number, seed: number): RawDataset {
  const w = 6;
  const categorical = [
    { name: 'c200', levels: 200 },
    { name: 'c20', levels: 20 },
  ];
  const d = empty(
    'categorical',
    'a 200-level column (Zipf-like frequencies, effect per level), a 20-level one, 6 numeric columns',
    rows,
    w,
    categorical,
  );
  const rng = new Rng(seed);
  const effects = categorical.map((c, k) =>
    Array.from({ length: c.levels }, () => rng.normal(0, k === 0 ? 0.9 : 0.5)),
  );
  const levelWeights = categorical.map((c) => Array.from({ length: c.levels }, (_, l) => 1 / (l + 10)));
  const levelIds = categorical.map((c) => Array.from({ length: c.levels }, (_, l) => l));
  const beta = [0.5, -0.4, 0.3, 0, 0.2, 0];
  for (let i = 0; i < rows; i++) {
    let z = -1.3;
    categorical.forEach((_, k) => {
      const level = rng.pick(at(levelIds, k), at(levelWeights, k));
      z += at(at(effects, k), level);
      d.cat[i * categorical.length + k] = rng.next() < 0.01 ? -1 : level;
    });
    for (let j = 0; j < w; j++) {
      const v = rng.normal();
      z += at(beta, j) * v;
      d.num[i * w + j] = v;
    }
    d.y[i] = rng.next() < sigmoid(z) ? 1 : 0;
  }
  return d;
}

/**
 * (d) Heavy tails, outliers and informative missingness on 12 numeric columns: values are Student's
 * t (2 degrees of freedom) with saturating effects, 1 % of values are recording errors ×100 (no
 * effect on the label), and x0–x7 are missing with a probability that rises with a hidden risk
 * factor (30–50 % missing per column), so that a value's absence itself predicts the label.
 */
export function missingDataset(rows: number, seed: number): RawDataset {
  const w = 12;
  const d = empty(
    'missing',
    'Student-t(2) columns with saturating effects, 1% outliers ×100, x0–x7 ~40% missing (informative)',
    rows,
    w,
  );
  const rng = new Rng(seed);
  for (let i = 0; i < rows; i++) {
    const hidden = rng.normal();
    const x = Array.from({ length: w }, () => studentT(rng, 2));
    const z =
      -1.3 +
      0.9 * hidden +
      1.2 * Math.tanh(at(x, 0)) -
      0.9 * Math.tanh(at(x, 1)) +
      0.6 * Math.sign(at(x, 2)) * Math.log1p(Math.abs(at(x, 2))) +
      0.8 * (at(x, 8) > 1 ? 1 : 0) -
      0.5 * Math.tanh(at(x, 9) / 2);
    const pMissing = sigmoid(-0.45 + 0.9 * hidden);
    for (let j = 0; j < w; j++) {
      let v = at(x, j);
      if (rng.next() < 0.01) v *= 100;
      d.num[i * w + j] = j < 8 && rng.next() < pMissing ? Number.NaN : v;
    }
    d.y[i] = rng.next() < sigmoid(z) ? 1 : 0;
  }
  return d;
}

export function generate(name: GeneratedName, rows: number, seed: number): RawDataset {
  switch (name) {
    case 'linear':
      return linearDataset(rows, seed);
    case 'interactions':
      return interactionsDataset(rows, seed);
    case 'categorical':
      return categoricalDataset(rows, seed);
    case 'missing':
      return missingDataset(rows, seed);
  }
}

/** A seeded random split: holdout and validation shares of the rows, the rest train. */
export function randomSplit(
  rows: number,
  seed: number,
  holdoutFraction: number,
  validationFraction: number,
): { train: number[]; validation: number[]; holdout: number[] } {
  const order = new Rng(seed).shuffle(Array.from({ length: rows }, (_, i) => i));
  const nHold = Math.round(rows * holdoutFraction);
  const nVal = Math.round(rows * validationFraction);
  const sorted = (a: number[]) => a.sort((p, q) => p - q);
  return {
    holdout: sorted(order.slice(0, nHold)),
    validation: sorted(order.slice(nHold, nHold + nVal)),
    train: sorted(order.slice(nHold + nVal)),
  };
}
