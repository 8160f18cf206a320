import { createHash } from 'node:crypto';
import { DriftwoodError } from '../errors.js';
import {
  buildChurnRows,
  CHURN_CATEGORICAL,
  CHURN_NUMERIC,
  defaultCutoff,
} from '../features/churn-builder.js';
import { fitTransform, transformRows } from '../features/transform.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { Metric } from '../mlflow/types.js';
import { saveModelFiles } from '../models/artifact.js';
import { type LogisticParams, predictProba, trainLogistic } from '../models/logistic.js';
import { type BinaryMetrics, binaryMetrics } from '../models/metrics.js';
import { initTf } from '../models/tf.js';
import type { Warehouse } from '../warehouse/db.js';
import { mlmodelYaml } from './mlmodel.js';
import { splitOf } from './split.js';

export interface TrainOptions {
  dataset: string;
  experiment: string;
  modelName: string;
  cutoff?: number;
  horizonHours: number;
  labelDelayHours: number;
  params: LogisticParams;
  holdoutFraction: number;
  validationFraction: number;
}

export interface TrainDeps {
  db: Warehouse;
  mlflow: MlflowClient;
  log: Logger;
  now: () => number;
  /** Source identity recorded on the run: git commit and the versions that trained it. */
  source: { commit: string | undefined; user: string; packages: Record<string, string> };
}

export interface TrainResult {
  runId: string;
  experimentId: string;
  modelId: string;
  modelName: string;
  modelVersion: string;
  backend: string;
  cutoff: string;
  rows: { train: number; validation: number; holdout: number; positives: number };
  metrics: BinaryMetrics;
  dataDigest: string;
}

/**
 * Builds point-in-time features, fits the transform on the training split, trains a TF.js logistic
 * regression, evaluates it on the holdout and records all of it in MLflow: params, per-epoch
 * metrics, the data as a dataset input, the model (an MLflow logged model with an MLmodel file and
 * the fitted transform) and a registered model version with the alias `challenger`.
 */
