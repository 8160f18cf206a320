import { DriftwoodError } from '../errors.js';
import type { TrainedModel } from './trained-model.js';

/**
 * A map from a model's score to a probability, fitted on the validation split and saved as
 * `calibration.json` next to the model, so that serving applies the very map training measured.
 * Class-weighted training (the default: churners are rare) ranks well but over-predicts the rare
 * class; calibration keeps the ranking and makes the numbers mean what they say.
 */
export type Calibration =
  | { method: 'none' }
  /** p = σ(a·logit(s) + b): Platt scaling on the score's logit, so a = 1, b = 0 is the identity. */
  | { method: 'platt'; a: number; b: number }
  /** A non-decreasing step map by pool-adjacent-violators, read by linear interpolation between knots. */
  | { method: 'isotonic'; x: number[]; y: number[] };

export const CALIBRATION_METHODS = ['platt', 'isotonic', 'none'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

export const CALIBRATION_FILE = 'calibration.json';

/** Scores of exactly 0 or 1 (a saturated sigmoid in float32) still have a finite logit. */
const EPS = 1e-7;

const clip = (p: number) => Math.min(Math.max(p, EPS), 1 - EPS);
const logit = (p: number) => {
  const q = clip(p);
  return Math.log(q / (1 - q));
};
/** The least Platt slope: calibration may flatten the scores but never reverse their order. */
export const MIN_PLATT_SLOPE = 1e-3;

const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/**
 * Fits the calibration on (validation) scores and labels. With one class only there is nothing to
 * learn a probability from: the result is `none`, and the caller says so.
 */
export function fitCalibration(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  method: CalibrationMethod,
): Calibration {
  if (scores.length !== labels.length)
    throw new DriftwoodError(
      'USAGE',
      `calibration: ${scores.length} scores but ${labels.length} labels; expected one label per score`,
    );
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i] === 1 ? 1 : 0;
  if (method === 'none' || positives === 0 || positives === labels.length) return { method: 'none' };
  return method === 'platt' ? fitPlatt(scores, labels, positives) : fitIsotonic(scores, labels);
}

/**
 * Platt (1999) with his smoothed targets, (n₊+1)/(n₊+2) and 1/(n₋+2), so a separable validation set
 * does not push the slope to infinity; Newton's method with a halving step on the log loss, from the
 * identity map. https://www.cs.colorado.edu/~mozer/Teaching/syllabi/6622/papers/Platt1999.pdf
 */
function fitPlatt(scores: ArrayLike<number>, labels: ArrayLike<number>, positives: number): Calibration {
  const n = labels.length;
  const hi = (positives + 1) / (positives + 2);
  const lo = 1 / (n - positives + 2);
  const z = Float64Array.from({ length: n }, (_, i) => logit(scores[i] as number));
  const t = Float64Array.from({ length: n }, (_, i) => (labels[i] === 1 ? hi : lo));
  const loss = (a: number, b: number) => {
    let l = 0;
    for (let i = 0; i < n; i++) {
      const u = a * (z[i] as number) + b;
      // −[t·log σ(u) + (1−t)·log(1−σ(u))] = softplus(u) − t·u, written to stay finite for large |u|.
      l += Math.max(u, 0) + Math.log1p(Math.exp(-Math.abs(u))) - (t[i] as number) * u;
    }
    return l;
  };
  let a = 1;
  let b = 0;
  let current = loss(a, b);
  for (let iter = 0; iter < 100; iter++) {
    let ga = 0;
    let gb = 0;
    let haa = 0;
    let hab = 0;
    let hbb = 0;
    for (let i = 0; i < n; i++) {
      const zi = z[i] as number;
      const p = sigmoid(a * zi + b);
      const r = p - (t[i] as number);
      const w = p * (1 - p);
      ga += r * zi;
      gb += r;
      haa += w * zi * zi;
      hab += w * zi;
      hbb += w;
    }
    if (Math.abs(ga) + Math.abs(gb) < 1e-9 * n) break;
    // A tiny ridge keeps the 2×2 system solvable when every score is the same.
    haa += 1e-12 * n;
    hbb += 1e-12 * n;
    const det = haa * hbb - hab * hab;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    let step = 1;
    let next = loss(a - da, b - db);
    while (!(next <= current) && step > 1e-10) {
      step /= 2;
      next = loss(a - step * da, b - step * db);
    }
    if (!(next <= current)) break;
    a -= step * da;
    b -= step * db;
    const gain = current - next;
    current = next;
    if (gain < 1e-12 * n) break;
  }
  if (a >= MIN_PLATT_SLOPE) return { method: 'platt', a, b };
  // Validation scores that rank no better than chance (a few positives among few rows) can fit a
  // slope ≤ 0, which would reverse the model's ranking: its holdout ROC AUC read 0.24 where the
  // model's own scores ranked at 0.76. The slope is held at its floor and the intercept refitted, so
  // the probabilities sit near the validation base rate and keep the model's order.
  a = MIN_PLATT_SLOPE;
  for (let iter = 0; iter < 100; iter++) {
    let gb = 0;
    let hbb = 1e-12 * n;
    for (let i = 0; i < n; i++) {
      const p = sigmoid(a * (z[i] as number) + b);
      gb += p - (t[i] as number);
      hbb += p * (1 - p);
    }
    const db = gb / hbb;
    b -= db;
    if (Math.abs(db) < 1e-12) break;
  }
  return { method: 'platt', a, b };
}

/**
 * Pool-adjacent-violators on the scores sorted ascending (tied scores pooled first, so a score maps
 * to one value). Each block keeps its lowest and highest score as knots. The values are held half an
 * observation away from 0 and 1: a block without a positive among the validation rows is not proof
 * that such a score never churns, and a probability of exactly 0 makes one such row's log loss infinite.
 */
