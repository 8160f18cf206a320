import type { Knex } from 'knex';
import { datasetSettings } from '../contracts/settings.js';
import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { Run } from '../mlflow/types.js';
import {
  type ActionOptions,
  type ActionResult,
  type ActionState,
  applyPromotion,
  planAction,
  recordAction,
} from './action.js';
import { analyseExperiment, type ExperimentAnalysis } from './analyse.js';
import { joinOutcomes, labelSource, readExposures, readLabels } from './observations.js';
import type { ErrorCosts } from './outcomes.js';
import {
  AB_MLFLOW_EXPERIMENT,
  carriedOver,
  findExperiment,
  listExperiments,
  recordAnalysis,
  type StoredExperiment,
  TAG,
} from './record.js';

export * from './action.js';
export * from './analyse.js';
export * from './assign.js';
export * from './declaration.js';
export * from './observations.js';
export * from './outcomes.js';
export * from './record.js';
export * from './sequential.js';

export interface ExperimentAnalysisOptions {
  experiment: string;
  /** `<DRIFTWOOD_HOME>/predictions`, the API's prediction log. */
  predictionsDir: string;
  /** The key the API tokenised customer ids with (DRIFTWOOD_PII_KEY): labels are joined by token. */
  piiKey: string;
  now?: number;
  mlflowExperiment?: string;
  resamples?: number;
}

export interface ExperimentAnalysisDeps {
  mlflow: MlflowClient;
  warehouse: Knex;
  loadContract: (dataset: string) => Promise<Contract>;
}

/** The contract's threshold costs are the business metric; without them each error costs 1. */
export function errorCosts(contract: Contract): ErrorCosts {
  const t = datasetSettings(contract).threshold;
  return t.objective === 'cost'
    ? { falsePositive: t.falsePositiveCost, falseNegative: t.falseNegativeCost }
    : { falsePositive: 1, falseNegative: 1 };
}

/** The experiment's outcomes as of `now`: its customers' first predictions, joined to their labels. */
async function analyseStored(
  stored: StoredExperiment,
  run: Run,
  options: ExperimentAnalysisOptions,
  deps: ExperimentAnalysisDeps,
  now: number,
): Promise<ExperimentAnalysis> {
  const d = stored.declaration;
  const contract = await deps.loadContract(d.dataset);
  const source = labelSource(contract);
  const from = Date.parse(stored.started_at);
  // The default dataset's log is unprefixed, the others' under dataset=<name>/: the experiment's name
  // is unique, so both are read and only its lines kept.
  const exposures = (
    await Promise.all(
      ['', `dataset=${d.dataset}/`].map((prefix) =>
        readExposures({ dir: options.predictionsDir, prefix, experiment: d.name, from, to: now }),
      ),
    )
  ).flat();
  const labels = await readLabels(deps.warehouse, source, options.piiKey);
  const observations = joinOutcomes(exposures, labels, source);
  return analyseExperiment(d, observations, {
    now,
    startedAt: from,
    costs: errorCosts(contract),
    ...carriedOver(run),
    ...(options.resamples !== undefined ? { resamples: options.resamples } : {}),
  });
}

async function runningExperiment(
  mlflow: MlflowClient,
  name: string,
  mlflowExperiment: string | undefined,
): Promise<{ stored: StoredExperiment; run: Run }> {
  const found = await findExperiment(mlflow, name, mlflowExperiment ?? AB_MLFLOW_EXPERIMENT);
  if (!found)
    throw new DriftwoodError(
      'DATA_MISSING',
      `experiment '${name}' is not declared (declare it with PUT /v1/admin/experiments/${name})`,
    );
  return found;
}

/**
 * Whether a look as of `asOf` is due. The always-valid p-value is honest about the number of looks
 * only if each look is counted once: a look as of a time the latest look already covered (a re-run
 * of the same logical date, or of an earlier one) adds none. Pure.
 */
export function lookDue(
  stored: Pick<StoredExperiment, 'started_at' | 'analysis'>,
  asOf: number,
): { due: true } | { due: false; reason: string } {
  const at = new Date(asOf).toISOString();
  if (asOf < Date.parse(stored.started_at))
    return { due: false, reason: `it started at ${stored.started_at}, after ${at}` };
  const last = stored.analysis;
  if (last && Date.parse(last.analysed_at) >= asOf)
    return {
      due: false,
      reason: `look ${last.look} was as of ${last.analysed_at}; a look as of ${at} would count the same labels again`,
    };
  return { due: true };
}

