export interface Candidate {
  version: string;
  rocAuc: number | undefined;
}

export interface PromotionPolicy {
  minRocAuc: number;
  /** How much lower than the champion's the candidate's holdout ROC AUC may be (noise allowance). */
  maxRegression: number;
}

export type PromotionDecision = { promote: true; reason: string } | { promote: false; reason: string };

/**
 * Decides whether a candidate may become champion. Pure. The gate is an absolute floor on holdout
 * ROC AUC and no regression against the champion beyond a small allowance, so a worse model never
 * replaces a better one. A candidate that is already champion is a no-op success: re-runs are safe.
 * (Both AUCs come from each model's own holdout; scoring both on one holdout comes with the registry
 * work.)
 */
export function decidePromotion(
  candidate: Candidate,
  champion: Candidate | undefined,
  policy: PromotionPolicy,
): PromotionDecision {
  if (champion && champion.version === candidate.version) {
    return { promote: true, reason: `version ${candidate.version} is already champion` };
  }
  if (candidate.rocAuc === undefined || !Number.isFinite(candidate.rocAuc)) {
    return { promote: false, reason: `version ${candidate.version} has no holdout ROC AUC recorded` };
  }
  if (candidate.rocAuc < policy.minRocAuc) {
    return {
      promote: false,
      reason: `holdout ROC AUC ${candidate.rocAuc.toFixed(4)} is below the floor ${policy.minRocAuc}`,
    };
  }
  const championAuc = champion?.rocAuc;
  if (champion && championAuc !== undefined && Number.isFinite(championAuc)) {
    if (candidate.rocAuc < championAuc - policy.maxRegression) {
      return {
        promote: false,
        reason: `holdout ROC AUC ${candidate.rocAuc.toFixed(4)} is worse than champion version ${champion.version}'s ${championAuc.toFixed(4)} by more than ${policy.maxRegression}`,
      };
    }
    return {
      promote: true,
      reason: `holdout ROC AUC ${candidate.rocAuc.toFixed(4)} ≥ ${policy.minRocAuc} and within ${policy.maxRegression} of champion version ${champion.version}'s ${championAuc.toFixed(4)}`,
    };
  }
  return { promote: true, reason: `holdout ROC AUC ${candidate.rocAuc.toFixed(4)} ≥ ${policy.minRocAuc}` };
}
