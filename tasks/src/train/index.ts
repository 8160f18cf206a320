import { DriftwoodError } from '../errors.js';
import { confusionPng, prPng, rocPng } from '../evaluate/plots.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { Metric } from '../mlflow/types.js';
import {
  type ModelParams,
  type ModelRequest,
  validateModelParams,
  withDefaults,
} from '../models/classifier.js';
import { type BinaryMetrics, describeThresholdObjective } from '../models/metrics.js';
import { initTf } from '../models/tf.js';
import { type SnapshotRows, snapshotDatasetInput } from '../snapshot/index.js';
import type { Warehouse } from '../warehouse/db.js';
import type { ContractSource } from './contract.js';
import { holdoutFile, type PreparedData, prepareTrainingData } from './data.js';
import { evaluateOnHoldout, type FitOutcome, fitOnValidation, type ValidatedFit } from './fit.js';
import { modelFolderFiles } from './model-folder.js';
import {
  autoCandidates,
  candidateName,
  fitBestCandidate,
  isAuto,
  type Selection,
  validationBehaviour,
} from './select.js';

export interface TrainOptions {
  dataset: string;
  experiment: string;
  modelName: string;
  cutoff?: number;
  horizonHours: number;
  labelDelayHours: number;
  /**
   * Hyper-parameters; anything left out takes its default. Without a kind (or with `auto`) the
   * candidates of select.ts are fitted and the best on validation is kept.
   */
  params: ModelRequest;
  /** Train on a data snapshot (its rows and cutoff) rather than on features built now. */
  snapshot?: SnapshotRows;
  holdoutFraction: number;
  validationFraction: number;
  /** Where contracts/<dataset>.yaml is, when not in the project's contracts folder. */
  contractsDir?: string;
}

export interface TrainDeps {
  db: Warehouse;
  /** Where the features step's artifacts live; without one they are made and read in memory. */
  lake?: ObjectStore;
  mlflow: MlflowClient;
  log: Logger;
  now: () => number;
  /** Source identity recorded on the run: git commit and the versions that trained it. */
  source: { commit: string | undefined; user: string; packages: Record<string, string> };
  /** The dataset contract, recorded with the run when there is one. */
  contract?: ContractSource;
}

export interface TrainResult {
  runId: string;
  experimentId: string;
  modelId: string;
  modelName: string;
  modelVersion: string;
  /** The kind the registered version holds (with `auto`: the one chosen). */
  modelKind: ModelParams['kind'];
  /** With `auto`: every candidate's validation figures, which was kept and why. */
  selection?: Selection;
  backend: string;
  cutoff: string;
  rows: { train: number; validation: number; holdout: number; positives: number };
  metrics: BinaryMetrics;
  validationMetrics: BinaryMetrics;
  epochsRun: number;
  bestEpoch: number;
  trainSeconds: number;
  dataDigest: string;
  /** The features artifact the run trained on: `features/<dataset>/<id>/`. */
  featuresId: string;
}

/** The parameters of one named kind; `auto` is train's choice among kinds, not one model. */
export function resolveParams(params: ModelRequest): ModelParams {
  const { kind, ...rest } = params;
  if (kind === 'auto')
    throw new DriftwoodError(
      'USAGE',
      "model kind 'auto' fits several kinds and keeps the best on validation (train does); name one kind here: logistic, mlp or gbdt",
    );
  return validateModelParams(withDefaults(kind ? { ...rest, kind } : rest));
}

/**
 * Reads the features step's artifact (matrix, split, fitted transform; see prepareTrainingData), trains a TF.js model
 * (logistic regression or MLP), evaluates it on the holdout and records all of it in MLflow:
 * params, per-epoch metrics, the data as a dataset input, plots, the holdout, the model (an MLflow
 * logged model with an MLmodel file and the fitted transform) and a registered model version with
 * the alias `challenger`.
 */
export async function runTrain(options: TrainOptions, deps: TrainDeps): Promise<TrainResult> {
  const plan = isAuto(options.params) ? autoCandidates(options.params) : resolveParams(options.params);
  const seed = (Array.isArray(plan) ? (plan[0] as ModelParams) : plan).seed;
  const backend = await initTf(deps.log);
  const data = await prepareTrainingData({ ...options, splitSeed: seed }, deps);
  const experimentId = await deps.mlflow.ensureExperiment(options.experiment);
  const run = await trainAndLogRun(data, plan, options, deps, { experimentId, backend, register: true });
  return run as TrainResult;
}