export interface ExperimentLook {
  experiment: string;
  /** Whether this call added a look (false: the latest look already covered the time). */
  looked: boolean;
  reason: string;
  /** This look's analysis, or the latest one when none was due. */
  analysis: ExperimentAnalysis | null;
  /** What became of a `promote` decision (absent for the other decisions). */
  action?: { state: ActionState; version: string; detail: string };
}

export interface ExperimentLooksOptions extends Omit<ExperimentAnalysisOptions, 'experiment' | 'now'> {
  /** The experiments to look at: these by name, or every running one of `dataset`. */
  experiments?: string[];
  dataset?: string;
  /** The time the look is as of (a DAG run's logical date): the log is read up to it. */
  asOf: number;
  action?: ActionOptions;
}

export interface ExperimentLooksDeps extends ExperimentAnalysisDeps {
  log: Logger;
  now: () => number;
}

export interface ExperimentLooksResult {
  dataset: string | null;
  as_of: string;
  looks: ExperimentLook[];
}

/**
 * The daily look (the `<dataset>_experiments` DAG): every running experiment of the dataset is
 * looked at once per `asOf`, its decision recorded; a `promote` decision of an experiment declared
 * with `on_decision: promote` then moves `champion` through the promotion gate (action.ts). An
 * experiment whose promotion was decided but not yet applied (a failed try) is taken up again.
 */
export async function runExperimentLooks(
  options: ExperimentLooksOptions,
  deps: ExperimentLooksDeps,
): Promise<ExperimentLooksResult> {
  const { mlflow } = deps;
  const mlflowExperiment = options.mlflowExperiment ?? AB_MLFLOW_EXPERIMENT;
  let targets: StoredExperiment[];
  if (options.experiments) {
    targets = [];
    for (const name of options.experiments)
      targets.push((await runningExperiment(mlflow, name, mlflowExperiment)).stored);
  } else if (options.dataset) {
    const of = { dataset: options.dataset, mlflowExperiment };
    targets = [
      ...(await listExperiments(mlflow, { ...of, action: 'pending' })),
      ...(await listExperiments(mlflow, { ...of, status: 'running' })),
    ];
  } else
    throw new DriftwoodError('USAGE', 'name the experiments or the dataset whose running ones to look at');
  const looks: ExperimentLook[] = [];
  for (const target of targets) looks.push(await lookAt(target, options, deps));
  return { dataset: options.dataset ?? null, as_of: new Date(options.asOf).toISOString(), looks };
}

const actionOf = (r: ActionResult) => ({ state: r.state, version: r.version, detail: r.detail });

async function lookAt(
  target: StoredExperiment,
  options: ExperimentLooksOptions,
  deps: ExperimentLooksDeps,
): Promise<ExperimentLook> {
  const name = target.declaration.name;
  const apply = async (stored: StoredExperiment) =>
    actionOf(await applyPromotion(stored, options.action ?? {}, deps));
  if (target.action === 'pending')
    return {
      experiment: name,
      looked: false,
      reason: `its ${target.analysis?.decision} decision was recorded; applying it`,
      analysis: target.analysis ?? null,
      action: await apply(target),
    };
  if (target.status !== 'running')
    throw new DriftwoodError(
      'USAGE',
      `experiment '${name}' is ${target.status}; only a running one is analysed`,
    );
  const due = lookDue(target, options.asOf);
  if (!due.due)
    return {
      experiment: name,
      looked: false,
      reason: `no new look: ${due.reason}`,
      analysis: target.analysis ?? null,
    };
  const { stored, run } = await runningExperiment(deps.mlflow, name, options.mlflowExperiment);
  const analysis = await analyseStored(stored, run, { ...options, experiment: name }, deps, options.asOf);
  const plan = planAction(stored, analysis);
  await recordAnalysis(
    deps.mlflow,
    stored.run_id,
    analysis,
    plan ? { [TAG.action]: plan.state, [TAG.actionDetail]: plan.detail } : {},
  );
  const look: ExperimentLook = {
    experiment: name,
    looked: true,
    reason: analysis.reason,
    analysis,
  };
  if (plan?.state === 'recorded') {
    await recordAction(deps.mlflow, stored, 'recorded', plan.detail);
    look.action = { state: 'recorded', version: plan.version, detail: plan.detail };
  } else if (plan?.state === 'pending')
    look.action = await apply({ ...stored, analysis, status: 'decided', action: 'pending' });
  return look;
}