export async function runTrain(options: TrainOptions, deps: TrainDeps): Promise<TrainResult> {
  const backend = await initTf(deps.log);
  const cutoff =
    options.cutoff ?? (await defaultCutoff(deps.db, options.horizonHours, options.labelDelayHours));
  if (cutoff === undefined)
    throw new DriftwoodError(
      'DATA_MISSING',
      `no events in the warehouse for '${options.dataset}': run 'driftwood ingest' first`,
    );
  const t0 = performance.now();
  const rows = await buildChurnRows(deps.db, cutoff, options.horizonHours);
  deps.log.info(
    { rows: rows.length, cutoff: new Date(cutoff).toISOString(), ms: Math.round(performance.now() - t0) },
    'train: features built',
  );
  const positives = rows.reduce((a, r) => a + r.label, 0);
  if (rows.length < 50 || positives < 5 || positives === rows.length) {
    throw new DriftwoodError(
      'DATA_MISSING',
      `too little data to train as of ${new Date(cutoff).toISOString()}: ${rows.length} customers, ${positives} churned (need 50+ and 5+ of each class)`,
    );
  }

  const fractions = { holdout: options.holdoutFraction, validation: options.validationFraction };
  const parts = { train: [] as typeof rows, validation: [] as typeof rows, holdout: [] as typeof rows };
  for (const r of rows) parts[splitOf(r.customerId, options.params.seed, fractions)].push(r);
  const state = fitTransform(
    parts.train.map((r) => r.features),
    { numeric: CHURN_NUMERIC, categorical: CHURN_CATEGORICAL },
  );
  const width = state.outputs.length;
  const matrix = (rs: typeof rows) => ({
    x: transformRows(
      state,
      rs.map((r) => r.features),
    ),
    y: Float32Array.from(rs, (r) => r.label),
  });
  const train = matrix(parts.train);
  const validation = matrix(parts.validation);
  const holdout = matrix(parts.holdout);
  const dataDigest = createHash('sha256').update(JSON.stringify(rows)).digest('hex');

  const experimentId = await deps.mlflow.ensureExperiment(options.experiment);
  const started = deps.now();
  const runName = `train-${options.dataset}-${new Date(started).toISOString().replace(/[:.]/g, '-')}`;
  const run = await deps.mlflow.createRun({
    experimentId,
    runName,
    startTime: started,
    tags: {
      'mlflow.user': deps.source.user,
      'mlflow.source.type': 'JOB',
      'mlflow.source.name': 'driftwood train',
      ...(deps.source.commit ? { 'mlflow.source.git.commit': deps.source.commit } : {}),
      'driftwood.dataset': options.dataset,
      'driftwood.backend': backend,
      'driftwood.cutoff': new Date(cutoff).toISOString(),
      'driftwood.data_digest': dataDigest,
    },
  });
  const runId = run.info.run_id;
  deps.log.info({ runId, runName, experimentId }, 'train: MLflow run started');
  try {
    await deps.mlflow.logBatch(runId, {
      params: {
        model: 'logistic_regression',
        ...options.params,
        horizon_hours: options.horizonHours,
        cutoff: new Date(cutoff).toISOString(),
        holdout_fraction: options.holdoutFraction,
        validation_fraction: options.validationFraction,
        features_in: CHURN_NUMERIC.length + CHURN_CATEGORICAL.length,
        features_out: width,
        rows_train: parts.train.length,
      },
    });
    await deps.mlflow.logInputs(runId, [
      {
        tags: [{ key: 'mlflow.data.context', value: 'training' }],
        dataset: {
          name: `${options.dataset}-features`,
          digest: dataDigest.slice(0, 36),
          source_type: 'local',
          source: JSON.stringify({
            uri: `warehouse://${options.dataset}?as_of=${new Date(cutoff).toISOString()}`,
          }),
          schema: JSON.stringify({
            mlflow_colspec: [
              ...CHURN_NUMERIC.map((name) => ({ type: 'double', name, required: false })),
              ...CHURN_CATEGORICAL.map((name) => ({ type: 'string', name, required: true })),
            ],
          }),
          profile: JSON.stringify({ num_rows: rows.length, positives }),
        },
      },
    ]);

    const epochMetrics: Metric[] = [];
    const tTrain = performance.now();
    const model = await trainLogistic(
      train.x,
      train.y,
      width,
      validation.x,
      validation.y,
      options.params,
      (m) => {
        const ts = deps.now();
        epochMetrics.push(
          { key: 'loss', value: m.loss, timestamp: ts, step: m.epoch },
          { key: 'val_loss', value: m.valLoss, timestamp: ts, step: m.epoch },
        );
      },
    );
    const trainMs = Math.round(performance.now() - tTrain);
    const metrics = binaryMetrics(predictProba(model, holdout.x, width), holdout.y);
    deps.log.info({ trainMs, ...metrics }, 'train: model evaluated on the holdout');
    const ts = deps.now();
    await deps.mlflow.logBatch(runId, {
      metrics: [
        ...epochMetrics,
        ...Object.entries(metrics).map(([key, value]) => ({
          key: `holdout_${key}`,
          value,
          timestamp: ts,
          step: 0,
        })),
        { key: 'train_seconds', value: trainMs / 1000, timestamp: ts, step: 0 },
      ],
    });

    const files = await saveModelFiles(model);
    model.dispose();
    const logged = await deps.mlflow.createLoggedModel({
      experimentId,
      name: options.modelName,
      sourceRunId: runId,
      modelType: 'tfjs-logistic-regression',
      params: Object.fromEntries(Object.entries(options.params).map(([k, v]) => [k, String(v)])),
    });
    const modelUri = logged.info.artifact_uri;
    const transformJson = `${JSON.stringify(state, null, 2)}\n`;
    await deps.mlflow.uploadArtifact(modelUri, 'model.json', files.modelJson);
    await deps.mlflow.uploadArtifact(modelUri, 'weights.bin', files.weights);
    await deps.mlflow.uploadArtifact(modelUri, 'transform.json', transformJson);
    await deps.mlflow.uploadArtifact(
      modelUri,
      'MLmodel',
      mlmodelYaml(state, logged.info.model_id, runId, new Date(ts)),
    );
    await deps.mlflow.finalizeLoggedModel(logged.info.model_id, 'LOGGED_MODEL_READY');
    await deps.mlflow.logModelOutput(runId, logged.info.model_id);
    // The run keeps its own copy of what reproduces it: the fitted transform and the package versions.
    await deps.mlflow.uploadArtifact(run.info.artifact_uri, 'transform.json', transformJson);
    await deps.mlflow.uploadArtifact(
      run.info.artifact_uri,
      'environment/packages.json',
      `${JSON.stringify(deps.source.packages, null, 2)}\n`,
    );

    await deps.mlflow.ensureRegisteredModel(options.modelName, `Driftwood ${options.dataset} model`);
    const mv = await deps.mlflow.createModelVersion({
      name: options.modelName,
      source: `models:/${logged.info.model_id}`,
      modelId: logged.info.model_id,
      runId,
      tags: { 'driftwood.holdout_roc_auc': String(metrics.roc_auc), 'driftwood.data_digest': dataDigest },
    });
    await deps.mlflow.waitForVersionReady(options.modelName, mv.version);
    await deps.mlflow.setAlias(options.modelName, 'challenger', mv.version);
    await deps.mlflow.finishRun(runId, 'FINISHED', deps.now());
    deps.log.info(
      { model: options.modelName, version: mv.version },
      'train: model version registered as challenger',
    );
    return {
      runId,
      experimentId,
      modelId: logged.info.model_id,
      modelName: options.modelName,
      modelVersion: mv.version,
      backend,
      cutoff: new Date(cutoff).toISOString(),
      rows: {
        train: parts.train.length,
        validation: parts.validation.length,
        holdout: parts.holdout.length,
        positives,
      },
      metrics,
      dataDigest,
    };
  } catch (err) {
    await deps.mlflow.finishRun(runId, 'FAILED', deps.now()).catch(() => undefined);
    throw err;
  }
}
