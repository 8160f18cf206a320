import type { ExperimentDeclaration } from './declaration.js';
import {
  type ErrorCosts,
  type Observation,
  unitLoss,
  type VariantOutcome,
  variantOutcome,
} from './outcomes.js';
import { mixtureSprt, moments, type SequentialComparison } from './sequential.js';

export type Decision = 'promote' | 'keep' | 'inconclusive';

/** One treatment against the control on the primary metric (a loss: negative difference = better). */
export interface Comparison extends SequentialComparison {
  variant: string;
  versus: string;
  metric: ExperimentDeclaration['primary_metric'];
  /** The always-valid p-value: the least of this look's and every earlier look's. */
  pValue: number;
  /** The level each comparison is held to: α split over the treatments (Bonferroni). */
  level: number;
  significant: boolean;
}

export interface ExperimentAnalysis {
  experiment: string;
  /** 1 for the first analysis, then one more per look. */
  look: number;
  analysed_at: string;
  decision: Decision;
  /** The variant to promote (decision `promote`), or the control (decision `keep`). */
  winner: string | null;
  /** Whether the experiment ends with this look (a significant result or its stop rule). */
  final: boolean;
  reason: string;
  variants: VariantOutcome[];
  comparisons: Comparison[];
}

export interface AnalyseOptions {
  now: number;
  startedAt: number;
  look: number;
  costs: ErrorCosts;
  /** Each treatment's always-valid p-value so far (from the earlier looks). */
  previousPValues?: Record<string, number>;
  /** Bootstrap resamples of the calibration error's interval (200 by default; 0: none). */
  resamples?: number;
  seed?: number;
}

/**
 * Per-variant outcomes, the sequential test of each treatment against the control on the primary
 * metric, and the decision: `promote` a treatment significantly better than the control, `keep` the
 * control when every treatment is significantly worse, otherwise `inconclusive` — final once the
 * stop rule is reached (then the control stays). No decision is taken before every variant has
 * `minimum_sample` labelled customers.
 */
export function analyseExperiment(
  declaration: ExperimentDeclaration,
  observations: readonly Observation[],
  opts: AnalyseOptions,
): ExperimentAnalysis {
  const byVariant = new Map<string, Observation[]>(declaration.variants.map((v) => [v.name, []]));
  for (const o of observations) byVariant.get(o.variant)?.push(o);
  const resamples = opts.resamples ?? 200;
  const variants = declaration.variants.map((v, i) =>
    variantOutcome(v.name, byVariant.get(v.name) ?? [], opts.costs, {
      resamples,
      seed: (opts.seed ?? 1) + i,
    }),
  );
  const metric = declaration.primary_metric;
  const losses = (name: string) => (byVariant.get(name) ?? []).map((o) => unitLoss(metric, o, opts.costs));
  const control = moments(losses(declaration.control));
  const treatments = declaration.variants.filter((v) => v.name !== declaration.control);
  const level = declaration.alpha / treatments.length;
  const comparisons: Comparison[] = treatments.map((t) => {
    const test = mixtureSprt(control, moments(losses(t.name)), { tau: declaration.mixture_sd, alpha: level });
    const pValue = Math.min(test.pValue, opts.previousPValues?.[t.name] ?? 1);
    return {
      ...test,
      variant: t.name,
      versus: declaration.control,
      metric,
      pValue,
      level,
      significant: pValue <= level,
    };
  });

  const base = {
    experiment: declaration.name,
    look: opts.look,
    analysed_at: new Date(opts.now).toISOString(),
    variants,
    comparisons,
  };
  const fewest = Math.min(...variants.map((v) => v.customers));
  if (fewest < declaration.minimum_sample)
    return {
      ...base,
      decision: 'inconclusive',
      winner: null,
      final: false,
      reason: `collecting: ${fewest} labelled customers in the smallest variant, ${declaration.minimum_sample} needed before a decision`,
    };
  const better = comparisons
    .filter((c) => c.significant && c.difference < 0)
    .sort((x, y) => x.difference - y.difference);
  const best = better[0];
  if (best)
    return {
      ...base,
      decision: 'promote',
      winner: best.variant,
      final: true,
      reason: `${best.variant} has a lower ${metric} than ${declaration.control} by ${fmt(-best.difference)} (always-valid p = ${fmt(best.pValue)} ≤ ${fmt(level)})`,
    };
  if (comparisons.every((c) => c.significant && c.difference > 0))
    return {
      ...base,
      decision: 'keep',
      winner: declaration.control,
      final: true,
      reason: `every treatment has a higher ${metric} than ${declaration.control} (always-valid p ≤ ${fmt(level)})`,
    };
  const { max_samples_per_variant: maxSamples, max_days: maxDays } = declaration.stop_rule;
  const days = (opts.now - opts.startedAt) / 86_400_000;
  const stopped =
    maxSamples !== undefined && fewest >= maxSamples
      ? `${fewest} labelled customers per variant reached the stop rule's ${maxSamples}`
      : maxDays !== undefined && days >= maxDays
        ? `${days.toFixed(1)} days reached the stop rule's ${maxDays}`
        : undefined;
  return {
    ...base,
    decision: 'inconclusive',
    winner: null,
    final: stopped !== undefined,
    reason: stopped
      ? `stopped, no significant difference in ${metric}: ${stopped}; the control stays`
      : `no significant difference in ${metric} yet; the experiment goes on`,
  };
}

const fmt = (x: number) => (Math.abs(x) >= 0.001 || x === 0 ? x.toFixed(4) : x.toExponential(2));