export interface RunContext {
  experimentId: string;
  backend: string;
  /** Register the model as a new version with alias `challenger` (tuning trials do not). */
  register: boolean;
  parentRunId?: string;
  runName?: string;
}

export type LoggedRun = Omit<TrainResult, 'modelId' | 'modelVersion'> & {
  modelId: string | undefined;
  modelVersion: string | undefined;
};

/**
 * One MLflow run: fit, evaluate, log everything and (optionally) register the model. Given several
 * candidates (`auto`), each is fitted and readied on validation and the best is kept (select.ts);
 * the run then records the kept model as it would one named by the user, plus every candidate's
 * validation figures.
 */
export async function trainAndLogRun(
  data: PreparedData,
  plan: ModelParams | readonly ModelParams[],
  options: TrainOptions,
  deps: TrainDeps,
  ctx: RunContext,
): Promise<LoggedRun> {
  const { mlflow } = deps;
  const started = deps.now();
  const cutoffIso = new Date(data.cutoff).toISOString();
  const candidates: readonly ModelParams[] = Array.isArray(plan) ? plan : [plan as ModelParams];
  const auto = Array.isArray(plan);
  const named = candidates[0] as ModelParams;
  const runName =
    ctx.runName ?? trainRunName(options.dataset, auto ? 'auto' : named.kind, data.features.id, started);
  const run = await mlflow.createRun({
    experimentId: ctx.experimentId,
    runName,
    startTime: started,
    tags: {
      'mlflow.user': deps.source.user,
      'mlflow.source.type': 'JOB',
      'mlflow.source.name': 'driftwood train',
      ...(deps.source.commit ? { 'mlflow.source.git.commit': deps.source.commit } : {}),
      ...(ctx.parentRunId ? { 'mlflow.parentRunId': ctx.parentRunId } : {}),
      'mlflow.note.content': `Driftwood ${auto ? `auto (the best on validation of ${candidates.map(candidateName).join(', ')})` : named.kind} on ${options.dataset} features as of ${cutoffIso} (seed ${named.seed}).`,
      'driftwood.dataset': options.dataset,
      ...(auto ? { 'driftwood.model_selection': 'auto' } : { 'driftwood.model_kind': named.kind }),
      'driftwood.backend': ctx.backend,
      'driftwood.cutoff': cutoffIso,
      'driftwood.data_digest': data.dataDigest,
      'driftwood.features_id': data.features.id,
      'driftwood.features_manifest_sha256': data.features.manifestSha256,
      'driftwood.contract_digest': data.contract.digest,
      ...(options.snapshot ? { 'driftwood.snapshot_id': options.snapshot.manifest.id } : {}),
      ...(deps.contract
        ? {
            'driftwood.contract_sha256': deps.contract.sha256,
            ...(deps.contract.version ? { 'driftwood.contract_version': deps.contract.version } : {}),
          }
        : {}),
    },
  });
  const runId = run.info.run_id;
  deps.log.info({ runId, runName, experimentId: ctx.experimentId }, 'train: MLflow run started');
  try {
    await mlflow.logBatch(runId, {
      params: {
        ...(auto
          ? { model_selection: 'auto', auto_candidates: candidates.map(candidateName).join(',') }
          : modelRunParams(named)),
        horizon_hours: options.horizonHours,
        cutoff: cutoffIso,
        holdout_fraction: options.holdoutFraction,
        validation_fraction: options.validationFraction,
        split_seed: data.features.seed,
        features_in: data.profile.numeric.length + data.profile.categorical.length,
        features_out: data.width,
        rows_train: data.parts.train.length,
        calibration: data.decision.calibration,
        threshold_objective: describeThresholdObjective(data.decision.threshold),
      },
    });
    // The data as an MLflow dataset input: the snapshot when the run read one, else the warehouse query.
    await mlflow.logInputs(runId, [
      options.snapshot
        ? snapshotDatasetInput(options.snapshot.manifest, options.snapshot.lakeUri)
        : {
            tags: [{ key: 'mlflow.data.context', value: 'training' }],
            dataset: {
              name: `${options.dataset}-features`,
              digest: data.dataDigest.slice(0, 36),
              source_type: 'local',
              source: JSON.stringify({ uri: `warehouse://${options.dataset}?as_of=${cutoffIso}` }),
              schema: JSON.stringify({
                mlflow_colspec: [
                  ...data.profile.numeric.map((name) => ({ type: 'double', name, required: false })),
                  ...data.profile.categorical.map((name) => ({ type: 'string', name, required: true })),
                ],
              }),
              profile: JSON.stringify({ num_rows: data.rows.length, positives: data.positives }),
            },
          },
    ]);

    const signs = data.profile.signs(data.state.outputs);
    let params = named;
    let selection: Selection | undefined;
    let ready: ValidatedFit;
    if (auto) {
      const best = await fitBestCandidate(data, candidates, {
        signs,
        behaviour: (f) => validationBehaviour(data, f),
        now: deps.now,
      });
      ({ params, selection } = best);
      ready = best.fit;
      deps.log.info(
        { chosen: selection.chosen, reason: selection.reason },
        'train: auto kept the best candidate on validation',
      );
      await logSelection(mlflow, runId, run.info.artifact_uri, params, selection, deps.now());
      // The run's name leads with the kind it holds, as a named kind's run does.
      if (!ctx.runName)
        await mlflow.setTag(
          runId,
          'mlflow.runName',
          trainRunName(options.dataset, params.kind, data.features.id, started),
        );
    } else ready = await fitOnValidation(data, params, signs, deps.now);
    const fit = evaluateOnHoldout(data, ready);
    if (fit.calibration.method !== data.decision.calibration)
      deps.log.warn(
        { asked: data.decision.calibration },
        'train: the validation split holds one class only: the scores are left uncalibrated',
      );
    deps.log.info(
      {
        kind: params.kind,
        trainMs: Math.round(fit.trainMs),
        epochsRun: fit.epochsRun,
        calibration: fit.calibration.method,
        validationLogLoss: {
          uncalibrated: fit.uncalibratedLogLoss.validation,
          calibrated: fit.validation.log_loss,
        },
        ...fit.metrics,
      },
      'train: model evaluated on the holdout',
    );
    await mlflow.logBatch(runId, { metrics: runMetrics(fit, deps.now()) });
    await logEvaluationArtifacts(
      mlflow,
      run.info.artifact_uri,
      data,
      fit,
      params,
      options,
      deps.source.packages,
    );
    if (deps.contract)
      await mlflow.uploadArtifact(
        run.info.artifact_uri,
        `contract/${deps.contract.file}`,
        deps.contract.text,
      );

    let registered: { modelId: string; version: string | undefined } | undefined;
    if (ctx.register) registered = await registerModel(data, fit, params, options, deps, ctx, runId);
    fit.model.dispose();
    await mlflow.finishRun(runId, 'FINISHED', deps.now());
    return {
      runId,
      experimentId: ctx.experimentId,
      modelId: registered?.modelId,
      modelName: options.modelName,
      modelVersion: registered?.version,
      modelKind: params.kind,
      ...(selection ? { selection } : {}),
      backend: ctx.backend,
      cutoff: cutoffIso,
      rows: {
        train: data.parts.train.length,
        validation: data.parts.validation.length,
        holdout: data.parts.holdout.length,
        positives: data.positives,
      },
      metrics: fit.metrics,
      validationMetrics: fit.validation,
      epochsRun: fit.epochsRun,
      bestEpoch: fit.bestEpoch,
      trainSeconds: Math.round(fit.trainMs) / 1000,
      dataDigest: data.dataDigest,
      featuresId: data.features.id,
    };
  } catch (err) {
    await mlflow.finishRun(runId, 'FAILED', deps.now()).catch(() => undefined);
    throw err;
  }
}

