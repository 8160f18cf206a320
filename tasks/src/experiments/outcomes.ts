import { Rng } from '../random.js';
import type { PrimaryMetric } from './declaration.js';

/** One customer of the experiment, at their first prediction in it, with the outcome that followed. */
export interface Observation {
  variant: string;
  probability: number;
  /** The label the variant's version answered (at its own decision threshold). */
  predicted: 0 | 1;
  outcome: 0 | 1;
}

/** What an error costs: the contract's threshold costs, or 1 each (then the cost is the error rate). */
export interface ErrorCosts {
  falsePositive: number;
  falseNegative: number;
}

export interface Estimate {
  value: number;
  low: number;
  high: number;
}

/** Per-variant outcome metrics, each with a 95% confidence interval (fixed-sample, for reading). */
export interface VariantOutcome {
  variant: string;
  customers: number;
  positives: number;
  roc_auc: Estimate;
  calibration_error: Estimate;
  brier: Estimate;
  log_loss: Estimate;
  /** The business metric: the cost of the errors per customer. */
  cost: Estimate;
}

const Z95 = 1.959963984540054;
const EPS = 1e-7;

/** The customer's loss under a metric (lower is better): what the sequential test compares. */
export function unitLoss(metric: PrimaryMetric, o: Observation, costs: ErrorCosts): number {
  if (metric === 'brier') return (o.probability - o.outcome) ** 2;
  if (metric === 'log_loss') {
    const p = Math.min(Math.max(o.probability, EPS), 1 - EPS);
    return o.outcome === 1 ? -Math.log(p) : -Math.log(1 - p);
  }
  if (o.predicted === 1 && o.outcome === 0) return costs.falsePositive;
  if (o.predicted === 0 && o.outcome === 1) return costs.falseNegative;
  return 0;
}

function meanEstimate(values: number[]): Estimate {
  const n = values.length;
  if (n === 0) return { value: Number.NaN, low: Number.NaN, high: Number.NaN };
  const mean = values.reduce((s, x) => s + x, 0) / n;
  const variance = n > 1 ? values.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : 0;
  const half = Z95 * Math.sqrt(variance / n);
  return { value: mean, low: mean - half, high: mean + half };
}

/**
 * ROC AUC as P(score of a positive > score of a negative), ties counted half: the two classes'
 * scores sorted apart (typed-array sorts) and walked together — the same value as
 * models/metrics.ts `rocAuc`, several times faster, which an analysis at every look wants.
 */
export function fastAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  let pos = 0;
  for (let i = 0; i < labels.length; i++) pos += labels[i] as number;
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) return Number.NaN;
  const p = new Float64Array(pos);
  const q = new Float64Array(neg);
  for (let i = 0, a = 0, b = 0; i < labels.length; i++)
    if (labels[i] === 1) p[a++] = scores[i] as number;
    else q[b++] = scores[i] as number;
  p.sort();
  q.sort();
  // For each positive: negatives strictly below it, plus half of those equal to it.
  let below = 0;
  let upTo = 0;
  let wins = 0;
  for (let i = 0; i < pos; i++) {
    const s = p[i] as number;
    while (below < neg && (q[below] as number) < s) below++;
    if (upTo < below) upTo = below;
    while (upTo < neg && (q[upTo] as number) === s) upTo++;
    wins += below + (upTo - below) / 2;
  }
  return wins / (pos * neg);
}

/** ROC AUC with the Hanley–McNeil (1982) standard error: closed form, so cheap at every look. */
function aucEstimate(scores: number[], labels: number[]): Estimate {
  const a = fastAuc(scores, labels);
  const pos = labels.reduce((s, y) => s + y, 0);
  const neg = labels.length - pos;
  if (!Number.isFinite(a)) return { value: Number.NaN, low: Number.NaN, high: Number.NaN };
  const q1 = a / (2 - a);
  const q2 = (2 * a * a) / (1 + a);
  const se = Math.sqrt((a * (1 - a) + (pos - 1) * (q1 - a * a) + (neg - 1) * (q2 - a * a)) / (pos * neg));
  return { value: a, low: Math.max(0, a - Z95 * se), high: Math.min(1, a + Z95 * se) };
}

/** Expected calibration error over 10 equal-width probability bins: Σ share·|mean p − rate|. */
export function calibrationError(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  pick?: Int32Array,
): number {
  const n = pick ? pick.length : labels.length;
  const sumP = new Float64Array(10);
  const sumY = new Float64Array(10);
  const count = new Float64Array(10);
  for (let k = 0; k < n; k++) {
    const i = pick ? (pick[k] as number) : k;
    const p = scores[i] as number;
    const b = Math.min(9, Math.floor(p * 10));
    sumP[b] = (sumP[b] as number) + p;
    sumY[b] = (sumY[b] as number) + (labels[i] as number);
    count[b] = (count[b] as number) + 1;
  }
  let ece = 0;
  for (let b = 0; b < 10; b++) ece += Math.abs((sumP[b] as number) - (sumY[b] as number)) / n;
  return ece;
}

/** The calibration error with a percentile bootstrap interval (`resamples` 0: no interval). */
function calibrationEstimate(scores: number[], labels: number[], resamples: number, seed: number): Estimate {
  const value = calibrationError(scores, labels);
  if (resamples <= 0 || labels.length < 2) return { value, low: Number.NaN, high: Number.NaN };
  const rng = new Rng(seed);
  const pick = new Int32Array(labels.length);
  const draws: number[] = [];
  for (let s = 0; s < resamples; s++) {
    for (let i = 0; i < pick.length; i++) pick[i] = rng.int(0, pick.length);
    draws.push(calibrationError(scores, labels, pick));
  }
  draws.sort((x, y) => x - y);
  const at = (q: number) => draws[Math.min(draws.length - 1, Math.floor(q * draws.length))] as number;
  return { value, low: at(0.025), high: at(0.975) };
}

export function variantOutcome(
  variant: string,
  observations: Observation[],
  costs: ErrorCosts,
  opts: { resamples: number; seed: number },
): VariantOutcome {
  const scores = observations.map((o) => o.probability);
  const labels: number[] = observations.map((o) => o.outcome);
  return {
    variant,
    customers: observations.length,
    positives: labels.reduce((s, y) => s + y, 0),
    roc_auc: aucEstimate(scores, labels),
    calibration_error: calibrationEstimate(scores, labels, opts.resamples, opts.seed),
    brier: meanEstimate(observations.map((o) => unitLoss('brier', o, costs))),
    log_loss: meanEstimate(observations.map((o) => unitLoss('log_loss', o, costs))),
    cost: meanEstimate(observations.map((o) => unitLoss('cost', o, costs))),
  };
}
