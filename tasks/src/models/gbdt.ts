/**
 * Histogram gradient-boosted trees for binary classification, on typed arrays (no dependency):
 * log-loss boosting with second-order leaves, quantile bins computed on the training rows, leaf-wise
 * growth with the histogram subtraction trick (gbdt-tree.ts), a learnt direction for missing values,
 * seeded row and column subsampling, and early stopping on the validation loss that keeps the best
 * iteration's trees. Deterministic: one seed, one sequence of draws, every sum in a fixed order.
 *
 * Training and serving agree exactly: a saved split compares the raw value with a bin edge
 * (gbdt-model.ts), and a training row's bin is found by that same comparison (gbdt-bins.ts).
 */
import { DriftwoodError } from '../errors.js';
import { Rng } from '../random.js';
import { binRows } from './gbdt-bins.js';
import { type GbdtModel, type GbdtTree, sigmoid } from './gbdt-model.js';
import { type GbdtParams, validateGbdtParams } from './gbdt-params.js';
import { binnedLeafValue, createGrowState, growTree, useFeatures } from './gbdt-tree.js';
import { rocAuc } from './metrics.js';

export type { GbdtModel, GbdtTree } from './gbdt-model.js';
export { compileGbdt, compileGbdtMargin, parseGbdtModel, scoreGbdt, sigmoid } from './gbdt-model.js';
export type { GbdtParams } from './gbdt-params.js';
export { DEFAULT_GBDT_PARAMS, validateGbdtParams } from './gbdt-params.js';

export interface GbdtData {
  x: Float32Array;
  y: Float32Array;
  valX: Float32Array;
  valY: Float32Array;
  width: number;
}

export interface GbdtIteration {
  iteration: number;
  /** Weighted mean log loss on the training rows. */
  loss: number;
  /** The same weighted loss on the validation rows (class weights from the training rows). */
  valLoss: number;
  valRocAuc: number;
}

export interface GbdtFit {
  model: GbdtModel;
  /** Trees kept: the iteration with the lowest validation loss (all iterations when patience is 0). */
  bestIteration: number;
  iterationsRun: number;
}

/** log(1 + e^z) without overflow. */
const softplus = (z: number): number => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));

/** Smaller validation losses than this are not an improvement (scikit-learn's tol). */
const IMPROVEMENT = 1e-7;

/** One tree's leaf value for the row at x[offset…], by the raw comparison serving makes. */
function treeValue(t: GbdtTree, x: Float32Array, offset: number): number {
  let node = 0;
  for (;;) {
    const f = t.feature[node] as number;
    if (f < 0) return t.value[node] as number;
    const v = x[offset + f] as number;
    const thr = t.threshold[node] as number;
    node = (v <= thr || (!(v > thr) && t.missingLeft[node]) ? t.left[node] : t.right[node]) as number;
  }
}

function checkData(d: GbdtData): void {
  const { x, y, valX, valY, width } = d;
  if (!(Number.isInteger(width) && width >= 1))
    throw new DriftwoodError('USAGE', `gbdt: width must be a whole number ≥ 1, got ${width}`);
  if (x.length !== y.length * width)
    throw new DriftwoodError(
      'USAGE',
      `gbdt: ${x.length} training values are not ${y.length} rows × ${width} columns`,
    );
  if (valX.length !== valY.length * width)
    throw new DriftwoodError(
      'USAGE',
      `gbdt: ${valX.length} validation values are not ${valY.length} rows × ${width} columns`,
    );
  if (y.length === 0) throw new DriftwoodError('DATA_MISSING', 'gbdt: no training rows');
  for (const [name, labels] of [
    ['y', y],
    ['valY', valY],
  ] as const)
    for (let i = 0; i < labels.length; i++)
      if (labels[i] !== 0 && labels[i] !== 1)
        throw new DriftwoodError('USAGE', `gbdt: label ${name}[${i}] is ${labels[i]}, expected 0 or 1`);
  // NaN is a missing value; an infinity would pass every edge in training and none when served.
  for (let i = 0; i < x.length; i++)
    if (x[i] === Number.POSITIVE_INFINITY || x[i] === Number.NEGATIVE_INFINITY)
      throw new DriftwoodError(
        'USAGE',
        `gbdt: training row ${Math.floor(i / width)} column ${i % width} is ${x[i]}; use NaN for a missing value`,
      );
}

/** How a fit runs, not what it fits: the model is the same either way. */
export interface GbdtFitOptions {
  /** Bundle mutually exclusive sparse columns into one histogram pass (gbdt-bundles.ts); default on. */
  bundle?: boolean;
}

/**
 * fitGbdt, plus the training rows' final log-odds as training computed them (from the binned
 * partition), for checking that serving reproduces them.
 */
