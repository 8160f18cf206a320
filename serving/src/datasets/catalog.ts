/**
 * Which datasets one API process serves, read from the contracts folder: every binary
 * classification contract is served as a tabular model (`POST /v1/datasets/<name>/predict`), every
 * sequence forecast as a forecast model (`POST /v1/datasets/<name>/forecast`). Pure: the contracts
 * come in already read, so the choice is table-tested without a folder.
 */
export type DatasetKind = 'tabular' | 'forecast';

export interface ServedDataset {
  dataset: string;
  kind: DatasetKind;
  /** The registered model whose champion answers for the dataset. */
  modelName: string;
  /** The column naming a row (routes the canary split; tokenised in the log, never a feature). */
  idColumn?: string;
}

/** What a contract tells the catalog: its name, task and registered model (`datasetSettings`). */
export interface DatasetDeclaration {
  dataset: string;
  task: 'binary_classification' | 'regression' | 'sequence_forecast';
  modelName: string;
  idColumn?: string;
}

export interface CatalogOptions {
  /** DRIFTWOOD_DATASET: the dataset `/v1/predict` means. */
  defaultDataset?: string;
  /** DRIFTWOOD_MODEL_NAME when set: the default dataset's model, not every dataset's. */
  defaultModelName?: string;
  /** DRIFTWOOD_FORECAST_MODEL: the model of the only forecast dataset; `off` serves no forecast. */
  forecastModelName?: string;
}

export interface Catalog {
  datasets: ServedDataset[];
  /** The dataset the unprefixed routes (`/v1/predict`, `/v1/model`) answer for. */
  defaultDataset: string | undefined;
  /** Why there is no default dataset, naming the choice; undefined when there is one. */
  noDefault: string | undefined;
}

const kindOf = (task: DatasetDeclaration['task']): DatasetKind | undefined =>
  task === 'binary_classification' ? 'tabular' : task === 'sequence_forecast' ? 'forecast' : undefined;

/**
 * The served datasets and the default one: DRIFTWOOD_DATASET when set (it must be a served tabular
 * dataset), else the only tabular dataset when there is exactly one. Regression contracts are not
 * served yet (no model kind answers for them).
 */
export function planCatalog(declared: DatasetDeclaration[], opts: CatalogOptions = {}): Catalog {
  const forecasts = declared.filter((d) => kindOf(d.task) === 'forecast');
  const datasets: ServedDataset[] = [];
  for (const d of declared) {
    const kind = kindOf(d.task);
    if (kind === 'tabular')
      datasets.push({
        dataset: d.dataset,
        kind,
        modelName: d.modelName,
        ...(d.idColumn ? { idColumn: d.idColumn } : {}),
      });
    else if (kind === 'forecast' && opts.forecastModelName !== 'off')
      datasets.push({
        dataset: d.dataset,
        kind,
        modelName: forecasts.length === 1 && opts.forecastModelName ? opts.forecastModelName : d.modelName,
      });
  }
  const tabular = datasets.filter((d) => d.kind === 'tabular');
  const names = tabular.map((d) => d.dataset).join(', ') || 'none';
  let defaultDataset: string | undefined;
  let noDefault: string | undefined;
  if (opts.defaultDataset !== undefined) {
    if (tabular.some((d) => d.dataset === opts.defaultDataset)) defaultDataset = opts.defaultDataset;
    else
      noDefault = `DRIFTWOOD_DATASET=${opts.defaultDataset} is not a served classification dataset (served: ${names})`;
  } else if (tabular.length === 1) defaultDataset = tabular[0]?.dataset;
  else
    noDefault = `no default dataset: set DRIFTWOOD_DATASET to one of ${names}, or call /v1/datasets/<dataset>/…`;
  if (defaultDataset !== undefined && opts.defaultModelName !== undefined)
    for (const d of datasets) if (d.dataset === defaultDataset) d.modelName = opts.defaultModelName;
  return { datasets, defaultDataset, noDefault };
}
