import type { Knex } from 'knex';
import { datasetSettings } from '../contracts/settings.js';
import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import type { MlflowClient } from '../mlflow/client.js';
import { analyseExperiment, type ExperimentAnalysis } from './analyse.js';
import { joinOutcomes, labelSource, readExposures, readLabels } from './observations.js';
import type { ErrorCosts } from './outcomes.js';
import { AB_MLFLOW_EXPERIMENT, carriedOver, findExperiment, recordAnalysis } from './record.js';

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

/**
 * One look at a running experiment: its customers' first predictions from the log, their outcomes
 * from the warehouse's labels, the analysis and decision, recorded on the experiment's MLflow run.
 * Run it as often as labels arrive (daily): the test stays valid however often it looks.
 */
export async function runExperimentAnalysis(
  options: ExperimentAnalysisOptions,
  deps: ExperimentAnalysisDeps,
): Promise<ExperimentAnalysis> {
  const now = options.now ?? Date.now();
  const found = await findExperiment(
    deps.mlflow,
    options.experiment,
    options.mlflowExperiment ?? AB_MLFLOW_EXPERIMENT,
  );
  if (!found)
    throw new DriftwoodError(
      'DATA_MISSING',
      `experiment '${options.experiment}' is not declared (declare it with PUT /v1/admin/experiments/${options.experiment})`,
    );
  const { stored, run } = found;
  if (stored.status !== 'running')
    throw new DriftwoodError(
      'USAGE',
      `experiment '${options.experiment}' is ${stored.status}; only a running one is analysed`,
    );
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
  const analysis = analyseExperiment(d, observations, {
    now,
    startedAt: from,
    costs: errorCosts(contract),
    ...carriedOver(run),
    ...(options.resamples !== undefined ? { resamples: options.resamples } : {}),
  });
  await recordAnalysis(deps.mlflow, stored.run_id, analysis);
  return analysis;
}
