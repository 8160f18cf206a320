import { DriftwoodError } from '../errors.js';

/**
 * An A/B experiment as declared (docs/experiments.md): variants are model versions or aliases of the
 * dataset's registered model, the unit is the customer, and the decision is taken on one primary
 * metric by an always-valid test (sequential.ts) at the declared error rate.
 */
export type PrimaryMetric = 'brier' | 'log_loss' | 'cost';
export const PRIMARY_METRICS: readonly PrimaryMetric[] = ['brier', 'log_loss', 'cost'];

export interface VariantDeclaration {
  name: string;
  /** A version number (`7`) or an alias (`champion`) of the dataset's registered model. */
  model: string;
  /** The share of customers it gets; the shares add up to 1. */
  allocation: number;
}

export interface ExperimentDeclaration {
  name: string;
  dataset: string;
  variants: VariantDeclaration[];
  /** The baseline the other variants are compared with; the first variant when absent. */
  control: string;
  unit: 'customer';
  primary_metric: PrimaryMetric;
  /** Labelled customers each variant needs before any decision. */
  minimum_sample: number;
  /** When the experiment ends without a significant difference (at least one limit). */
  stop_rule: { max_samples_per_variant?: number; max_days?: number };
  /** The error rate of a wrong promote/keep, over every look at the data. */
  alpha: number;
  /** The mixing prior's standard deviation (the effect size of interest, in the metric's units). */
  mixture_sd: number;
  /**
   * What a `promote` decision does: `record` it on the experiment's run (the default), or also
   * `promote` the winning variant's version to champion through the promotion gate.
   */
  on_decision: OnDecision;
}

export type OnDecision = 'record' | 'promote';
export const ON_DECISION: readonly OnDecision[] = ['record', 'promote'];

/** The prior's scale when none is declared: an effect worth finding, in each metric's units. */
export const DEFAULT_MIXTURE_SD: Record<PrimaryMetric, number> = { brier: 0.02, log_loss: 0.05, cost: 0.05 };

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

