import { DriftwoodError } from '../errors.js';
import type { CalibrationMethod } from '../models/calibration.js';
import type { ThresholdObjective } from '../models/metrics.js';
import type { ModelRequest } from '../models/params.js';
import type { Contract, TableContract } from './types.js';

/**
 * Everything a step needs to know of a dataset beyond its tables, read from its contract with
 * defaults derived from the dataset's name — never from another dataset's.
 */
export interface DatasetSettings {
  dataset: string;
  /** The registered model in MLflow (`model.name`, default: the dataset's name). */
  modelName: string;
  /** The MLflow experiment of its runs (`model.experiment`, default: `driftwood-<dataset>`). */
  experiment: string;
  /** The column that names an entity in snapshots, features and the prediction log. */
  idColumn: string;
  /** The name of the label the model predicts. */
  target: string;
  /** How far past the cutoff a label looks (activity builders); 0 when the label is a column of the row. */
  horizonHours: number;
  /** How late labels arrive: the newest usable cutoff is this much older. */
  labelDelayHours: number;
  /**
   * Shares of the rows held out for validation and for the final test (the holdout), and how rows
   * are shared out: `hash` of the id (the default), or `time` (the newest rows are the test part;
   * a forecast's windows are always time-ordered).
   */
  split: { validation: number; test: number; strategy: 'hash' | 'time' };
  /**
   * The model train fits when no flag says otherwise (`training.model`: kind and hyper-parameters);
   * empty when the contract names none (then `auto`: the best candidate on validation, train/select.ts).
   */
  model: ModelRequest;
  /** How the model's scores become probabilities, fitted on validation (`training.calibration`, default platt). */
  calibration: CalibrationMethod;
  /** What the decision threshold optimises on validation (`training.threshold`, default F1). */
  threshold: ThresholdObjective;
}

const DEFAULT_SPLIT = { validation: 0.15, test: 0.2, strategy: 'hash' } as const;

function targetTable(contract: Contract): TableContract | undefined {
  return contract.tables.find((t) => t.columns.some((c) => c.role === 'target'));
}

export function datasetSettings(contract: Contract): DatasetSettings {
  const bad = (msg: string): never => {
    throw new DriftwoodError('CONFIG_INVALID', `contract ${contract.dataset}: ${msg}`);
  };
  const training = contract.training ?? {};
  const forecast = contract.forecast;
  const table = targetTable(contract);
  const idColumn =
    training.id_column ??
    (forecast ? forecast.time_column : table?.key) ??
    bad('name the id column in training.id_column');
  const target =
    training.target ??
    forecast?.target ??
    table?.columns.find((c) => c.role === 'target')?.name ??
    bad('name the label in training.target');
  // An activity builder labels a row by what happens after the cutoff: the window must be declared.
  const horizonHours =
    training.horizon_hours ??
    forecast?.horizon_hours ??
    (contract.builder === 'churn_activity'
      ? bad(`builder '${contract.builder}' needs training.horizon_hours`)
      : 0);
  return {
    dataset: contract.dataset,
    modelName: contract.model?.name ?? contract.dataset,
    experiment: contract.model?.experiment ?? `driftwood-${contract.dataset}`,
    idColumn,
    target,
    horizonHours,
    labelDelayHours: training.label_delay_hours ?? 0,
    split: {
      validation: training.split?.validation ?? forecast?.split?.validation ?? DEFAULT_SPLIT.validation,
      test: training.split?.test ?? forecast?.split?.test ?? DEFAULT_SPLIT.test,
      strategy: training.split?.strategy ?? (forecast ? 'time' : DEFAULT_SPLIT.strategy),
    },
    model: {
      ...(training.model?.kind ? { kind: training.model.kind } : {}),
      ...(training.model?.params ?? {}),
    },
    calibration: training.calibration ?? 'platt',
    threshold:
      training.threshold?.objective === 'cost'
        ? {
            objective: 'cost',
            // validateContract requires both; a contract object built in code may still lack one.
            falsePositiveCost:
              training.threshold.false_positive_cost ?? bad('training.threshold needs false_positive_cost'),
            falseNegativeCost:
              training.threshold.false_negative_cost ?? bad('training.threshold needs false_negative_cost'),
          }
        : { objective: 'f1' },
  };
}
