import type { KindChoice, ModelParams } from '../models/params.js';
/** A dataset contract (contracts/<dataset>.yaml), as validated by contracts/contract.schema.json. */
export type ColumnType = 'string' | 'integer' | 'number' | 'boolean' | 'timestamp';
export type ColumnRole = 'id' | 'timestamp' | 'feature' | 'target' | 'pii';
export type AnomalyPolicy =
  | 'coerce'
  | 'drop_row'
  | 'quarantine_file'
  | { default: string | number | boolean | null };

export interface ColumnContract {
  name: string;
  type: ColumnType;
  role: ColumnRole;
  nullable?: boolean;
  allowed?: (string | number | boolean)[];
  range?: { min?: number; max?: number };
  /** The warehouse column, when it differs from the raw name (PII is stored as a token). */
  store_as?: string;
  on_anomaly?: AnomalyPolicy;
  /** For a classification target: the value that means the positive class (1). */
  positive?: string | number | boolean;
}

export interface TableContract {
  name: string;
  /** File names inside an hourly partition that hold this table's rows. */
  files: string[];
  key: string;
  /** Column lists the warehouse indexes when it creates the table. */
  indexes?: string[][];
  columns: ColumnContract[];
}

export interface FileRules {
  extra_columns: 'accept' | 'reject';
  missing_column: 'quarantine_file';
  type_change: 'quarantine_file' | 'per_column';
  type_change_share: number;
}

/** How the time_windows builder reads a sequence_forecast dataset (the contract's `forecast` section). */
export interface ForecastSettings {
  table: string;
  time_column: string;
  target: string;
  window_hours?: number;
  horizon_hours?: number;
  moving_average_hours?: number;
  split?: { validation?: number; test?: number };
  /** The share by which a challenger's test RMSE must undercut the persistence forecast's (default 0.01). */
  persistence_margin?: number;
}

/** How a price source's records map onto the contract's columns (the contract's `source` section). */
export interface SourceSettings {
  /** The source's name of a contract column, where they differ (`close: c`). */
  columns?: Record<string, string>;
  /** What a numeric time counts: `s`, `ms`, or `auto` (by magnitude; the default). */
  time_unit?: 'auto' | 's' | 'ms';
}

/** Where a dataset's runs and versions live in MLflow (the contract's `model` section). */
export interface ModelSettings {
  name?: string;
  experiment?: string;
}

/** How a tabular dataset becomes training rows (the contract's `training` section). */
export interface TrainingSettings {
  id_column?: string;
  target?: string;
  horizon_hours?: number;
  label_delay_hours?: number;
  split?: { validation?: number; test?: number; strategy?: 'hash' | 'time' };
  /** How scores become probabilities, fitted on validation (default platt). */
  calibration?: 'platt' | 'isotonic' | 'none';
  /** What the decision threshold optimises on validation (default f1). */
  threshold?: { objective: 'f1' | 'cost'; false_positive_cost?: number; false_negative_cost?: number };
  /** The model train fits when no flag says otherwise (kind or `auto`, and hyper-parameters by name). */
  model?: { kind?: KindChoice; params?: Partial<Omit<ModelParams, 'kind'>> };
}

/** One of the dataset's DAGs (the contract's `orchestration` section; read by dags/driftwood_dags.py). */
export interface DagSettings {
  dag_id?: string;
  schedule?: string | null;
  steps?: string[];
  on_new_data?: boolean;
  on_drift?: boolean;
  enabled?: boolean;
}

export interface Contract {
  dataset: string;
  version: number;
  description?: string;
  task: 'binary_classification' | 'regression' | 'sequence_forecast';
  builder: 'columns' | 'churn_activity' | 'time_windows';
  alert_threshold: number;
  file_rules: FileRules;
  tables: TableContract[];
  forecast?: ForecastSettings;
  source?: SourceSettings;
  model?: ModelSettings;
  training?: TrainingSettings;
  orchestration?: { pipeline?: DagSettings; retrain?: DagSettings };
  /** sha256 of the contract file's bytes: recorded with every load and snapshot. */
  digest: string;
}
