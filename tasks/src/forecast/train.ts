import { createHash } from 'node:crypto';
import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import type { Metric } from '../mlflow/types.js';
import { saveModelFiles } from '../models/artifact.js';
import { initTf } from '../models/tf.js';
import { type SnapshotManifest, snapshotDatasetInput } from '../snapshot/index.js';
import { HOUR_MS } from '../time.js';
import type { ContractSource } from '../train/contract.js';
import type { TrainDeps } from '../train/index.js';
import { CANDLE_COLUMNS, type Candle } from './candles.js';
import {
  DEFAULT_LSTM_PARAMS,
  type LstmEpoch,
  type LstmParams,
  predictScaled,
  trainLstm,
  validateLstmParams,
} from './lstm.js';
import {
  type ForecastMetrics,
  forecastMetrics,
  movingAverageForecast,
  persistenceForecast,
} from './metrics.js';
import { forecastFolderFiles } from './model-folder.js';
import { forecastPng } from './plot.js';
import { type ForecastConfig, forecastConfig } from './settings.js';
import {
  FORECAST_STATE_FILE,
  type ForecastState,
  fitScaling,
  scaleInputs,
  scaleTarget,
  unscaleTarget,
} from './state.js';
import {
  buildWindows,
  FEATURE_COUNT,
  loadCandles,
  splitByTime,
  WINDOW_FEATURES,
  type Window,
} from './windows.js';

export interface ForecastTrainOptions {
  contract: Contract;
  experiment: string;
  modelName: string;
  /** Train on candles closed by this time (default: every candle in the warehouse). */
  cutoff?: number;
  /** Train on a data snapshot's candles (and its cutoff) instead of reading the warehouse. */
  snapshot?: { manifest: SnapshotManifest; candles: Candle[]; lakeUri: string };
  params: Partial<LstmParams>;
}

/** The same clients, clock and source identity as the classifier's training. */
export type ForecastTrainDeps = Omit<TrainDeps, 'contract'> & { contractSource?: ContractSource };

export interface ForecastEvaluation {
  model: ForecastMetrics;
  persistence: ForecastMetrics;
  movingAverage: ForecastMetrics;
}

export interface ForecastTrainResult {
  runId: string;
  experimentId: string;
  modelId: string;
  modelName: string;
  modelVersion: string;
  modelKind: 'lstm';
  backend: string;
  cutoff: string;
  candles: number;
  windows: { train: number; validation: number; test: number; purged: number; droppedForGaps: number };
  testPeriod: { from: string; to: string };
  metrics: ForecastEvaluation;
  epochsRun: number;
  bestEpoch: number;
  trainSeconds: number;
  dataDigest: string;
}

/** The candle columns the time_windows builder reads; the contract's table must have them. */

function checkCandleTable(contract: Contract, cfg: ForecastConfig): void {
  const table = contract.tables.find((t) => t.name === cfg.table);
  const missing = CANDLE_COLUMNS.filter((c) => !table?.columns.some((col) => col.name === c));
  if (missing.length > 0 || cfg.timeColumn !== 'open_time' || cfg.target !== 'close')
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `contract ${contract.dataset}: the time_windows builder reads OHLCV candles (time_column open_time, target close; columns ${CANDLE_COLUMNS.join(', ')})${missing.length ? `: missing ${missing.join(', ')}` : ''}`,
    );
}

/** Model, persistence and moving-average forecasts of the windows' target closes, in price. */
export function evaluateForecasts(
  windows: readonly Window[],
  modelPrices: readonly number[],
  movingAverageHours: number,
): ForecastEvaluation {
  const actual = windows.map((w) => w.targetClose);
  const last = windows.map((w) => w.lastClose);
  return {
    model: forecastMetrics(actual, modelPrices, last),
    persistence: forecastMetrics(actual, persistenceForecast(windows), last),
    movingAverage: forecastMetrics(actual, movingAverageForecast(windows, movingAverageHours), last),
  };
}

