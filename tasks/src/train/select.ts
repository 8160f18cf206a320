import type { BehaviourCheck } from '../evaluate/behaviour.js';
import { transformRow } from '../features/transform.js';
import {
  type ModelKind,
  type ModelParams,
  type ModelRequest,
  validateModelParams,
  withDefaults,
} from '../models/params.js';
import type { PreparedData } from './data.js';
import { type FitData, fitOnValidation, type ValidatedFit } from './fit.js';

/**
 * Whether a request leaves the kind to `auto`: it names `auto`, or names no kind and no solver. A
 * solver is a parameter of the logistic regression alone, so `train --solver exact` fits that model.
 */
export function isAuto(request: ModelRequest): boolean {
  return request.kind === 'auto' || (request.kind === undefined && request.solver === undefined);
}

/**
 * The candidates of `auto`, simplest first (a tie keeps the earlier): the logistic regression fitted
 * to its optimum (solver exact), the same model fitted by Adam with early stopping on validation (on
 * small data the early stop shrinks the weights, and that has generalised better than the optimum:
 * see docs/training.md), and the gradient-boosted trees. A solver named with `kind: auto` keeps the
 * logistic regression to that one; every other parameter given applies to each candidate that uses it.
 */
export function autoCandidates(request: ModelRequest): ModelParams[] {
  const { kind: _kind, solver, ...rest } = request;
  const solvers = solver ? [solver] : (['exact', 'adam'] as const);
  return [
    ...solvers.map((s) => validateModelParams(withDefaults({ ...rest, kind: 'logistic', solver: s }))),
    validateModelParams(withDefaults({ ...rest, kind: 'gbdt' })),
  ];
}

/** One candidate as the choice sees it: validation figures and behavioural checks, never the holdout. */
export interface CandidateScore {
  /** The kind, with the solver for a logistic regression: `logistic-exact`, `logistic-adam`, `gbdt`. */
  name: string;
  kind: ModelKind;
  /** ROC AUC of the calibrated scores on the validation part. */
  validationRocAuc: number;
  /** The names of the behavioural checks it failed on the validation rows (none: it passes). */
  failedChecks: string[];
}

export interface CandidateReport extends CandidateScore {
  validationLogLoss: number;
  fitSeconds: number;
  /** Behavioural checks run (0 when the dataset declares none). */
  checks: number;
  chosen: boolean;
}

/** What `auto` did: recorded on the MLflow run and in the step's result. */
export interface Selection {
  requested: 'auto';
  /** The kept candidate's name (candidateName), and its kind: what the registered version holds. */
  chosen: string;
  kind: ModelKind;
  reason: string;
  candidates: CandidateReport[];
}

/** `logistic-exact`, `logistic-adam`, `mlp`, `gbdt`: a candidate's name in figures and metric keys. */
export function candidateName(p: ModelParams): string {
  return p.kind === 'logistic' ? `logistic-${p.solver}` : p.kind;
}

const auc = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : 'n/a');
const rank = (v: number) => (Number.isFinite(v) ? v : Number.NEGATIVE_INFINITY);

/**
 * Picks the candidate to register. Pure. Among the candidates that pass the dataset's behavioural
 * checks (all of them when none passes: the evaluate gate then refuses it, as it would any model),
 * the highest validation ROC AUC wins; a tie goes to the earlier, simpler candidate. The reason
 * names the figures that decided.
 */
export function chooseCandidate(candidates: readonly CandidateScore[]): { index: number; reason: string } {
  if (candidates.length === 0) throw new Error('chooseCandidate: no candidates');
  const passing = candidates.map((c, i) => ({ c, i })).filter(({ c }) => c.failedChecks.length === 0);
  const pool = passing.length > 0 ? passing : candidates.map((c, i) => ({ c, i }));
  let best = pool[0] as (typeof pool)[number];
  for (const e of pool.slice(1)) if (rank(e.c.validationRocAuc) > rank(best.c.validationRocAuc)) best = e;
  const figures = candidates.map((c) => `${c.name} ${auc(c.validationRocAuc)}`).join(', ');
  const refused = candidates.filter((c) => c.failedChecks.length > 0);
  const behaviour =
    refused.length === 0
      ? ''
      : passing.length === 0
        ? `; every candidate failed a behavioural check (${refused.map((c) => `${c.name}: ${c.failedChecks.join(', ')}`).join('; ')}), so the better on validation goes on to the gate`
        : `; ${refused.map((c) => `${c.name} failed ${c.failedChecks.join(', ')}`).join('; ')} on the validation rows`;
  const tie = pool.some(
    (e) => e.i !== best.i && rank(e.c.validationRocAuc) === rank(best.c.validationRocAuc),
  );
  return {
    index: best.i,
    reason: `${best.c.name}: the ${tie ? 'simpler of equal' : 'highest'} validation ROC AUC${passing.length > 0 && refused.length > 0 ? ' among the candidates that pass the behavioural checks' : ''} (${figures})${behaviour}`,
  };
}

/**
 * Fits every candidate on the training part, calibrates each and picks its threshold on the
 * validation part, runs the behavioural checks on the validation rows, and keeps the one
 * chooseCandidate picks. The holdout is not read: the kept model is measured on it afterwards, once.
 */
export async function fitBestCandidate(
  data: FitData,
  candidates: readonly ModelParams[],
  options: {
    /** Known directions per input column (monotone candidates keep them); none: unconstrained. */
    signs?: ArrayLike<number>;
    /** The dataset's behavioural checks of a fitted (calibrated) model at its threshold. */
    behaviour?: (fit: ValidatedFit) => BehaviourCheck[];
    now?: () => number;
  },
): Promise<{ fit: ValidatedFit; params: ModelParams; selection: Selection }> {
  const fits: ValidatedFit[] = [];
  const reports: CandidateReport[] = [];
  for (const params of candidates) {
    const fit = await fitOnValidation(data, params, options.signs, options.now);
    const checks = options.behaviour?.(fit) ?? [];
    fits.push(fit);
    reports.push({
      name: candidateName(params),
      kind: params.kind,
      validationRocAuc: fit.validation.roc_auc,
      validationLogLoss: fit.validation.log_loss,
      fitSeconds: Math.round(fit.trainMs) / 1000,
      checks: checks.length,
      failedChecks: checks.filter((c) => !c.passed).map((c) => c.name),
      chosen: false,
    });
  }
  const { index, reason } = chooseCandidate(reports);
  fits.forEach((f, i) => {
    if (i !== index) f.model.dispose();
  });
  (reports[index] as CandidateReport).chosen = true;
  const params = candidates[index] as ModelParams;
  return {
    fit: fits[index] as ValidatedFit,
    params,
    selection: {
      requested: 'auto',
      chosen: candidateName(params),
      kind: params.kind,
      reason,
      candidates: reports,
    },
  };
}

/**
 * The dataset's behavioural checks of a readied candidate, on the validation rows (raw, as the API
 * takes them) at its own threshold: what the evaluate gate runs on the holdout, run before it so
 * that `auto` keeps a model the gate can pass.
 */
export function validationBehaviour(
  data: Pick<PreparedData, 'parts' | 'width' | 'state' | 'profile'>,
  fit: ValidatedFit,
): BehaviourCheck[] {
  const rows = data.parts.validation.map((r) => ({ ...r.features, customer_id: r.customerId }));
  const x = new Float32Array(data.width);
  return data.profile.behaviour(
    rows,
    (row) => fit.model.scoreOne(transformRow(data.state, row, x)),
    fit.threshold,
  );
}