function fitIsotonic(scores: ArrayLike<number>, labels: ArrayLike<number>): Calibration {
  const n = labels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (i, j) => (scores[i] as number) - (scores[j] as number),
  );
  // Blocks as parallel stacks: sum of labels, weight (rows), lowest and highest score.
  const sum: number[] = [];
  const weight: number[] = [];
  const xLo: number[] = [];
  const xHi: number[] = [];
  let k = 0;
  while (k < n) {
    const s = scores[order[k] as number] as number;
    let ySum = 0;
    let w = 0;
    while (k < n && scores[order[k] as number] === s) {
      ySum += labels[order[k] as number] === 1 ? 1 : 0;
      w++;
      k++;
    }
    sum.push(ySum);
    weight.push(w);
    xLo.push(s);
    xHi.push(s);
    // Merge backwards while the previous block's mean is above this one's.
    while (sum.length > 1) {
      const last = sum.length - 1;
      if (
        (sum[last - 1] as number) * (weight[last] as number) <=
        (sum[last] as number) * (weight[last - 1] as number)
      )
        break;
      sum[last - 1] = (sum[last - 1] as number) + (sum.pop() as number);
      weight[last - 1] = (weight[last - 1] as number) + (weight.pop() as number);
      xHi[last - 1] = xHi.pop() as number;
      xLo.pop();
    }
  }
  const floor = 0.5 / n;
  const x: number[] = [];
  const y: number[] = [];
  for (let b = 0; b < sum.length; b++) {
    const v = Math.min(Math.max((sum[b] as number) / (weight[b] as number), floor), 1 - floor);
    x.push(xLo[b] as number);
    y.push(v);
    if ((xHi[b] as number) > (xLo[b] as number)) {
      x.push(xHi[b] as number);
      y.push(v);
    }
  }
  return { method: 'isotonic', x, y };
}

/** The calibrated probability of one score: cheap enough to run on every request. */
export function applyCalibration(c: Calibration, p: number): number {
  switch (c.method) {
    case 'none':
      return p;
    case 'platt':
      return sigmoid(c.a * logit(p) + c.b);
    case 'isotonic': {
      const { x, y } = c;
      const last = x.length - 1;
      if (p <= (x[0] as number)) return y[0] as number;
      if (p >= (x[last] as number)) return y[last] as number;
      // The last knot ≤ p, by binary search.
      let lo = 0;
      let hi = last;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if ((x[mid] as number) <= p) lo = mid;
        else hi = mid;
      }
      const x0 = x[lo] as number;
      const x1 = x[hi] as number;
      const y0 = y[lo] as number;
      return x1 === x0 ? y0 : y0 + ((p - x0) / (x1 - x0)) * ((y[hi] as number) - y0);
    }
  }
}

/** Every score of a batch, calibrated. */
export function applyCalibrationAll(c: Calibration, scores: ArrayLike<number>): Float64Array {
  const out = new Float64Array(scores.length);
  for (let i = 0; i < scores.length; i++) out[i] = applyCalibration(c, scores[i] as number);
  return out;
}

/**
 * The model as it will be served: its scores (matrix and one-row path alike) go through the
 * calibration. Its files are the model's own; the calibration is saved beside them.
 */
export function calibratedModel(model: TrainedModel, c: Calibration): TrainedModel {
  if (c.method === 'none') return model;
  return {
    ...model,
    scores: (x) => applyCalibrationAll(c, model.scores(x)),
    scoreOne: (x) => applyCalibration(c, model.scoreOne(x)),
  };
}

/** Reads `calibration.json` as saved by training; the error names what is wrong with it. */
export function parseCalibration(json: unknown): Calibration {
  const bad = (msg: string): never => {
    throw new DriftwoodError('MODEL_INVALID', `${CALIBRATION_FILE}: ${msg}`);
  };
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    return bad(`expected an object with a method, got ${JSON.stringify(json)}`);
  const c = json as Record<string, unknown>;
  const finite = (key: string): number => {
    const v = c[key];
    return typeof v === 'number' && Number.isFinite(v)
      ? v
      : bad(`${key}: expected a finite number, got ${JSON.stringify(v)}`);
  };
  switch (c.method) {
    case 'none':
      return { method: 'none' };
    case 'platt': {
      const a = finite('a');
      if (!(a > 0)) return bad(`a: ${a} is not a slope above 0, and would reverse the model's ranking`);
      return { method: 'platt', a, b: finite('b') };
    }
    case 'isotonic': {
      const x = c.x;
      const y = c.y;
      if (!Array.isArray(x) || !Array.isArray(y) || x.length === 0 || x.length !== y.length)
        return bad('isotonic: expected x and y as arrays of the same length, at least one knot');
      x.forEach((v, i) => {
        if (typeof v !== 'number' || !Number.isFinite(v)) bad(`x[${i}]: expected a finite number, got ${v}`);
        if (i > 0 && v < (x[i - 1] as number))
          bad(`x[${i}]: knots must not decrease (${x[i - 1]} then ${v})`);
      });
      y.forEach((v, i) => {
        if (typeof v !== 'number' || !(v >= 0 && v <= 1)) bad(`y[${i}]: expected a probability, got ${v}`);
        if (i > 0 && v < (y[i - 1] as number))
          bad(`y[${i}]: values must not decrease (${y[i - 1]} then ${v})`);
      });
      return { method: 'isotonic', x: x as number[], y: y as number[] };
    }
    default:
      return bad(`method: expected ${CALIBRATION_METHODS.join(', ')}, got ${JSON.stringify(c.method)}`);
  }
}
