import { DriftwoodError } from '../errors.js';
import type { TransformState } from '../features/transform.js';
import type { Metric } from '../mlflow/types.js';
import type { ModelParams } from '../models/classifier.js';
import { rocAuc } from '../models/metrics.js';
import { initTf } from '../models/tf.js';
import { trainModel } from '../models/trained-model.js';
import { Rng } from '../random.js';
import { type PreparedData, prepareTrainingData } from '../train/data.js';
import {
  type LoggedRun,
  modelRunParams,
  resolveParams,
  type TrainDeps,
  type TrainOptions,
  trainAndLogRun,
} from '../train/index.js';
import {
  budgetAllows,
  type CvTable,
  type CvTrial,
  checkFolds,
  chooseByCv,
  cvMarkdown,
  foldRows,
  meanStd,
  stratifiedFolds,
} from './cv.js';
import { fitFoldTransform, foldInputs } from './folds.js';

/** Values to try per hyper-parameter; a parameter left out keeps the base value. */
export type SearchSpace = { [K in keyof ModelParams]?: ModelParams[K][] };

export interface TuneOptions extends TrainOptions {
  space: SearchSpace;
  strategy: 'grid' | 'random';
  /** The most trials to run (random search draws this many; a grid is cut to it). */
  maxTrials: number;
  /** Seeds the random search. */
  searchSeed: number;
  /** k of the k-fold cross-validation on the training part (default 5, at least 3). */
  folds?: number;
  /** No new trial starts once this many seconds have passed since the search began; the trials done count. */
  budgetSeconds?: number;
}

export const DEFAULT_FOLDS = 5;

export interface TuneResult {
  parentRunId: string;
  experimentId: string;
  strategy: 'grid' | 'random';
  folds: number;
  planned: number;
  ran: number;
  stoppedByBudget: boolean;
  /** Ranked by mean CV ROC AUC on the training part; no trial is measured on the holdout. */
  trials: CvTrial[];
  /** The chosen trial, and its setting refitted and measured once on the holdout (`holdout.runId`). */
  best: CvTrial & { holdout: CvTable['holdout'] };
}

/** Every combination of the space's values, in a stable order. Pure. */
export function gridOf(space: SearchSpace): Partial<ModelParams>[] {
  let combos: Partial<ModelParams>[] = [{}];
  for (const [key, values] of Object.entries(space) as [keyof ModelParams, unknown[]][]) {
    if (!values || values.length === 0) continue;
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [key]: v })));
  }
  return combos;
}

/** The trials to run: the grid (cut to maxTrials) or maxTrials distinct seeded draws from it. Pure. */
export function planTrials(
  space: SearchSpace,
  strategy: 'grid' | 'random',
  maxTrials: number,
  seed: number,
): Partial<ModelParams>[] {
  const grid = gridOf(space);
  if (strategy === 'grid') return grid.slice(0, maxTrials);
  return new Rng(seed).shuffle([...grid]).slice(0, maxTrials);
}

/**
 * A hyper-parameter search as one MLflow parent run with a child run per trial (tag
 * mlflow.parentRunId, so the UI nests them). Trials are ranked by k-fold cross-validation on the
 * training part only; the validation and holdout rows take no part in the choice. Then the chosen
 * setting alone is fitted the way `train` fits (early stopping and calibration on validation) and
 * measured on the holdout, once, in a last child run. The CV table goes to the parent as
 * `tune/cv.json` and `tune/cv.md`.
 */
