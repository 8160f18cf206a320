/** The parts of MLflow's REST entities that Driftwood reads (mlflow/protos/service.proto, model_registry.proto). */
export interface KeyValue {
  key: string;
  value: string;
}

export interface Metric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: string;
  tags?: KeyValue[];
}

export interface Run {
  info: { run_id: string; experiment_id: string; run_name?: string; status: string; artifact_uri: string };
  data: { metrics?: (Metric & { key: string })[]; params?: KeyValue[]; tags?: KeyValue[] };
  inputs?: { dataset_inputs?: { dataset: { name: string; digest: string; source: string } }[] };
  outputs?: { model_outputs?: { model_id: string; step: number }[] };
}

export interface DatasetInput {
  tags: KeyValue[];
  dataset: {
    name: string;
    digest: string;
    source_type: string;
    source: string;
    schema?: string;
    profile?: string;
  };
}

export interface ArtifactFile {
  path: string;
  is_dir: boolean;
  file_size?: number | string;
}

export interface LoggedModel {
  info: {
    model_id: string;
    experiment_id: string;
    name: string;
    artifact_uri: string;
    status: string;
    source_run_id?: string;
  };
}

export interface ModelVersion {
  name: string;
  version: string;
  source: string;
  run_id?: string;
  model_id?: string;
  status: 'PENDING_REGISTRATION' | 'FAILED_REGISTRATION' | 'READY';
  status_message?: string;
  storage_location?: string;
  aliases?: string[];
  tags?: KeyValue[];
  creation_timestamp?: number;
}

export interface RegisteredModel {
  name: string;
  tags?: KeyValue[];
  aliases?: { alias: string; version: string }[];
  latest_versions?: ModelVersion[];
}