export function fitGbdtDetailed(
  data: GbdtData,
  p: GbdtParams,
  onIteration?: (m: GbdtIteration) => void,
  signs?: ArrayLike<number>,
  options: GbdtFitOptions = {},
): GbdtFit & { trainMargin: Float64Array } {
  validateGbdtParams(p);
  checkData(data);
  const { x, y, valX, valY, width } = data;
  const n = y.length;
  const nVal = valY.length;

  // "Balanced" weights from the training labels, applied to validation rows too, so that the
  // validation loss is the training objective measured on other rows.
  let positives = 0;
  for (let i = 0; i < n; i++) positives += y[i] as number;
  if (positives === 0 || positives === n)
    throw new DriftwoodError(
      'DATA_MISSING',
      `gbdt: the training rows hold one class only (${positives} of ${n} positive)`,
    );
  const w1 = p.classWeighting ? n / (2 * positives) : 1;
  const w0 = p.classWeighting ? n / (2 * (n - positives)) : 1;
  const baseScore = Math.log((w1 * positives) / (w0 * (n - positives)));

  const binned = binRows(x, n, width, p.maxBins);
  if (signs && signs.length !== width)
    throw new DriftwoodError('USAGE', `gbdt: ${signs.length} monotone signs for ${width} columns`);
  const s = createGrowState(binned, n, signs, options.bundle ?? true);
  const margin = new Float64Array(n).fill(baseScore);
  const valMargin = new Float64Array(nVal).fill(baseScore);
  let bestMargin: Float64Array | null = null;
  const inBag = new Uint8Array(n);
  const columns = new Int32Array(width);
  const rng = new Rng(p.seed);
  const pickColumns = Math.max(1, Math.round(p.colsample * width));
  const pickRows = Math.max(1, Math.round(p.subsample * n));
  let valWeight = 0;
  for (let i = 0; i < nVal; i++) valWeight += (valY[i] as number) === 1 ? w1 : w0;

  const trees: GbdtTree[] = [];
  let best = 0;
  let bestLoss = Number.POSITIVE_INFINITY;
  let iterationsRun = 0;
  const stopping = p.patience > 0 && nVal > 0;
  // Gradients for the next tree and the loss of the margins so far, in one pass: softplus(z) from
  // the probability already computed (−log σ(−z)), on the side where it loses no precision.
  let weight = 0;
  for (let i = 0; i < n; i++) weight += (y[i] as number) === 1 ? w1 : w0;
  const gradients = (): number => {
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const z = margin[i] as number;
      const yi = y[i] as number;
      const wi = yi === 1 ? w1 : w0;
      const prob = sigmoid(z);
      s.grad[i] = wi * (prob - yi);
      s.hess[i] = wi * prob * (1 - prob);
      loss += wi * ((z > 0 ? z - Math.log(prob) : -Math.log(1 - prob)) - yi * z);
    }
    return loss / weight;
  };
  gradients();
  for (let t = 0; t < p.trees; t++) {
    // Columns: a partial Fisher–Yates draw, then ascending for sequential histogram reads.
    for (let f = 0; f < width; f++) columns[f] = f;
    if (pickColumns < width)
      for (let k = 0; k < pickColumns; k++) {
        const j = rng.int(k, width);
        const c = columns[k] as number;
        columns[k] = columns[j] as number;
        columns[j] = c;
      }
    s.features.set(columns.subarray(0, pickColumns).sort());
    useFeatures(s, pickColumns);
    // Rows: exactly pickRows of n, ascending (Knuth's selection sampling, TAOCP 3.4.2 algorithm S).
    if (pickRows < n) {
      inBag.fill(0);
      let m = 0;
      for (let i = 0; i < n && m < pickRows; i++)
        if (rng.next() * (n - i) < pickRows - m) {
          s.rows[m++] = i;
          inBag[i] = 1;
        }
    } else for (let i = 0; i < n; i++) s.rows[i] = i;
    s.rowCount = pickRows;

    const grown = growTree(s, p, margin);
    if (pickRows < n)
      for (let i = 0; i < n; i++)
        if (inBag[i] === 0) margin[i] = (margin[i] as number) + binnedLeafValue(s, grown, i);
    trees.push(grown.tree);
    iterationsRun = t + 1;

    const loss = gradients();
    let valLoss = 0;
    for (let i = 0; i < nVal; i++) {
      const z = (valMargin[i] as number) + treeValue(grown.tree, valX, i * width);
      valMargin[i] = z;
      const yi = valY[i] as number;
      valLoss += (yi === 1 ? w1 : w0) * (softplus(z) - yi * z);
    }
    valLoss = nVal > 0 ? valLoss / valWeight : Number.NaN;
    onIteration?.({
      iteration: iterationsRun,
      loss,
      valLoss,
      valRocAuc: nVal > 0 ? rocAuc(valMargin, valY) : Number.NaN,
    });
    if (!stopping) continue;
    if (valLoss < bestLoss - IMPROVEMENT) {
      bestLoss = valLoss;
      best = iterationsRun;
      bestMargin = bestMargin ?? new Float64Array(n);
      bestMargin.set(margin);
    } else if (iterationsRun - best >= p.patience) break;
  }
  // An iteration that never improved on the base score still keeps one tree: a model has trees.
  const kept = stopping ? Math.max(best, 1) : iterationsRun;
  const trainMargin = stopping && bestMargin && kept === best ? bestMargin : margin;
  const model: GbdtModel = {
    format: 'driftwood-gbdt',
    version: 1,
    width,
    baseScore,
    trees: trees.slice(0, kept),
  };
  return { model, bestIteration: kept, iterationsRun, trainMargin };
}

/**
 * Fits the boosted trees on rows x (row-major, `width` columns; NaN = missing) and labels y in
 * {0, 1}, stopping early on the validation rows' loss when `p.patience` > 0. `signs` (one per column:
 * +1 non-decreasing, −1 non-increasing, 0 free) holds the score monotone in those columns.
 */
export function fitGbdt(
  data: GbdtData,
  p: GbdtParams,
  onIteration?: (m: GbdtIteration) => void,
  signs?: ArrayLike<number>,
): GbdtFit {
  const { model, bestIteration, iterationsRun } = fitGbdtDetailed(data, p, onIteration, signs);
  return { model, bestIteration, iterationsRun };
}
