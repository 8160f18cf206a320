import { type Config, modelNameFor } from '../config.js';
import { datasetSettings } from '../contracts/settings.js';
import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import { openObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import { MlflowClient } from '../mlflow/client.js';
import { parseTime } from '../time.js';
import type { Warehouse } from '../warehouse/db.js';
import { runScore, SCORE_STAGES, type ScoreResult, type ScoreStage } from './index.js';

type Values = Record<string, string | boolean | undefined>;

/**
 * `driftwood score --dataset D --as-of T [--alias champion] [--stage all|inputs|publish]`: the batch
 * scoring step (docs/scoring.md). The model is the contract's (or DRIFTWOOD_MODEL_NAME's).
 */
export async function scoreCommand(
  config: Config,
  log: Logger,
  values: Values,
  contract: Contract,
  db: Warehouse,
): Promise<ScoreResult> {
  if (contract.task === 'sequence_forecast')
    throw new DriftwoodError(
      'USAGE',
      `dataset ${contract.dataset} is a sequence forecast: batch scoring takes a tabular dataset`,
    );
  const asOf = values['as-of'];
  if (typeof asOf !== 'string') throw new DriftwoodError('USAGE', '--as-of is required (an ISO time)');
  const stage = typeof values.stage === 'string' ? values.stage : 'all';
  if (!(SCORE_STAGES as readonly string[]).includes(stage))
    throw new DriftwoodError('USAGE', `--stage: expected one of ${SCORE_STAGES.join(', ')}, got '${stage}'`);
  return runScore(
    {
      dataset: contract.dataset,
      modelName: modelNameFor(config, datasetSettings(contract)),
      alias: typeof values.alias === 'string' ? values.alias : 'champion',
      asOf: parseTime(asOf, '--as-of'),
      stage: stage as ScoreStage,
      piiKey: config.piiKey,
      ...(config.contractsDir ? { contractsDir: config.contractsDir } : {}),
    },
    {
      db,
      lake: openObjectStore(config.lakeUri, config.s3),
      mlflow: new MlflowClient(config.mlflow.trackingUri, config.http),
      log,
    },
  );
}
