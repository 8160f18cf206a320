/**
 * Pure helpers for the Models and Predict pages: which metrics a version table shows, how figures
 * and differences read, and a field's typical range. No DOM here, so they are unit-tested as is.
 */

export interface MetricColumn {
  key: string;
  label: string;
}

/** The figures that tell versions apart at a glance: a classifier's holdout, or a forecast's test period. */
export const KEY_METRICS: readonly MetricColumn[] = [
  { key: 'holdout_roc_auc', label: 'ROC AUC' },
  { key: 'holdout_pr_auc', label: 'PR AUC' },
  { key: 'holdout_log_loss', label: 'Log loss' },
  { key: 'holdout_brier', label: 'Brier' },
  { key: 'test_rmse', label: 'RMSE' },
  { key: 'test_mae', label: 'MAE' },
  { key: 'test_directional_accuracy', label: 'Direction' },
  { key: 'test_rmse_vs_persistence', label: 'RMSE / persistence' },
];

/** The key metrics at least one version logged, in KEY_METRICS' order. */
export function keyMetrics(versions: readonly { metrics: Record<string, number> }[]): MetricColumn[] {
  return KEY_METRICS.filter((m) => versions.some((v) => Number.isFinite(v.metrics[m.key])));
}

/** A figure as it reads: integers (counts, epochs) as integers, others to `digits` decimals. */
export function formatMetric(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(digits);
}

/** A signed difference: '+0.0123', '−0.0045' (a real minus sign), '0' when equal, '—' when unknown. */
export function formatDelta(d: number | null | undefined, digits = 4): string {
  if (d === null || d === undefined || !Number.isFinite(d)) return '—';
  if (d === 0) return '0';
  const body = formatMetric(Math.abs(d), digits);
  // A difference too small for the decimals shown still says which way it goes.
  return `${d > 0 ? '+' : '−'}${body === (0).toFixed(digits) ? `<${(10 ** -digits).toFixed(digits)}` : body}`;
}

export interface MetricDiff {
  key: string;
  label: string;
  a: number | undefined;
  b: number | undefined;
  /** b − a, when both logged the metric. */
  delta: number | undefined;
}

/**
 * Two versions' metrics side by side: the key metrics first, then every other metric either logged
 * (alphabetically), each with b − a.
 */
export function metricDiff(a: Record<string, number>, b: Record<string, number>): MetricDiff[] {
  const labels = new Map(KEY_METRICS.map((m) => [m.key, m.label]));
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  const rank = (k: string) => {
    const i = KEY_METRICS.findIndex((m) => m.key === k);
    return i === -1 ? KEY_METRICS.length : i;
  };
  keys.sort((x, y) => rank(x) - rank(y) || x.localeCompare(y));
  return keys.map((key) => {
    const va = a[key];
    const vb = b[key];
    return {
      key,
      label: labels.get(key) ?? key,
      a: va,
      b: vb,
      delta: va !== undefined && vb !== undefined ? vb - va : undefined,
    };
  });
}

/** The parameters whose values differ between two versions (one side may lack it), by name. */
export function paramDiff(
  a: Record<string, string>,
  b: Record<string, string>,
): { key: string; a: string | undefined; b: string | undefined }[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((k) => a[k] !== b[k])
    .sort()
    .map((key) => ({ key, a: a[key], b: b[key] }));
}

/**
 * The two versions compared by default: the served one against the challenger (the newest other
 * version when no challenger alias points elsewhere). Versions are newest first.
 */
export function defaultPair(
  versions: readonly string[],
  aliases: Record<string, string>,
  servedAlias: string,
): [string, string] | null {
  if (versions.length < 2) return null;
  const served = aliases[servedAlias];
  const a = served && versions.includes(served) ? served : (versions[1] as string);
  const challenger = aliases.challenger;
  const b =
    challenger && challenger !== a && versions.includes(challenger)
      ? challenger
      : (versions.find((v) => v !== a) as string);
  return [a, b];
}

/**
 * The versions whose evaluation curves are worth drawing, in the order to try: the challenger, the
 * newest version not served, then the served one (its file holds it against the champion it replaced).
 */
export function curveCandidates(
  versions: readonly string[],
  aliases: Record<string, string>,
  servedAlias: string,
): string[] {
  const served = aliases[servedAlias];
  const out = [aliases.challenger, versions.find((v) => v !== served), served].filter(
    (v): v is string => v !== undefined && versions.includes(v),
  );
  return [...new Set(out)];
}

export interface NumericInput {
  median: number;
  mean: number;
  std: number;
  min?: number;
  max?: number;
}

/**
 * Where most training values of a numeric field lay, in its raw units: the centre ± one spread
 * (mean ± std; for robust scaling the median ± half the IQR), kept inside the training range, so a
 * count never shows a negative bound. Whole numbers when the training values were whole.
 */
export function typicalRange(
  n: NumericInput,
  scaling: 'standard' | 'robust' = 'standard',
): { low: number; high: number; whole: boolean } {
  const half = scaling === 'robust' ? n.std / 2 : n.std;
  let low = n.mean - half;
  let high = n.mean + half;
  if (n.min !== undefined) low = Math.max(low, n.min);
  if (n.max !== undefined) high = Math.min(high, n.max);
  const whole =
    n.min !== undefined && n.max !== undefined && [n.min, n.max, n.median].every(Number.isInteger);
  if (whole) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  return { low, high, whole };
}

/** A raw value for a hint: whole numbers as such, large ones without decimals, small ones with two. */
export function formatValue(v: number, whole = false): string {
  if (whole || Number.isInteger(v)) return String(Math.round(v));
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);
}

/** Two bounds with the same number of decimals, chosen by the larger: '43 – 157', not '43.60 – 157'. */
export function formatRange(low: number, high: number, whole = false): string {
  const scale = Math.max(Math.abs(low), Math.abs(high));
  const digits = whole ? 0 : scale >= 100 ? 0 : 2;
  const one = (v: number) => (whole ? String(Math.round(v)) : v.toFixed(digits));
  return `${one(low)} – ${one(high)}`;
}
