/**
 * The mixture sequential probability ratio test (mSPRT) for a difference of two means, as in
 * Johari, Koomen, Pekelis and Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests",
 * Operations Research 70(3), 2022 (https://arxiv.org/abs/1512.04922).
 *
 * With θ̂ = mean_B − mean_A, its variance V = s²_A/n_A + s²_B/n_B and a normal prior N(0, τ²) on the
 * true difference under the alternative, the mixture likelihood ratio against θ = θ₀ is
 *
 *   Λ(θ₀) = √(V / (V + τ²)) · exp( τ² (θ̂ − θ₀)² / (2 V (V + τ²)) ).
 *
 * Λ(0) is a (asymptotic, with the variances estimated) nonnegative martingale under H₀, so by
 * Ville's inequality P(Λ ever reaches 1/α) ≤ α: the data may be looked at after every label, and
 * the p-value min(1, 1/Λ), kept as the minimum over all looks, is valid at any stopping time.
 * Inverting the test gives the confidence sequence for θ: θ̂ ± √( V (V + τ²)/τ² · (2 ln(1/α) + ln((V + τ²)/V)) ).
 */
export interface SampleMoments {
  n: number;
  mean: number;
  /** The unbiased sample variance. */
  variance: number;
}

export interface SequentialComparison {
  /** mean_B − mean_A. */
  difference: number;
  /** ln Λ(0). */
  logLikelihoodRatio: number;
  /** min(1, 1/Λ(0)) at this look. */
  pValue: number;
  /** The always-valid confidence sequence for the difference at level 1 − α. */
  low: number;
  high: number;
}

export function moments(values: ArrayLike<number>): SampleMoments {
  const n = values.length;
  let mean = 0;
  let m2 = 0;
  // Welford: stable for the small variances of a Brier score.
  for (let i = 0; i < n; i++) {
    const x = values[i] as number;
    const d = x - mean;
    mean += d / (i + 1);
    m2 += d * (x - mean);
  }
  return { n, mean, variance: n > 1 ? m2 / (n - 1) : 0 };
}

export function mixtureSprt(
  a: SampleMoments,
  b: SampleMoments,
  opts: { tau: number; alpha: number },
): SequentialComparison {
  const difference = b.mean - a.mean;
  const V =
    (a.n > 0 ? a.variance / a.n : Number.POSITIVE_INFINITY) +
    (b.n > 0 ? b.variance / b.n : Number.POSITIVE_INFINITY);
  const t2 = opts.tau * opts.tau;
  if (!(V > 0) || !Number.isFinite(V))
    // No spread (or no data) yet: no evidence either way.
    return {
      difference,
      logLikelihoodRatio: 0,
      pValue: 1,
      low: Number.NEGATIVE_INFINITY,
      high: Number.POSITIVE_INFINITY,
    };
  const logLr = 0.5 * Math.log(V / (V + t2)) + (t2 * difference * difference) / (2 * V * (V + t2));
  const half = Math.sqrt(((V * (V + t2)) / t2) * (2 * Math.log(1 / opts.alpha) + Math.log((V + t2) / V)));
  return {
    difference,
    logLikelihoodRatio: logLr,
    pValue: Math.min(1, Math.exp(-logLr)),
    low: difference - half,
    high: difference + half,
  };
}
