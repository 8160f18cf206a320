import {
  type Config,
  DEFAULT_CONTRACTS_DIR,
  DriftwoodError,
  datasetSettings,
  loadAllContracts,
} from '@driftwood/tasks';
import { type Catalog, planCatalog } from './catalog.js';

/**
 * The datasets of the contracts folder this process serves. DRIFTWOOD_MODEL_NAME names the default
 * dataset's model only (two datasets never share one); DRIFTWOOD_FORECAST_MODEL the forecast one's.
 * Without any contract (an image that ships none), DRIFTWOOD_MODEL_NAME's model and
 * DRIFTWOOD_FORECAST_MODEL's are served as they were before datasets were named.
 */
export async function readCatalog(
  config: Pick<Config, 'contractsDir' | 'dataset' | 'mlflow' | 'serving'>,
): Promise<Catalog> {
  const contracts = await loadAllContracts(config.contractsDir);
  if (contracts.length === 0) {
    const model = config.mlflow.modelName;
    if (model === undefined)
      throw new DriftwoodError(
        'CONFIG_INVALID',
        `no dataset contracts in ${config.contractsDir ?? DEFAULT_CONTRACTS_DIR}: add one, or set DRIFTWOOD_MODEL_NAME to the model to serve`,
      );
    const dataset = config.dataset ?? model;
    const forecast = config.serving.forecastModel === 'off' ? undefined : config.serving.forecastModel;
    return {
      datasets: [
        { dataset, kind: 'tabular', modelName: model },
        ...(forecast ? [{ dataset: forecast, kind: 'forecast' as const, modelName: forecast }] : []),
      ],
      defaultDataset: dataset,
      noDefault: undefined,
    };
  }
  return planCatalog(
    contracts.map((c) => {
      const settings = datasetSettings(c);
      return { dataset: c.dataset, task: c.task, modelName: settings.modelName, idColumn: settings.idColumn };
    }),
    {
      defaultDataset: config.dataset,
      ...(config.mlflow.modelName !== undefined ? { defaultModelName: config.mlflow.modelName } : {}),
      ...(config.serving.forecastModel !== undefined
        ? { forecastModelName: config.serving.forecastModel }
        : {}),
    },
  );
}
