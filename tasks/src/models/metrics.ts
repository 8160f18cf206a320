/** Binary classification metrics computed from scores and labels (no dependencies, unit-tested). */
export interface BinaryMetrics {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  roc_auc: number;
  /** Average precision: the area under the precision–recall curve as a step function. */
  pr_auc: number;
  log_loss: number;
  brier: number;
  positive_rate: number;
  /** The decision threshold the label-based metrics use. */
  threshold: number;
}

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export function confusionAt(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold: number,
): Confusion {
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < labels.length; i++) {
    const pred = (scores[i] as number) >= threshold;
    const y = labels[i] === 1;
    if (pred && y) c.tp++;
    else if (pred) c.fp++;
    else if (y) c.fn++;
    else c.tn++;
  }
  return c;
}

export function binaryMetrics(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold = 0.5,
): BinaryMetrics {
  const n = labels.length;
  const { tp, fp, tn, fn } = confusionAt(scores, labels, threshold);
  let loss = 0;
  let brier = 0;
  for (let i = 0; i < n; i++) {
    const s = scores[i] as number;
    const y = labels[i] as number;
    const p = Math.min(Math.max(s, 1e-7), 1 - 1e-7);
    loss -= y === 1 ? Math.log(p) : Math.log(1 - p);
    brier += (s - y) ** 2;
  }
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  return {
    accuracy: n === 0 ? 0 : (tp + tn) / n,
    precision,
    recall,
    f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall),
    roc_auc: rocAuc(scores, labels),
    pr_auc: averagePrecision(scores, labels),
    log_loss: n === 0 ? 0 : loss / n,
    brier: n === 0 ? 0 : brier / n,
    positive_rate: n === 0 ? 0 : (tp + fn) / n,
    threshold,
  };
}

/** ROC AUC as the Mann–Whitney statistic, with ties counted half. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = Array.from({ length: labels.length }, (_, i) => i).sort(
    (a, b) => (scores[a] as number) - (scores[b] as number),
  );
  let rankSumPos = 0;
  let pos = 0;
  let i = 0;
  while (i < idx.length) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1] as number] === scores[idx[i] as number]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[idx[k] as number] === 1) {
        rankSumPos += avgRank;
        pos++;
      }
    }
    i = j + 1;
  }
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) return Number.NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

export interface CurvePoint {
  threshold: number;
  tp: number;
  fp: number;
}

/**
 * The cumulative counts at every distinct score, from the highest down: the one sweep that ROC,
 * PR and threshold choice all read. Tied scores form one point.
 */
export function sweep(scores: ArrayLike<number>, labels: ArrayLike<number>): CurvePoint[] {
  const idx = Array.from({ length: labels.length }, (_, i) => i).sort(
    (a, b) => (scores[b] as number) - (scores[a] as number),
  );
  const points: CurvePoint[] = [];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k] as number;
    if (labels[i] === 1) tp++;
    else fp++;
    const next = idx[k + 1];
    if (next === undefined || scores[next] !== scores[i])
      points.push({ threshold: scores[i] as number, tp, fp });
  }
  return points;
}

/** ROC curve as (false positive rate, true positive rate) points from (0,0) to (1,1). */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): [number, number][] {
  const pts = sweep(scores, labels);
  const last = pts[pts.length - 1];
  if (!last || last.tp === 0 || last.fp === 0) return [];
  return [[0, 0], ...pts.map((p): [number, number] => [p.fp / last.fp, p.tp / last.tp])];
}

/** Precision–recall curve as (recall, precision) points. */
export function prCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): [number, number][] {
  const pts = sweep(scores, labels);
  const last = pts[pts.length - 1];
  if (!last || last.tp === 0) return [];
  return pts.map((p): [number, number] => [p.tp / last.tp, p.tp / (p.tp + p.fp)]);
}

/** Average precision (sklearn's definition): Σ (R_k − R_{k−1}) · P_k over the sweep. */
export function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const curve = prCurve(scores, labels);
  if (curve.length === 0) return Number.NaN;
  let ap = 0;
  let prevRecall = 0;
  for (const [r, p] of curve) {
    ap += (r - prevRecall) * p;
    prevRecall = r;
  }
  return ap;
}

/**
 * The decision threshold with the best F1 on the given (validation) scores; 0.5 when there is no
 * positive to find. Choosing it on the validation split keeps the holdout honest.
 */
export function chooseThreshold(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const pts = sweep(scores, labels);
  const positives = pts[pts.length - 1]?.tp ?? 0;
  if (positives === 0) return 0.5;
  let best = { f1: -1, threshold: 0.5 };
  for (const p of pts) {
    const f1 = (2 * p.tp) / (p.tp + p.fp + positives);
    if (f1 > best.f1) best = { f1, threshold: p.threshold };
  }
  return best.threshold;
}

/**
 * What the decision threshold optimises, declared by the contract's `training.threshold`: the best F1
 * (the default), or the least expected cost of the errors, FP·cost₊ + FN·cost₋ — e.g. a missed
 * churner that costs five times a needless retention offer.
 */
export type ThresholdObjective =
  | { objective: 'f1' }
  | { objective: 'cost'; falsePositiveCost: number; falseNegativeCost: number };

export const DEFAULT_THRESHOLD_OBJECTIVE: ThresholdObjective = { objective: 'f1' };

/** The objective in one line, for a run's params: `f1`, or `cost(fp=1,fn=5)`. */
export function describeThresholdObjective(o: ThresholdObjective): string {
  return o.objective === 'f1' ? 'f1' : `cost(fp=${o.falsePositiveCost},fn=${o.falseNegativeCost})`;
}

/**
 * The decision threshold that is best by the objective on the given (validation) scores. Under a cost,
 * every cut the scores allow is a candidate, flagging no one included (a threshold just above the
 * highest score): when a false alarm costs more than the positives it would find, that is the answer.
 */
export function chooseThresholdFor(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  o: ThresholdObjective,
): number {
  if (o.objective === 'f1') return chooseThreshold(scores, labels);
  const pts = sweep(scores, labels);
  const last = pts[pts.length - 1];
  if (!last) return 0.5;
  const positives = last.tp;
  const top = pts[0]?.threshold as number;
  // Flag no one: every positive is missed.
  let best = { cost: positives * o.falseNegativeCost, threshold: nextAbove(top) };
  for (const p of pts) {
    const cost = p.fp * o.falsePositiveCost + (positives - p.tp) * o.falseNegativeCost;
    if (cost < best.cost) best = { cost, threshold: p.threshold };
  }
  return best.threshold;
}

/** The smallest double above x (x ≥ 0), so `score >= threshold` holds for no score seen. */
function nextAbove(x: number): number {
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x === 0 ? 0 : x);
  buf.setBigUint64(0, buf.getBigUint64(0) + 1n);
  return buf.getFloat64(0);
}
