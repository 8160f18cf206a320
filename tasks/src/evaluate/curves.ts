import { prCurve, rocCurve } from '../models/metrics.js';

export const CURVES_FORMAT = 'driftwood.curves/v1';

/**
 * Where on the candidate's run the ROC and PR points of the candidate and the champion, scored on
 * the same holdout, are stored (next to the evidence against that alias). The API reads this path.
 */
export const curvesPath = (alias: string) => `evidence/${alias}-curves.json`;

/** The most points kept per curve: enough for a smooth line, small enough for a page to fetch. */
export const MAX_CURVE_POINTS = 200;

export interface CurveSeries {
  /** 'candidate' is the version judged, 'champion' the version that held the alias then. */
  role: 'candidate' | 'champion';
  version: string;
  rocAuc: number;
  prAuc: number;
  /** (false positive rate, true positive rate), from (0, 0) to (1, 1). */
  roc: [number, number][];
  /** (recall, precision), recall rising. */
  pr: [number, number][];
}

export interface CurvesFile {
  format: typeof CURVES_FORMAT;
  alias: string;
  holdout: { runId: string; rows: number; positives: number };
  series: CurveSeries[];
}

/**
 * At most `max` points of a curve, evenly spaced along it, always keeping the first and the last:
 * a holdout of thousands of distinct scores would otherwise make a file of thousands of points.
 */
export function thinCurve(points: readonly [number, number][], max = MAX_CURVE_POINTS): [number, number][] {
  if (max < 2) throw new RangeError(`a curve needs at least 2 points, got max ${max}`);
  if (points.length <= max) return points.map(([x, y]) => [round6(x), round6(y)]);
  const out: [number, number][] = [];
  for (let k = 0; k < max; k++) {
    const [x, y] = points[Math.round((k * (points.length - 1)) / (max - 1))] as [number, number];
    out.push([round6(x), round6(y)]);
  }
  return out;
}

/** One model's curves on the holdout, thinned for storage. */
export function curveSeries(
  role: CurveSeries['role'],
  version: string,
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  aucs: { rocAuc: number; prAuc: number },
): CurveSeries {
  return {
    role,
    version,
    ...aucs,
    roc: thinCurve(rocCurve(scores, labels)),
    pr: thinCurve(prCurve(scores, labels)),
  };
}

const round6 = (v: number) => Math.round(v * 1e6) / 1e6;