export async function runTune(options: TuneOptions, deps: TrainDeps): Promise<TuneResult> {
  const base = resolveParams(options.params);
  const folds = checkFolds(options.folds ?? DEFAULT_FOLDS);
  if (options.budgetSeconds !== undefined && !(options.budgetSeconds >= 0))
    throw new DriftwoodError(
      'USAGE',
      `--budget-seconds: expected a number ≥ 0, got ${options.budgetSeconds}`,
    );
  const trials = planTrials(options.space, options.strategy, options.maxTrials, options.searchSeed);
  if (trials.length === 0) throw new DriftwoodError('USAGE', 'the search space has no trial to run');
  const settings = trials.map((t) => resolveParams({ ...options.params, ...t }));
  const backend = await initTf(deps.log);
  const data = await prepareTrainingData({ ...options, splitSeed: base.seed }, deps);
  const foldSeed = base.seed;
  const fold = stratifiedFolds(data.train.y, folds, foldSeed);
  // Each fold's transform is fitted once, on its own training rows, and shared by every trial.
  const foldStates = Array.from({ length: folds }, (_, f) =>
    fitFoldTransform(data, foldRows(fold, folds, f)),
  );
  const experimentId = await deps.mlflow.ensureExperiment(options.experiment);
  const started = deps.now();
  const parent = await deps.mlflow.createRun({
    experimentId,
    runName: `tune-${options.dataset}-${new Date(started).toISOString().replace(/[:.]/g, '-')}`,
    startTime: started,
    tags: {
      'mlflow.user': deps.source.user,
      'mlflow.source.type': 'JOB',
      'mlflow.source.name': 'driftwood tune',
      ...(deps.source.commit ? { 'mlflow.source.git.commit': deps.source.commit } : {}),
      'driftwood.dataset': options.dataset,
      'driftwood.data_digest': data.dataDigest,
    },
  });
  const parentRunId = parent.info.run_id;
  try {
    await deps.mlflow.logBatch(parentRunId, {
      params: {
        strategy: options.strategy,
        max_trials: options.maxTrials,
        search_seed: options.searchSeed,
        space: JSON.stringify(options.space),
        folds,
        fold_seed: foldSeed,
        budget_seconds: options.budgetSeconds ?? 'none',
        rows_train: data.parts.train.length,
      },
    });
    const results: CvTrial[] = [];
    for (const [i, trial] of trials.entries()) {
      if (!budgetAllows(started, deps.now(), options.budgetSeconds, results.length)) break;
      const result = await crossValidateTrial(data, fold, foldStates, settings[i] as ModelParams, deps, {
        experimentId,
        parentRunId,
        trial: i + 1,
        params: trial,
        dataset: options.dataset,
      });
      results.push(result);
      deps.log.info(
        {
          trial: i + 1,
          of: trials.length,
          params: trial,
          cvRocAucMean: result.cvRocAucMean,
          cvRocAucStd: result.cvRocAucStd,
        },
        'tune: trial cross-validated',
      );
    }
    const stoppedByBudget = results.length < trials.length;
    deps.log.info(
      { ran: results.length, planned: trials.length, budgetSeconds: options.budgetSeconds ?? null },
      stoppedByBudget
        ? `tune: the time budget ran out: ${results.length} of ${trials.length} trials ran`
        : `tune: all ${trials.length} trials ran`,
    );
    const chosen = chooseByCv(results);
    // The one look at the holdout: the chosen setting, fitted as train fits it.
    const final: LoggedRun = await trainAndLogRun(
      data,
      settings[chosen.trial - 1] as ModelParams,
      options,
      deps,
      { experimentId, backend, register: false, parentRunId, runName: `chosen (trial ${chosen.trial})` },
    );
    const holdout = {
      runId: final.runId,
      rocAuc: final.metrics.roc_auc,
      validationRocAuc: final.validationMetrics.roc_auc,
    };
    const table: CvTable = {
      dataset: options.dataset,
      metric: 'roc_auc',
      folds,
      foldSeed,
      trainRows: data.parts.train.length,
      planned: trials.length,
      ran: results.length,
      budgetSeconds: options.budgetSeconds ?? null,
      stoppedByBudget,
      trials: results,
      chosen: { trial: chosen.trial, runId: chosen.runId, params: chosen.params },
      holdout,
    };
    const ts = deps.now();
    const metric = (key: string, value: number): Metric => ({ key, value, timestamp: ts, step: 0 });
    await deps.mlflow.logBatch(parentRunId, {
      params: {
        chosen_trial: chosen.trial,
        ...Object.fromEntries(
          Object.entries(chosen.params).map(([k, v]) => [`chosen_${k}`, Array.isArray(v) ? v.join(',') : v]),
        ),
      },
      metrics: [
        metric('best_cv_roc_auc_mean', chosen.cvRocAucMean),
        metric('best_cv_roc_auc_std', chosen.cvRocAucStd),
        metric('best_validation_roc_auc', holdout.validationRocAuc),
        metric('best_holdout_roc_auc', holdout.rocAuc),
        metric('trials', results.length),
        metric('trials_planned', trials.length),
        metric('stopped_by_budget', stoppedByBudget ? 1 : 0),
      ],
      tags: {
        'driftwood.best_run_id': chosen.runId,
        'driftwood.best_params': JSON.stringify(chosen.params),
        'driftwood.chosen_run_id': final.runId,
        'mlflow.note.content': `${results.length} of ${trials.length} trials ran${
          stoppedByBudget ? ` (the ${options.budgetSeconds} s budget ran out)` : ''
        }; chosen by ${folds}-fold CV ROC AUC on the training part: trial ${chosen.trial} ${JSON.stringify(
          chosen.params,
        )}, holdout ROC AUC ${holdout.rocAuc.toFixed(4)}. See tune/cv.md.`,
      },
    });
    await deps.mlflow.uploadArtifact(
      parent.info.artifact_uri,
      'tune/cv.json',
      `${JSON.stringify(table, null, 2)}\n`,
    );
    await deps.mlflow.uploadArtifact(parent.info.artifact_uri, 'tune/cv.md', cvMarkdown(table));
    await deps.mlflow.finishRun(parentRunId, 'FINISHED', deps.now());
    return {
      parentRunId,
      experimentId,
      strategy: options.strategy,
      folds,
      planned: trials.length,
      ran: results.length,
      stoppedByBudget,
      trials: results,
      best: { ...chosen, holdout },
    };
  } catch (err) {
    await deps.mlflow.finishRun(parentRunId, 'FAILED', deps.now()).catch(() => undefined);
    throw err;
  }
}