/**
 * What `auto` did, on the run: the kept model's params (as a named kind's run has them), each
 * candidate's validation figures as metrics `auto_<candidate>_*`, tags naming the kept one and why,
 * and the whole table as `selection/auto.json`.
 */
async function logSelection(
  mlflow: MlflowClient,
  runId: string,
  artifactUri: string,
  params: ModelParams,
  selection: Selection,
  ts: number,
): Promise<void> {
  const metrics: Metric[] = [];
  for (const c of selection.candidates) {
    const key = (what: string) => `auto_${c.name.replace(/-/g, '_')}_${what}`;
    const add = (what: string, value: number) => {
      if (Number.isFinite(value)) metrics.push({ key: key(what), value, timestamp: ts, step: 0 });
    };
    add('validation_roc_auc', c.validationRocAuc);
    add('validation_log_loss', c.validationLogLoss);
    add('fit_seconds', c.fitSeconds);
    add('behaviour_failures', c.failedChecks.length);
  }
  await mlflow.logBatch(runId, {
    params: modelRunParams(params),
    metrics,
    tags: {
      'driftwood.model_kind': params.kind,
      'driftwood.auto.chosen': selection.chosen,
      'driftwood.auto.reason': selection.reason.slice(0, 5000),
    },
  });
  await mlflow.uploadArtifact(artifactUri, 'selection/auto.json', `${JSON.stringify(selection, null, 2)}\n`);
}

