/** What the forecast gate judges: RMSEs on one and the same test period. */
export interface ForecastGateEvidence {
  challenger: { version: string; rmse: number };
  persistence: { rmse: number };
  /** The current champion, scored on the challenger's test period; null when there is none. */
  champion: { version: string; rmse: number } | null;
  /** Hours in the test period the RMSEs cover. */
  hours: number;
}

export interface ForecastGatePolicy {
  /**
   * The share by which the challenger's RMSE must undercut persistence's. On a random walk a model
   * can undercut it by a fraction of a percent through luck on a few hundred hours; a margin keeps
   * such a model out.
   */
  minImprovement: number;
}

export const DEFAULT_FORECAST_POLICY: ForecastGatePolicy = { minImprovement: 0.01 };

export interface ForecastGateCheck {
  name: 'finite' | 'beats_persistence' | 'beats_champion';
  passed: boolean;
  detail: string;
}

export interface ForecastDecision {
  promote: boolean;
  reason: string;
  checks: ForecastGateCheck[];
}

const f = (v: number) => (Number.isFinite(v) ? v.toPrecision(6) : String(v));

/**
 * Promote only a challenger whose test RMSE is below the persistence forecast's by the policy's
 * margin (a model that cannot beat "the next hour is this hour" adds nothing) and below the
 * champion's on the same hours.
 */
export function decideForecastPromotion(
  e: ForecastGateEvidence,
  policy: ForecastGatePolicy = DEFAULT_FORECAST_POLICY,
): ForecastDecision {
  const c = e.challenger.rmse;
  const bar = e.persistence.rmse * (1 - policy.minImprovement);
  const pct = (policy.minImprovement * 100).toFixed(2);
  const checks: ForecastGateCheck[] = [
    {
      name: 'finite',
      passed: Number.isFinite(c) && e.hours > 0,
      detail: `challenger RMSE ${f(c)} over ${e.hours} test hours`,
    },
    {
      name: 'beats_persistence',
      passed: c < bar,
      detail: `challenger RMSE ${f(c)} ${c < bar ? '<' : '>='} persistence RMSE ${f(e.persistence.rmse)} less ${pct}% (${f(bar)})`,
    },
  ];
  if (e.champion && e.champion.version !== e.challenger.version)
    checks.push({
      name: 'beats_champion',
      passed: c < e.champion.rmse,
      detail: `challenger RMSE ${f(c)} ${c < e.champion.rmse ? '<' : '>='} champion v${e.champion.version} RMSE ${f(e.champion.rmse)}`,
    });
  const failed = checks.filter((k) => !k.passed);
  const reason =
    failed.length > 0
      ? `not promoted: ${failed.map((k) => `${k.name} failed (${k.detail})`).join('; ')}`
      : `promoted: ${checks
          .slice(1)
          .map((k) => k.detail)
          .join('; ')}${e.champion ? '' : '; no champion yet'}`;
  return { promote: failed.length === 0, reason, checks };
}
