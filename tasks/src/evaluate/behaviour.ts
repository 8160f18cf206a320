import type { Row } from '../features/transform.js';

export interface BehaviourCheck {
  name: string;
  kind: 'invariance' | 'directional' | 'minimum_functionality';
  passed: boolean;
  /** Rows (or cases) checked, and how many broke the expectation. */
  cases: number;
  failures: number;
  detail: string;
}

export type Scorer = (row: Row) => number;

/** How far a prediction may move where it "must not change" (float noise of a dense forward pass). */
const INVARIANCE_TOLERANCE = 1e-6;
/** How far a prediction may drop where it "must not drop" (float noise, not a trend). */
export const DIRECTION_TOLERANCE = 1e-4;

export const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** How many rows a change moved the wrong way, and by how much at worst. */
export function countViolations(
  rows: readonly Row[],
  score: Scorer,
  change: (r: Row) => Row,
  ok: (before: number, after: number) => boolean,
) {
  let failures = 0;
  let worst = 0;
  for (const r of rows) {
    const before = score(r);
    const after = score(change(r));
    if (!ok(before, after)) {
      failures++;
      worst = Math.max(worst, Math.abs(after - before));
    }
  }
  return { failures, worst };
}

/** The q-quantile of the finite values (0 when there are none). */
export function quantile(values: number[], q: number): number {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.min(s.length - 1, Math.floor(q * s.length))] as number);
}

/** Replacing the id and PII fields with stand-ins never moves a prediction. */
export function invarianceCheck(
  rows: readonly Row[],
  score: Scorer,
  standIns: Record<string, unknown>,
  name = 'invariant_to_id_and_pii',
): BehaviourCheck {
  const inv = countViolations(
    rows,
    score,
    (r) => ({ ...r, ...standIns }),
    (a, b) => Math.abs(a - b) <= INVARIANCE_TOLERANCE,
  );
  return {
    name,
    kind: 'invariance',
    passed: inv.failures === 0,
    cases: rows.length,
    failures: inv.failures,
    detail:
      inv.failures === 0
        ? `no prediction moved when ${Object.keys(standIns).join(', ')} changed`
        : `${inv.failures} predictions moved (up to ${inv.worst.toFixed(6)})`,
  };
}