/** The hyper-parameters that decided the model, as MLflow params: the ones its kind uses. */
export function modelRunParams(p: ModelParams): Record<string, string | number | boolean> {
  const shared = { learningRate: p.learningRate, l2: p.l2, seed: p.seed, patience: p.patience };
  if (p.kind === 'gbdt')
    return {
      model: 'gbdt',
      ...shared,
      trees: p.trees,
      max_leaves: p.maxLeaves,
      max_depth: p.maxDepth,
      min_leaf: p.minLeaf,
      max_bins: p.maxBins,
      subsample: p.subsample,
      colsample: p.colsample,
      class_weighting: p.classWeighting,
    };
  return {
    model: p.kind === 'logistic' ? 'logistic_regression' : 'mlp',
    solver: p.solver,
    epochs: p.epochs,
    ...shared,
    batchSize: p.batchSize,
    hidden_units: p.kind === 'mlp' ? p.hiddenUnits.join(',') : '',
    class_weighting: p.classWeighting,
    monotonic: p.kind === 'logistic' && p.monotonic,
  };
}

/** Per-epoch loss curves (step = epoch), then holdout, validation and per-segment figures (step 0). */
export function runMetrics(fit: FitOutcome, ts: number): Metric[] {
  const metrics: Metric[] = [];
  for (const e of fit.epochs) {
    metrics.push({ key: 'loss', value: e.loss, timestamp: e.at, step: e.epoch });
    metrics.push({ key: 'val_loss', value: e.valLoss, timestamp: e.at, step: e.epoch });
    if (Number.isFinite(e.valRocAuc))
      metrics.push({ key: 'val_roc_auc', value: e.valRocAuc, timestamp: e.at, step: e.epoch });
  }
  const add = (key: string, value: number) => {
    // MLflow stores NaN, but a segment with one class has no AUC: leave it out instead.
    if (Number.isFinite(value)) metrics.push({ key, value, timestamp: ts, step: 0 });
  };
  for (const [k, v] of Object.entries(fit.metrics)) add(`holdout_${k}`, v);
  for (const [k, v] of Object.entries(fit.validation)) add(`validation_${k}`, v);
  for (const s of fit.segments) {
    const [column, value] = s.segment.split('=') as [string, string];
    add(`holdout_roc_auc/${column}/${value.replace(/[^\w.\- ]/g, '_')}`, s.roc_auc);
  }
  // Log loss before calibration; after it is validation_log_loss and holdout_log_loss.
  add('validation_log_loss_uncalibrated', fit.uncalibratedLogLoss.validation);
  add('holdout_log_loss_uncalibrated', fit.uncalibratedLogLoss.holdout);
  add('train_seconds', fit.trainMs / 1000);
  add('best_epoch', fit.bestEpoch);
  add('epochs_run', fit.epochsRun);
  return metrics;
}

