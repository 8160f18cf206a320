import { type Config, experimentFor, modelNameFor } from '../config.js';
import { datasetSettings } from '../contracts/settings.js';
import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Warehouse } from '../warehouse/db.js';
import type { LstmParams } from './lstm.js';

type Values = Record<string, string | boolean | undefined>;

/**
 * The `train` and `promote` commands for a sequence_forecast dataset. The registered model and the
 * experiment are the contract's (`model`, default: the dataset's name and `driftwood-<dataset>`),
 * unless DRIFTWOOD_MODEL_NAME / DRIFTWOOD_EXPERIMENT are set for it (config.ts: modelNameFor).
 */

const whole = (v: Values, flag: string): number | undefined => {
  const raw = v[flag];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^\d+$/.test(raw))
    throw new DriftwoodError('USAGE', `--${flag}: expected a whole number, got '${String(raw)}'`);
  return Number(raw);
};

/** LSTM hyper-parameters from train's flags (--hidden-units N sets the LSTM's units). */
export function lstmParamsFromFlags(v: Values): Partial<LstmParams> {
  const out: Partial<LstmParams> = {};
  const set = <K extends keyof LstmParams>(k: K, value: LstmParams[K] | undefined) => {
    if (value !== undefined) out[k] = value;
  };
  set('seed', whole(v, 'seed'));
  set('epochs', whole(v, 'epochs'));
  set('batchSize', whole(v, 'batch-size'));
  set('patience', whole(v, 'patience'));
  set('units', whole(v, 'hidden-units'));
  const lr = v['learning-rate'];
  if (lr !== undefined) {
    const n = Number(lr);
    if (typeof lr !== 'string' || !Number.isFinite(n))
      throw new DriftwoodError('USAGE', `--learning-rate: expected a number, got '${String(lr)}'`);
    out.learningRate = n;
  }
  const unsupported = ['model', 'solver', 'l2', 'no-class-weights', 'no-monotonic'].filter(
    (f) => v[f] !== undefined,
  );
  if (unsupported.length > 0)
    throw new DriftwoodError(
      'USAGE',
      `${unsupported.map((f) => `--${f}`).join(', ')}: not used by the forecast (LSTM) training`,
    );
  return out;
}

/** The candles of the snapshot `--snapshot` or `--snapshot-as-of` names (see snapshot/ref.ts). */
async function snapshotCandles(
  config: Config,
  log: Logger,
  db: Warehouse,
  values: Values,
  contract: Contract,
) {
  const { readSnapshotCandles } = await import('../snapshot/index.js');
  const { snapshotFromArgs } = await import('../snapshot/ref.js');
  const found = await snapshotFromArgs(config, log, db, values, contract.dataset, datasetSettings(contract));
  if (!found) return {};
  const { manifest, lake } = found;
  return {
    snapshot: { manifest, candles: await readSnapshotCandles(lake, manifest), lakeUri: config.lakeUri },
  };
}

export async function forecastTrainCommand(config: Config, log: Logger, values: Values, contract: Contract) {
  const { openWarehouse } = await import('../warehouse/db.js');
  const { MlflowClient } = await import('../mlflow/client.js');
  const { gitCommit, currentUser, packageVersions } = await import('../source.js');
  const { readContractSource } = await import('../train/contract.js');
  const { parseTime } = await import('../time.js');
  const { runForecastTrain } = await import('./train.js');
  const params = lstmParamsFromFlags(values);
  const contractSource = await readContractSource(contract.dataset, config.contractsDir);
  const db = await openWarehouse(config.warehouseUrl);
  try {
    return await runForecastTrain(
      {
        contract,
        experiment: experimentFor(config, datasetSettings(contract)),
        modelName: modelNameFor(config, datasetSettings(contract)),
        ...(typeof values.cutoff === 'string' ? { cutoff: parseTime(values.cutoff, '--cutoff') } : {}),
        ...(await snapshotCandles(config, log, db, values, contract)),
        params,
      },
      {
        db,
        mlflow: new MlflowClient(config.mlflow.trackingUri, config.http),
        log,
        now: Date.now,
        source: { commit: gitCommit(), user: currentUser(), packages: packageVersions() },
        ...(contractSource ? { contractSource } : {}),
      },
    );
  } finally {
    await db.destroy();
  }
}

export async function forecastPromoteCommand(
  config: Config,
  log: Logger,
  values: Values,
  contract: Contract,
) {
  const { MlflowClient } = await import('../mlflow/client.js');
  const { currentUser } = await import('../source.js');
  const { runForecastPromote } = await import('./evaluate.js');
  const { forecastConfig } = await import('./settings.js');
  return runForecastPromote(
    {
      modelName: modelNameFor(config, datasetSettings(contract)),
      ...(typeof values.version === 'string' ? { version: values.version } : {}),
      alias: typeof values.alias === 'string' ? values.alias : 'champion',
      // The margin over persistence is the contract's (forecast.persistence_margin, default 1%).
      policy: { minImprovement: forecastConfig(contract).persistenceMargin },
    },
    {
      mlflow: new MlflowClient(config.mlflow.trackingUri, config.http),
      log,
      now: Date.now,
      user: currentUser(),
    },
  );
}