/** Price forecasts of a model for windows: last close × exp(predicted log return). */
export function modelPrices(
  model: Parameters<typeof predictScaled>[0],
  state: ForecastState,
  windows: readonly Window[],
): number[] {
  const out = predictScaled(model, scaleInputs(state, windows), state.windowHours, FEATURE_COUNT);
  return windows.map((w, i) => w.lastClose * Math.exp(unscaleTarget(state, out[i] as number)));
}

/** The candles the test windows read, from the first one's inputs to the last one's target. */
export function testCandles(candles: readonly Candle[], test: readonly Window[]): Candle[] {
  const from = test[0]?.inputStart ?? 0;
  const to = test.at(-1)?.targetTime ?? 0;
  return candles.filter((c) => c.openTime >= from && c.openTime <= to);
}

/**
 * Trains the LSTM forecaster of a sequence_forecast dataset: candles from the warehouse up to the
 * cutoff, time windows of log changes, a time-ordered split with purged boundaries, scaling fitted on
 * the training part, early stopping on validation loss; then scores model, persistence and moving
 * average on the test part and records everything in MLflow, registering the model as `challenger`.
 */
export async function runForecastTrain(
  options: ForecastTrainOptions,
  deps: ForecastTrainDeps,
): Promise<ForecastTrainResult> {
  const cfg = forecastConfig(options.contract);
  checkCandleTable(options.contract, cfg);
  const params = validateLstmParams({ ...DEFAULT_LSTM_PARAMS, ...options.params });
  const backend = await initTf(deps.log);
  const snapshotCutoff = options.snapshot ? Date.parse(options.snapshot.manifest.cutoff) : undefined;
  const candles = options.snapshot?.candles ?? (await loadCandles(deps.db, options.cutoff, cfg.table));
  const dataset = options.contract.dataset;
  if (candles.length === 0)
    throw new DriftwoodError(
      'DATA_MISSING',
      `no candles in warehouse table '${cfg.table}'${options.cutoff ? ` before ${new Date(options.cutoff).toISOString()}` : ''}: run driftwood ingest --dataset ${dataset}`,
    );
  const cutoff = snapshotCutoff ?? options.cutoff ?? (candles.at(-1) as Candle).openTime + HOUR_MS;
  const cutoffIso = new Date(cutoff).toISOString();
  const { windows, droppedForGaps } = buildWindows(candles, cfg);
  const split = splitByTime(windows, { validation: cfg.validationFraction, test: cfg.testFraction });
  const state = fitScaling(split.train, cfg);
  const dataDigest = createHash('sha256').update(JSON.stringify(candles)).digest('hex');
  const { mlflow } = deps;
  const experimentId = await mlflow.ensureExperiment(options.experiment);
  const started = deps.now();
  const run = await mlflow.createRun({
    experimentId,
    runName: `train-${dataset}-lstm-${new Date(started).toISOString().replace(/[:.]/g, '-')}`,
    startTime: started,
    tags: {
      'mlflow.user': deps.source.user,
      'mlflow.source.type': 'JOB',
      'mlflow.source.name': 'driftwood train',
      ...(deps.source.commit ? { 'mlflow.source.git.commit': deps.source.commit } : {}),
      'mlflow.note.content': `Driftwood LSTM forecast of ${dataset} (${cfg.horizonHours} h ahead) on candles to ${cutoffIso} (seed ${params.seed}).`,
      'driftwood.dataset': dataset,
      'driftwood.task': 'sequence_forecast',
      'driftwood.model_kind': 'lstm',
      'driftwood.backend': backend,
      'driftwood.cutoff': cutoffIso,
      'driftwood.data_digest': dataDigest,
      ...(options.snapshot ? { 'driftwood.snapshot_id': options.snapshot.manifest.id } : {}),
      ...(deps.contractSource
        ? {
            'driftwood.contract_sha256': deps.contractSource.sha256,
            ...(deps.contractSource.version
              ? { 'driftwood.contract_version': deps.contractSource.version }
              : {}),
          }
        : {}),
    },
  });
  const runId = run.info.run_id;
  deps.log.info({ runId, experimentId, windows: windows.length }, 'train: forecast run started');
  try {
    await mlflow.logBatch(runId, {
      params: {
        model: 'lstm',
        units: params.units,
        epochs: params.epochs,
        batchSize: params.batchSize,
        learningRate: params.learningRate,
        patience: params.patience,
        seed: params.seed,
        window_hours: cfg.windowHours,
        horizon_hours: cfg.horizonHours,
        moving_average_hours: cfg.movingAverageHours,
        validation_fraction: cfg.validationFraction,
        test_fraction: cfg.testFraction,
        features: WINDOW_FEATURES.join(','),
        cutoff: cutoffIso,
        candles: candles.length,
        windows_train: split.train.length,
        windows_validation: split.validation.length,
        windows_test: split.test.length,
        windows_purged: split.purged,
        windows_dropped_for_gaps: droppedForGaps,
      },
    });
    await mlflow.logInputs(runId, [
      options.snapshot
        ? snapshotDatasetInput(options.snapshot.manifest, options.snapshot.lakeUri)
        : {
            tags: [{ key: 'mlflow.data.context', value: 'training' }],
            dataset: {
              name: `${dataset}-${cfg.table}`,
              digest: dataDigest.slice(0, 36),
              source_type: 'local',
              source: JSON.stringify({ uri: `warehouse://${cfg.table}?until=${cutoffIso}` }),
              schema: JSON.stringify({
                mlflow_colspec: CANDLE_COLUMNS.map((name) => ({
                  type: name === 'open_time' ? 'long' : 'double',
                  name,
                  required: true,
                })),
              }),
              profile: JSON.stringify({ num_rows: candles.length }),
            },
          },
    ]);

    const epochs: (LstmEpoch & { at: number })[] = [];
    const t0 = performance.now();
    const trained = await trainLstm(
      {
        x: scaleInputs(state, split.train),
        y: Float32Array.from(split.train, (w) => scaleTarget(state, w.y)),
        valX: scaleInputs(state, split.validation),
        valY: Float32Array.from(split.validation, (w) => scaleTarget(state, w.y)),
        windowHours: cfg.windowHours,
        features: FEATURE_COUNT,
      },
      params,
      (e) => epochs.push({ ...e, at: deps.now() }),
    );
    const trainMs = performance.now() - t0;
    const prices = modelPrices(trained.model, state, split.test);
    const evaluation = evaluateForecasts(split.test, prices, cfg.movingAverageHours);
    deps.log.info(
      { trainMs: Math.round(trainMs), ...evaluation },
      'train: forecast evaluated on the test period',
    );

    const ts = deps.now();
    const metrics: Metric[] = epochs.flatMap((e) => [
      { key: 'loss', value: e.loss, timestamp: e.at, step: e.epoch },
      { key: 'val_loss', value: e.valLoss, timestamp: e.at, step: e.epoch },
    ]);
    const add = (key: string, value: number) => {
      if (Number.isFinite(value)) metrics.push({ key, value, timestamp: ts, step: 0 });
    };
    for (const [prefix, m] of [
      ['test', evaluation.model],
      ['persistence', evaluation.persistence],
      ['moving_average', evaluation.movingAverage],
    ] as const)
      for (const k of ['rmse', 'mae', 'mape', 'directional_accuracy'] as const) add(`${prefix}_${k}`, m[k]);
    add('test_rmse_vs_persistence', evaluation.model.rmse / evaluation.persistence.rmse);
    add('train_seconds', trainMs / 1000);
    add('best_epoch', trained.bestEpoch);
    add('epochs_run', trained.epochsRun);
    await mlflow.logBatch(runId, { metrics });

    const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
    const testPeriod = {
      from: new Date((split.test[0] as Window).targetTime).toISOString(),
      to: new Date((split.test.at(-1) as Window).targetTime).toISOString(),
    };
    const uri = run.info.artifact_uri;
    await Promise.all([
      mlflow.uploadArtifact(
        uri,
        'plots/forecast.png',
        forecastPng(
          split.test.map((w) => w.targetClose),
          prices,
          persistenceForecast(split.test),
        ),
      ),
      mlflow.uploadArtifact(uri, 'evaluation/metrics.json', json({ testPeriod, ...evaluation })),
      // The promotion gate scores the champion on exactly these hours.
      mlflow.uploadArtifact(uri, TEST_CANDLES_ARTIFACT, JSON.stringify(testCandles(candles, split.test))),
      mlflow.uploadArtifact(uri, FORECAST_STATE_FILE, json(state)),
      mlflow.uploadArtifact(
        uri,
        'config/train.json',
        json({ ...options, contract: dataset, params, forecast: cfg }),
      ),
      mlflow.uploadArtifact(uri, 'environment/packages.json', json(deps.source.packages)),
      ...(deps.contractSource
        ? [mlflow.uploadArtifact(uri, `contract/${deps.contractSource.file}`, deps.contractSource.text)]
        : []),
    ]);

    const files = await saveModelFiles(trained.model);
    const logged = await mlflow.createLoggedModel({
      experimentId,
      name: options.modelName,
      sourceRunId: runId,
      modelType: 'tfjs-lstm-forecast',
      params: { kind: 'lstm', seed: String(params.seed), horizon_hours: String(cfg.horizonHours) },
    });
    const folder = await forecastFolderFiles({
      model: trained.model,
      files,
      state,
      candles: testCandles(candles, split.test),
      modelId: logged.info.model_id,
      runId,
      createdAt: new Date(deps.now()),
    });
    trained.model.dispose();
    for (const [file, content] of Object.entries(folder))
      await mlflow.uploadArtifact(logged.info.artifact_uri, file, content);
    await mlflow.finalizeLoggedModel(logged.info.model_id, 'LOGGED_MODEL_READY');
    await mlflow.logModelOutput(runId, logged.info.model_id);
    await mlflow.ensureRegisteredModel(options.modelName, `Driftwood ${dataset} forecast model`);
    const mv = await mlflow.createModelVersion({
      name: options.modelName,
      source: `models:/${logged.info.model_id}`,
      modelId: logged.info.model_id,
      runId,
      tags: {
        'driftwood.task': 'sequence_forecast',
        'driftwood.model_kind': 'lstm',
        'driftwood.test_rmse': String(evaluation.model.rmse),
        'driftwood.persistence_rmse': String(evaluation.persistence.rmse),
        'driftwood.data_digest': dataDigest,
        'driftwood.cutoff': cutoffIso,
      },
    });
    await mlflow.waitForVersionReady(options.modelName, mv.version);
    await mlflow.setAlias(options.modelName, 'challenger', mv.version);
    await mlflow.finishRun(runId, 'FINISHED', deps.now());
    deps.log.info(
      { model: options.modelName, version: mv.version },
      'train: forecast model registered as challenger',
    );
    return {
      runId,
      experimentId,
      modelId: logged.info.model_id,
      modelName: options.modelName,
      modelVersion: mv.version,
      modelKind: 'lstm',
      backend,
      cutoff: cutoffIso,
      candles: candles.length,
      windows: {
        train: split.train.length,
        validation: split.validation.length,
        test: split.test.length,
        purged: split.purged,
        droppedForGaps,
      },
      testPeriod,
      metrics: evaluation,
      epochsRun: trained.epochsRun,
      bestEpoch: trained.bestEpoch,
      trainSeconds: Math.round(trainMs) / 1000,
      dataDigest,
    };
  } catch (err) {
    await mlflow.finishRun(runId, 'FAILED', deps.now()).catch(() => undefined);
    throw err;
  }
}

export const TEST_CANDLES_ARTIFACT = 'evaluation/test-candles.json';
