/**
 * The A/B experiment panel's pure part (`GET /v1/experiments` → table rows): which variant, its
 * version and share, the traffic it took, its outcome so far with intervals, and the decision. No
 * DOM here, so it is unit-tested as is; pages/experiments-panel.ts draws it.
 */

interface Estimate {
  value: number;
  low: number;
  high: number;
}

export interface ExperimentView {
  name: string;
  dataset: string;
  status: 'running' | 'decided' | 'stopped';
  started_at: string;
  declaration: { primary_metric: string; alpha: number; minimum_sample: number; control: string };
  variants: { name: string; model: string; version: string; allocation: number; served_here: number }[];
  analysis: {
    look: number;
    analysed_at: string;
    decision: 'promote' | 'keep' | 'inconclusive';
    winner: string | null;
    final: boolean;
    reason: string;
    variants: {
      variant: string;
      customers: number;
      roc_auc: Estimate;
      calibration_error: Estimate;
      brier: Estimate;
      log_loss: Estimate;
      cost: Estimate;
    }[];
    comparisons: { variant: string; difference: number; pValue: number; low: number; high: number }[];
  } | null;
  /** Whether a promote decision only is recorded, or moves champion through the promotion gate. */
  on_decision?: 'record' | 'promote';
  /** What became of a promote decision (null before one; absent from an API before this field). */
  action?: 'recorded' | 'pending' | 'promoted' | 'refused' | null;
  action_detail?: string | null;
}

export const VARIANT_HEADERS = [
  'Variant',
  'Version',
  'Share',
  'Served here',
  'Labelled',
  'ROC AUC',
  'Calibration error',
  'Brier',
  'Cost / customer',
  'Δ primary vs control',
  'p (always valid)',
];

const num = (x: number | undefined, digits = 3) =>
  x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);

/** `0.712 [0.690, 0.734]`: a value with its interval, or a dash before any label. */
export function withInterval(e: Estimate | undefined, digits = 3): string {
  if (!e || !Number.isFinite(e.value)) return '—';
  return `${num(e.value, digits)} [${num(e.low, digits)}, ${num(e.high, digits)}]`;
}

export function variantRows(e: ExperimentView): string[][] {
  return e.variants.map((v) => {
    const o = e.analysis?.variants.find((x) => x.variant === v.name);
    const c = e.analysis?.comparisons.find((x) => x.variant === v.name);
    return [
      v.name === e.declaration.control ? `${v.name} (control)` : v.name,
      `v${v.version} (${v.model})`,
      `${Math.round(v.allocation * 100)}%`,
      String(v.served_here),
      o ? String(o.customers) : '—',
      withInterval(o?.roc_auc),
      withInterval(o?.calibration_error),
      withInterval(o?.brier, 4),
      withInterval(o?.cost),
      c ? `${num(c.difference, 4)} [${num(c.low, 4)}, ${num(c.high, 4)}]` : '—',
      c ? num(c.pValue, 4) : '—',
    ];
  });
}

/** The decision in words: what to do, and why. */
export function decisionLine(e: ExperimentView): { text: string; tone: 'ok' | 'bad' | 'busy' | 'idle' } {
  const a = e.analysis;
  if (!a)
    return {
      text: `${e.status}: no analysis yet (run driftwood experiment --name ${e.name} as labels arrive)`,
      tone: 'idle',
    };
  const what =
    a.decision === 'promote'
      ? `promote ${a.winner}`
      : a.decision === 'keep'
        ? `keep ${a.winner}`
        : a.final
          ? 'inconclusive — stopped, the control stays'
          : 'inconclusive so far';
  const tone = a.decision === 'promote' ? 'ok' : a.decision === 'keep' ? 'bad' : a.final ? 'idle' : 'busy';
  return {
    text: `${what} (look ${a.look}, ${a.analysed_at.slice(0, 16).replace('T', ' ')} UTC): ${a.reason}`,
    tone,
  };
}

const ACTION_WORDS = {
  recorded: 'promote decision recorded; champion not moved (on_decision: record)',
  pending: 'to be promoted to champion through the promotion gate',
  promoted: 'promoted to champion through the promotion gate',
  refused: 'refused by the promotion gate',
} as const;

/**
 * What became of a promote decision, as recorded on the experiment's MLflow run (`badge` is the
 * state). `null` once ended without one; while running, what a promote decision would do.
 */
export function actionLine(
  e: ExperimentView,
): { badge: string; text: string; tone: 'ok' | 'bad' | 'busy' | 'idle' } | null {
  if (!e.action) {
    if (e.status !== 'running') return null;
    return {
      badge: `on promote: ${e.on_decision ?? 'record'}`,
      text:
        e.on_decision === 'promote'
          ? 'a promote decision moves champion through the promotion gate'
          : 'a promote decision is recorded; champion is moved by hand (driftwood promote)',
      tone: 'idle',
    };
  }
  const tone =
    e.action === 'promoted'
      ? 'ok'
      : e.action === 'refused'
        ? 'bad'
        : e.action === 'pending'
          ? 'busy'
          : 'idle';
  const words = ACTION_WORDS[e.action];
  const text = !e.action_detail
    ? words
    : e.action === 'refused'
      ? `${words}: ${e.action_detail}`
      : e.action_detail;
  return { badge: e.action, text, tone };
}
