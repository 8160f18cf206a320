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
  /**
   * The candidate's training run read the same data (digest) with the same parameters as the
   * champion's: a retrain that can only reproduce the champion. Undefined when it is not known.
   */
  sameTraining?: boolean;
}

export interface PromotionPolicy {
  /** Absolute floor on the candidate's holdout ROC AUC. */
  minRocAuc: number;
  /**
   * The candidate's ROC AUC must be above the champion's (strictly: an equal figure is not an
   * improvement) and by at least this much (may be 0).
   */
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
 * Two ROC AUCs on the same rows closer than this are equal: a real difference is at least one pair
 * of rows ranked the other way, 1/(positives × negatives), far above floating-point noise.
 */
export const AUC_EQUAL = 1e-9;

/** Both figures, with enough digits that two different ones never print alike. */
function figures(a: number, b: number): [string, string] {
  for (const digits of [4, 6, 8]) {
    const x = a.toFixed(digits);
    const y = b.toFixed(digits);
    if (x !== y || Math.abs(a - b) <= AUC_EQUAL) return [x, y];
  }
  return [String(a), String(b)];
}

/**
 * Decides whether a candidate may replace the champion. Pure. Every check is evaluated and listed,
 * and the candidate passes only if all pass: a floor on ROC AUC; against a champion, a measurably
 * better ROC AUC on the same holdout (above the champion's, by at least the margin) with a
 * bootstrap interval that rules out a regression beyond the allowance; no segment (plan, region)
 * regressing beyond its tolerance; and every behavioural test. A retrain that ranks the holdout
 * exactly as the champion does (the same data and settings give the same model) is never better,
 * whatever the margin. A candidate that already is champion is a no-op success, so re-runs are safe.
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
      checks.push(beatsChampion(evidence, comparison, champion, policy));
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

/** The `beats_champion` check: measurably better than the champion on the same holdout. */
function beatsChampion(
  evidence: GateEvidence,
  comparison: NonNullable<GateEvidence['comparison']>,
  champion: GateModel,
  policy: PromotionPolicy,
): GateCheck {
  const { diff, low, high, level } = comparison;
  // A candidate that ranks every holdout row as the champion does: an identical retrain.
  const identical = diff === 0 && low === 0 && high === 0;
  const equal = Math.abs(diff) <= AUC_EQUAL;
  const better = diff > AUC_EQUAL;
  const meetsMargin = diff >= policy.minImprovement;
  const notWorse = low >= -policy.maxRegression;
  const cand = evidence.candidate.rocAuc;
  const champ = champion.rocAuc;
  const known = cand !== undefined && champ !== undefined && Number.isFinite(cand) && Number.isFinite(champ);
  const [a, b] = known ? figures(cand, champ) : ['?', '?'];
  const sign = equal ? '=' : diff > 0 ? '>' : '<';
  const why: string[] = [];
  if (evidence.sameTraining) why.push('same training data and settings');
  else if (identical) why.push('it ranks every holdout row as the champion does');
  if (!identical)
    why.push(
      `${diff >= 0 ? '+' : ''}${f(diff)}, ${Math.round(level * 100)}% interval [${f(low)}, ${f(high)}]`,
    );
  const verdict: string[] = [];
  if (!better) verdict.push('not better');
  else if (!meetsMargin) verdict.push(`better, but by less than the margin ${policy.minImprovement}`);
  else verdict.push(`better by at least the margin ${policy.minImprovement}`);
  if (!identical)
    verdict.push(
      notWorse
        ? `no regression beyond ${policy.maxRegression} within the interval`
        : `a possible regression beyond ${policy.maxRegression}`,
    );
  return {
    name: 'beats_champion',
    passed: better && meetsMargin && notWorse,
    detail: `ROC AUC ${a} ${sign} champion v${champion.version}'s ${b} (${why.join('; ')}): ${verdict.join(', ')}`,
  };
}
