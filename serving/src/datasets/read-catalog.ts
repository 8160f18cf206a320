import { type Config, datasetSettings, loadAllContracts } from '@driftwood/tasks';
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
    const dataset = config.dataset ?? config.mlflow.modelName;
    const forecast = config.serving.forecastModel;
    return {
      datasets: [
        { dataset, kind: 'tabular', modelName: config.mlflow.modelName },
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
      defaultModelName: config.mlflow.modelNameSet ? config.mlflow.modelName : undefined,
      forecastModelName: config.serving.forecastModel,
    },
  );
}