async function logEvaluationArtifacts(
  mlflow: MlflowClient,
  artifactUri: string,
  data: PreparedData,
  fit: FitOutcome,
  params: ModelParams,
  options: TrainOptions,
  packages: Record<string, string>,
): Promise<void> {
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  await Promise.all([
    mlflow.uploadArtifact(artifactUri, 'plots/roc.png', rocPng(fit.roc, fit.metrics.roc_auc)),
    mlflow.uploadArtifact(
      artifactUri,
      'plots/pr.png',
      prPng(fit.pr, fit.metrics.pr_auc, fit.metrics.positive_rate),
    ),
    mlflow.uploadArtifact(artifactUri, 'plots/confusion.png', confusionPng(fit.confusion, fit.threshold)),
    mlflow.uploadArtifact(
      artifactUri,
      'evaluation/metrics.json',
      json({
        threshold: fit.threshold,
        threshold_objective: data.decision.threshold,
        calibration: fit.calibration,
        uncalibrated_log_loss: fit.uncalibratedLogLoss,
        holdout: fit.metrics,
        validation: fit.validation,
        confusion: fit.confusion,
      }),
    ),
    mlflow.uploadArtifact(artifactUri, 'evaluation/segments.json', json(fit.segments)),
    // Promotion scores the current champion on exactly these rows.
    mlflow.uploadArtifact(artifactUri, 'evaluation/holdout.json', JSON.stringify(holdoutFile(data))),
    // What repeats the run: the fitted transform, the options and the package versions.
    mlflow.uploadArtifact(artifactUri, 'transform.json', json(data.state)),
    mlflow.uploadArtifact(artifactUri, 'config/train.json', json(trainConfig(options, params))),
    mlflow.uploadArtifact(artifactUri, 'environment/packages.json', json(packages)),
  ]);
}

/**
 * The options that repeat the run, as `config/train.json`: the snapshot by id (and where it lives),
 * never its rows; rows with customer ids in a run artifact would outlive an erasure.
 */
export function trainConfig(options: TrainOptions, params: ModelParams): Record<string, unknown> {
  const { snapshot, ...rest } = options;
  return {
    ...rest,
    ...(snapshot
      ? {
          snapshot: {
            id: snapshot.manifest.id,
            dataKey: snapshot.manifest.dataKey,
            lakeUri: snapshot.lakeUri,
          },
        }
      : {}),
    params,
  };
}

async function registerModel(
  data: PreparedData,
  fit: FitOutcome,
  params: ModelParams,
  options: TrainOptions,
  deps: TrainDeps,
  ctx: RunContext,
  runId: string,
): Promise<{ modelId: string; version: string }> {
  const { mlflow } = deps;
  const logged = await mlflow.createLoggedModel({
    experimentId: ctx.experimentId,
    name: options.modelName,
    sourceRunId: runId,
    modelType: fit.model.modelType,
    params: { kind: params.kind, seed: String(params.seed), threshold: String(fit.threshold) },
  });
  const folder = await modelFolderFiles({
    model: fit.model,
    state: data.state,
    calibration: fit.calibration,
    holdout: data.parts.holdout.map((r) => r.features),
    modelId: logged.info.model_id,
    runId,
    createdAt: new Date(deps.now()),
  });
  for (const [file, content] of Object.entries(folder))
    await mlflow.uploadArtifact(logged.info.artifact_uri, file, content);
  await mlflow.finalizeLoggedModel(logged.info.model_id, 'LOGGED_MODEL_READY');
  await mlflow.logModelOutput(runId, logged.info.model_id);

  await mlflow.ensureRegisteredModel(options.modelName, `Driftwood ${options.dataset} model`);
  const mv = await mlflow.createModelVersion({
    name: options.modelName,
    source: `models:/${logged.info.model_id}`,
    modelId: logged.info.model_id,
    runId,
    tags: {
      'driftwood.holdout_roc_auc': String(fit.metrics.roc_auc),
      'driftwood.threshold': String(fit.threshold),
      'driftwood.calibration': fit.calibration.method,
      'driftwood.model_kind': params.kind,
      'driftwood.data_digest': data.dataDigest,
      'driftwood.cutoff': new Date(data.cutoff).toISOString(),
      'driftwood.features_id': data.features.id,
    },
  });
  await mlflow.waitForVersionReady(options.modelName, mv.version);
  await mlflow.setAlias(options.modelName, 'challenger', mv.version);
  deps.log.info(
    { model: options.modelName, version: mv.version },
    'train: model version registered as challenger',
  );
  return { modelId: logged.info.model_id, version: mv.version };
}

/**
 * A run name that tells runs apart in MLflow's list, where long names are cut: what differs comes
 * first and short — the model kind, the features' (snapshot's) short id, the UTC start to the minute:
 * `churn logistic 9a0da06c 11-07 14:30`.
 */
export function trainRunName(dataset: string, kind: string, featuresId: string, startedMs: number): string {
  const iso = new Date(startedMs).toISOString();
  return `${dataset} ${kind} ${featuresId.slice(0, 8)} ${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}