/**
 * One trial as a child run: its params, and the ROC AUC of each fold (step = fold) with their mean and
 * standard deviation. It reads the training part only, and logs no holdout or validation figure.
 */
async function crossValidateTrial(
  data: PreparedData,
  fold: Int32Array,
  foldStates: readonly TransformState[],
  params: ModelParams,
  deps: TrainDeps,
  ctx: {
    experimentId: string;
    parentRunId: string;
    trial: number;
    params: Partial<ModelParams>;
    dataset: string;
  },
): Promise<CvTrial> {
  const { mlflow } = deps;
  const k = foldStates.length;
  const run = await mlflow.createRun({
    experimentId: ctx.experimentId,
    runName: `trial-${ctx.trial}`,
    startTime: deps.now(),
    tags: {
      'mlflow.user': deps.source.user,
      'mlflow.source.type': 'JOB',
      'mlflow.source.name': 'driftwood tune',
      ...(deps.source.commit ? { 'mlflow.source.git.commit': deps.source.commit } : {}),
      'mlflow.parentRunId': ctx.parentRunId,
      'mlflow.note.content': `Trial ${ctx.trial}: ${JSON.stringify(ctx.params)}, ${k}-fold CV on the training part.`,
      'driftwood.dataset': ctx.dataset,
      'driftwood.model_kind': params.kind,
      'driftwood.data_digest': data.dataDigest,
      'driftwood.features_id': data.features.id,
    },
  });
  const runId = run.info.run_id;
  try {
    await mlflow.logBatch(runId, { params: { ...modelRunParams(params), folds: k } });
    const t0 = performance.now();
    const foldRocAuc: number[] = [];
    const metrics: Metric[] = [];
    for (let f = 0; f < k; f++) {
      const inputs = foldInputs(data, foldStates[f] as TransformState, foldRows(fold, k, f));
      const model = await trainModel(
        {
          x: inputs.train.x,
          y: inputs.train.y,
          valX: inputs.stop.x,
          valY: inputs.stop.y,
          width: inputs.width,
        },
        params,
        undefined,
        inputs.signs,
      );
      try {
        const auc = rocAuc(model.scores(inputs.score.x), inputs.score.y);
        foldRocAuc.push(auc);
        metrics.push({ key: 'cv_roc_auc', value: auc, timestamp: deps.now(), step: f });
      } finally {
        model.dispose();
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const { mean, std } = meanStd(foldRocAuc);
    const ts = deps.now();
    metrics.push(
      { key: 'cv_roc_auc_mean', value: mean, timestamp: ts, step: 0 },
      { key: 'cv_roc_auc_std', value: std, timestamp: ts, step: 0 },
      { key: 'cv_seconds', value: seconds, timestamp: ts, step: 0 },
    );
    await mlflow.logBatch(runId, { metrics: metrics.filter((m) => Number.isFinite(m.value)) });
    await mlflow.finishRun(runId, 'FINISHED', deps.now());
    return {
      trial: ctx.trial,
      runId,
      params: ctx.params,
      foldRocAuc,
      cvRocAucMean: mean,
      cvRocAucStd: std,
      seconds,
    };
  } catch (err) {
    await mlflow.finishRun(runId, 'FAILED', deps.now()).catch(() => undefined);
    throw err;
  }
}