function bad(field: string, message: string): never {
  throw new DriftwoodError('USAGE', `experiment ${field}: ${message}`);
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const got = (v: unknown) => (typeof v === 'string' ? `'${v}'` : (JSON.stringify(v) ?? String(v)));

function positiveInteger(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    bad(field, `expected a whole number of 1 or more, got ${got(v)}`);
  return v;
}

/**
 * Checks a declaration as it arrives (the API's JSON body); every error names the field and what to
 * write instead. `defaultDataset` fills an absent `dataset`.
 */
export function validateExperiment(input: unknown, defaultDataset?: string): ExperimentDeclaration {
  if (!isRecord(input)) bad('body', `expected an object, got ${got(input)}`);
  const known = [
    'name',
    'dataset',
    'variants',
    'control',
    'unit',
    'primary_metric',
    'minimum_sample',
    'stop_rule',
    'alpha',
    'mixture_sd',
    'on_decision',
  ];
  for (const k of Object.keys(input))
    if (!known.includes(k)) bad(k, `unknown field; the fields are ${known.join(', ')}`);
  const { name } = input;
  if (typeof name !== 'string' || !NAME.test(name))
    bad(
      'name',
      `expected lower-case letters, digits, '-' or '_' (1–63, starting with a letter or digit), got ${got(name)}`,
    );
  const dataset = input.dataset ?? defaultDataset;
  if (typeof dataset !== 'string' || dataset === '')
    bad('dataset', `expected the dataset's name, got ${got(dataset)}`);
  const { variants } = input;
  if (!Array.isArray(variants) || variants.length < 2 || variants.length > 5)
    bad(
      'variants',
      `expected 2 to 5 variants, got ${Array.isArray(variants) ? variants.length : got(variants)}`,
    );
  const seen = new Set<string>();
  const parsed: VariantDeclaration[] = variants.map((v: unknown, i: number) => {
    const at = `variants[${i}]`;
    if (!isRecord(v)) bad(at, `expected {name, model, allocation}, got ${got(v)}`);
    for (const k of Object.keys(v))
      if (!['name', 'model', 'allocation'].includes(k))
        bad(`${at}.${k}`, 'unknown field; a variant has name, model, allocation');
    if (typeof v.name !== 'string' || !NAME.test(v.name))
      bad(`${at}.name`, `expected a short name like 'control', got ${got(v.name)}`);
    if (seen.has(v.name)) bad(`${at}.name`, `'${v.name}' is used by another variant; names must differ`);
    seen.add(v.name);
    if (typeof v.model !== 'string' || !/^[\w-]+$/.test(v.model))
      bad(`${at}.model`, `expected a model version ('7') or an alias ('champion'), got ${got(v.model)}`);
    if (typeof v.allocation !== 'number' || !(v.allocation > 0 && v.allocation <= 1))
      bad(`${at}.allocation`, `expected a share in (0, 1], got ${got(v.allocation)}`);
    return { name: v.name, model: v.model, allocation: v.allocation };
  });
  const total = parsed.reduce((s, v) => s + v.allocation, 0);
  if (Math.abs(total - 1) > 1e-9)
    bad('variants', `the allocations add up to ${total}; they must add up to 1`);
  const control = input.control ?? parsed[0]?.name;
  if (typeof control !== 'string' || !seen.has(control))
    bad('control', `expected the name of a variant (${[...seen].join(', ')}), got ${got(control)}`);
  const unit = input.unit ?? 'customer';
  if (unit !== 'customer')
    bad('unit', `only 'customer' is supported (assignment is sticky per customer), got ${got(unit)}`);
  const metric = input.primary_metric;
  if (typeof metric !== 'string' || !PRIMARY_METRICS.includes(metric as PrimaryMetric))
    bad(
      'primary_metric',
      `expected one of ${PRIMARY_METRICS.join(', ')} (a mean over customers, which the sequential test needs; ROC AUC and calibration error are reported per variant, not tested), got ${got(metric)}`,
    );
  const minimum = positiveInteger(input.minimum_sample, 'minimum_sample');
  const stop = input.stop_rule;
  if (!isRecord(stop)) bad('stop_rule', `expected {max_samples_per_variant?, max_days?}, got ${got(stop)}`);
  for (const k of Object.keys(stop))
    if (!['max_samples_per_variant', 'max_days'].includes(k))
      bad(`stop_rule.${k}`, 'unknown field; the stop rule has max_samples_per_variant and max_days');
  if (stop.max_samples_per_variant === undefined && stop.max_days === undefined)
    bad('stop_rule', 'give max_samples_per_variant or max_days (or both): an experiment must end');
  const stopRule: ExperimentDeclaration['stop_rule'] = {};
  if (stop.max_samples_per_variant !== undefined) {
    stopRule.max_samples_per_variant = positiveInteger(
      stop.max_samples_per_variant,
      'stop_rule.max_samples_per_variant',
    );
    if (stopRule.max_samples_per_variant < minimum)
      bad(
        'stop_rule.max_samples_per_variant',
        `${stopRule.max_samples_per_variant} is below minimum_sample (${minimum})`,
      );
  }
  if (stop.max_days !== undefined) stopRule.max_days = positiveInteger(stop.max_days, 'stop_rule.max_days');
  const alpha = input.alpha;
  if (typeof alpha !== 'number' || !(alpha > 0 && alpha <= 0.2))
    bad('alpha', `expected an error rate in (0, 0.2], e.g. 0.05, got ${got(alpha)}`);
  const tau = input.mixture_sd ?? DEFAULT_MIXTURE_SD[metric as PrimaryMetric];
  if (typeof tau !== 'number' || !(tau > 0 && Number.isFinite(tau)))
    bad('mixture_sd', `expected a positive number in the primary metric's units, got ${got(tau)}`);
  const onDecision = input.on_decision ?? 'record';
  if (typeof onDecision !== 'string' || !ON_DECISION.includes(onDecision as OnDecision))
    bad(
      'on_decision',
      `expected 'record' (a promote decision is recorded; the default) or 'promote' (the winning version also becomes champion, through the promotion gate), got ${got(onDecision)}`,
    );
  return {
    name,
    dataset,
    variants: parsed,
    control,
    unit: 'customer',
    primary_metric: metric as PrimaryMetric,
    minimum_sample: minimum,
    stop_rule: stopRule,
    alpha,
    mixture_sd: tau,
    on_decision: onDecision as OnDecision,
  };
}

/** A variant with the version its model resolved to when the experiment started (pinned). */
export interface ResolvedVariant extends VariantDeclaration {
  version: string;
}

/** What is stored with a started experiment (the MLflow run's `driftwood.ab.declaration` tag). */
export interface ExperimentRecord {
  declaration: ExperimentDeclaration;
  model_name: string;
  variants: ResolvedVariant[];
  started_at: string;
  run_id: string;
  status: ExperimentStatus;
}

export type ExperimentStatus = 'running' | 'decided' | 'stopped';
