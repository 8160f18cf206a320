import { rocAuc } from '../models/metrics.js';
import { Rng } from '../random.js';

export interface PairedDifference {
  /** candidate − baseline on the full sample. */
  diff: number;
  low: number;
  high: number;
  level: number;
  samples: number;
}

/**
 * A paired bootstrap confidence interval for the difference in ROC AUC between two models scored on
 * the same rows: each resample draws rows (with replacement) once and scores both models on them,
 * so the interval reflects the models' difference, not the holdout's luck. Seeded: repeatable.
 */
export function pairedBootstrapAuc(
  candidate: ArrayLike<number>,
  baseline: ArrayLike<number>,
  labels: ArrayLike<number>,
  opts: { samples: number; seed: number; level: number },
): PairedDifference {
  const n = labels.length;
  const diff = rocAuc(candidate, labels) - rocAuc(baseline, labels);
  const rng = new Rng(opts.seed);
  const diffs: number[] = [];
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  const y = new Float64Array(n);
  for (let s = 0; s < opts.samples; s++) {
    for (let i = 0; i < n; i++) {
      const j = rng.int(0, n);
      a[i] = candidate[j] as number;
      b[i] = baseline[j] as number;
      y[i] = labels[j] as number;
    }
    const d = rocAuc(a, y) - rocAuc(b, y);
    // A resample with one class only has no AUC: leave it out rather than bias the interval.
    if (Number.isFinite(d)) diffs.push(d);
  }
  diffs.sort((p, q) => p - q);
  const tail = (1 - opts.level) / 2;
  const at = (q: number) =>
    diffs[Math.min(diffs.length - 1, Math.max(0, Math.floor(q * diffs.length)))] ?? Number.NaN;
  return { diff, low: at(tail), high: at(1 - tail), level: opts.level, samples: diffs.length };
}
