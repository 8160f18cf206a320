/** What the gate sees of one model, scored on the candidate's holdout. */
export interface GateModel {
  version: string;
  rocAuc: number | undefined;
  segments: { segment: string; n: number; positives: number; roc_auc: number }[];
}

/** The evidence `runEvaluate` gathers, reduced to what the decision reads. */
export interface GateEvidence {
  candidate: GateModel;
  champion: GateModel | null;
  /** candidate − champion ROC AUC on the same rows, with its bootstrap interval. */
  comparison: { diff: number; low: number; high: number; level: number } | null;
  behaviour: { name: string; passed: boolean; detail: string }[];
}

export interface PromotionPolicy {
  /** Absolute floor on the candidate's holdout ROC AUC. */
  minRocAuc: number;
  /** The candidate's ROC AUC must beat the champion's by at least this much (may be 0). */
  minImprovement: number;
  /** The interval's lower bound of (candidate − champion) may not go below −maxRegression. */
  maxRegression: number;
  /** No judged segment may lose more ROC AUC than this against the champion. */
  segmentTolerance: number;
  /** Segments with fewer rows (or one class only) are too noisy to judge. */
  minSegmentSize: number;
}

export const DEFAULT_POLICY: PromotionPolicy = {
  minRocAuc: 0.6,
  minImprovement: 0,
  // A holdout of a few hundred customers gives an AUC interval about ±0.05 wide: a tighter
  // allowance would block every retrain on the demo data, a looser one lets real regressions by.
  maxRegression: 0.05,
  segmentTolerance: 0.05,
  minSegmentSize: 30,
};

export interface GateCheck {
  name: string;
  passed: boolean;
  detail: string;
}

export interface PromotionDecision {
  promote: boolean;
  reason: string;
  checks: GateCheck[];
}

const f = (x: number) => x.toFixed(4);

/**
 * Decides whether a candidate may replace the champion. Pure. Every check is evaluated and listed,
 * and the candidate passes only if all pass: a floor on ROC AUC; against a champion, an improvement
 * of at least the margin with a bootstrap interval that rules out a regression beyond the allowance;
 * no segment (plan, region) regressing beyond its tolerance; and every behavioural test. A
 * candidate that already is champion is a no-op success, so re-runs are safe.
 */
export function decidePromotion(evidence: GateEvidence, policy: PromotionPolicy): PromotionDecision {
  const { candidate, champion, comparison } = evidence;
  if (champion && champion.version === candidate.version) {
    return { promote: true, reason: `version ${candidate.version} is already champion`, checks: [] };
  }
  const checks: GateCheck[] = [];
  const auc = candidate.rocAuc;
  if (auc === undefined || !Number.isFinite(auc)) {
    checks.push({
      name: 'min_roc_auc',
      passed: false,
      detail: `version ${candidate.version} has no holdout ROC AUC`,
    });
  } else {
    checks.push({
      name: 'min_roc_auc',
      passed: auc >= policy.minRocAuc,
      detail: `holdout ROC AUC ${f(auc)} ${auc >= policy.minRocAuc ? '≥' : 'is below'} the floor ${policy.minRocAuc}`,
    });
  }
  if (champion) {
    if (!comparison || !Number.isFinite(comparison.diff)) {
      checks.push({
        name: 'beats_champion',
        passed: false,
        detail: `no comparison with champion version ${champion.version}`,
      });
    } else {
      // A candidate that ranks every holdout row as the champion does (an identical retrain): said in
      // the reason, promoted only as far as the margin allows (the default margin 0 allows it).
      const identical = comparison.diff === 0 && comparison.low === 0 && comparison.high === 0;
      const improves = comparison.diff >= policy.minImprovement;
      const notWorse = comparison.low >= -policy.maxRegression;
      const interval = `${Math.round(comparison.level * 100)}% interval [${f(comparison.low)}, ${f(comparison.high)}]`;
      const both =
        auc !== undefined && champion.rocAuc !== undefined
          ? `ROC AUC ${f(auc)} vs ${f(champion.rocAuc)} of champion version ${champion.version}`
          : `ROC AUC vs champion version ${champion.version}`;
      const diff = `${comparison.diff >= 0 ? '+' : ''}${f(comparison.diff)}`;
      checks.push({
        name: 'beats_champion',
        passed: improves && notWorse,
        detail:
          `${both} (${identical ? 'it ranks every holdout row as the champion does' : `${diff}, ${interval}`}); ` +
          `${improves ? 'meets' : 'misses'} the margin ${policy.minImprovement}, ` +
          `${notWorse ? 'no' : 'a possible'} regression beyond ${policy.maxRegression}`,
      });
      const championSegments = new Map(champion.segments.map((s) => [s.segment, s]));
      const regressed: string[] = [];
      for (const s of candidate.segments) {
        const c = championSegments.get(s.segment);
        if (!c || s.n < policy.minSegmentSize || !Number.isFinite(s.roc_auc) || !Number.isFinite(c.roc_auc))
          continue;
        if (s.roc_auc < c.roc_auc - policy.segmentTolerance)
          regressed.push(`${s.segment} ${f(s.roc_auc)} < ${f(c.roc_auc)} (n=${s.n})`);
      }
      checks.push({
        name: 'no_segment_regression',
        passed: regressed.length === 0,
        detail:
          regressed.length === 0
            ? `no segment of ${policy.minSegmentSize}+ rows lost more than ${policy.segmentTolerance} ROC AUC`
            : `segments regressed beyond ${policy.segmentTolerance}: ${regressed.join(', ')}`,
      });
    }
  }
  for (const b of evidence.behaviour)
    checks.push({ name: `behaviour:${b.name}`, passed: b.passed, detail: b.detail });
  const failed = checks.filter((c) => !c.passed);
  const promote = failed.length === 0;
  return {
    promote,
    reason: promote
      ? checks.map((c) => c.detail).join('; ')
      : failed.map((c) => `${c.name}: ${c.detail}`).join('; '),
    checks,
  };
}
