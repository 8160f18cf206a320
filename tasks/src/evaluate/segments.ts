import { rocAuc } from '../models/metrics.js';

export interface SegmentMetrics {
  /** `<column>=<value>`, e.g. `plan=basic`. */
  segment: string;
  n: number;
  positives: number;
  roc_auc: number;
  accuracy: number;
  recall: number;
}

/** Metrics per value of each segment column (plan, region): where a model is worse hides in averages. */
export function segmentMetrics(
  segments: readonly Record<string, unknown>[],
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold: number,
  columns: readonly string[],
): SegmentMetrics[] {
  const out: SegmentMetrics[] = [];
  for (const column of columns) {
    const groups = new Map<string, number[]>();
    segments.forEach((row, i) => {
      const key = `${column}=${String(row[column] ?? '')}`;
      const g = groups.get(key);
      if (g) g.push(i);
      else groups.set(key, [i]);
    });
    for (const [segment, idx] of [...groups].sort((a, b) => a[0].localeCompare(b[0]))) {
      const s = idx.map((i) => scores[i] as number);
      const y = idx.map((i) => labels[i] as number);
      let correct = 0;
      let tp = 0;
      let positives = 0;
      for (let k = 0; k < s.length; k++) {
        const pred = (s[k] as number) >= threshold ? 1 : 0;
        if (pred === y[k]) correct++;
        if (y[k] === 1) {
          positives++;
          if (pred === 1) tp++;
        }
      }
      out.push({
        segment,
        n: idx.length,
        positives,
        roc_auc: rocAuc(s, y),
        accuracy: correct / idx.length,
        recall: positives === 0 ? Number.NaN : tp / positives,
      });
    }
  }
  return out;
}
