import { DriftwoodError } from '../errors.js';
import { type ModelParams, validateModelParams } from '../models/classifier.js';
import { initTf } from '../models/tf.js';
import { Rng } from '../random.js';
import { prepareTrainingData } from '../train/data.js';
import {
  type LoggedRun,
  resolveParams,
  type TrainDeps,
  type TrainOptions,
  trainAndLogRun,
} from '../train/index.js';

/** Values to try per hyper-parameter; a parameter left out keeps the base value. */
export type SearchSpace = { [K in keyof ModelParams]?: ModelParams[K][] };

export interface TuneOptions extends TrainOptions {
  space: SearchSpace;
  strategy: 'grid' | 'random';
  /** The most trials to run (random search draws this many; a grid is cut to it). */
  maxTrials: number;
  /** Seeds the random search. */
  searchSeed: number;
}

export interface TuneResult {
  parentRunId: string;
  experimentId: string;
  strategy: 'grid' | 'random';
  trials: { runId: string; params: Partial<ModelParams>; validationRocAuc: number; holdoutRocAuc: number }[];
  best: { runId: string; params: Partial<ModelParams>; validationRocAuc: number; holdoutRocAuc: number };
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
 * mlflow.parentRunId, so the UI nests them). Trials share the prepared data and split and are ranked
 * by validation ROC AUC — the holdout stays out of the choice; the best trial is recorded on the parent.
 */
export async function runTune(options: TuneOptions, deps: TrainDeps): Promise<TuneResult> {
  const base = resolveParams(options.params);
  const trials = planTrials(options.space, options.strategy, options.maxTrials, options.searchSeed);
  if (trials.length === 0) throw new DriftwoodError('USAGE', 'the search space has no trial to run');
  for (const t of trials) validateModelParams({ ...base, ...t });
  const backend = await initTf(deps.log);
  const data = await prepareTrainingData({ ...options, splitSeed: base.seed }, deps);
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
      },
    });
    const results: TuneResult['trials'] = [];
    for (const [i, trial] of trials.entries()) {
      const run: LoggedRun = await trainAndLogRun(data, { ...base, ...trial }, options, deps, {
        experimentId,
        backend,
        register: false,
        parentRunId,
        runName: `trial-${i + 1}`,
      });
      results.push({
        runId: run.runId,
        params: trial,
        validationRocAuc: run.validationMetrics.roc_auc,
        holdoutRocAuc: run.metrics.roc_auc,
      });
      deps.log.info({ trial: i + 1, of: trials.length, ...results[results.length - 1] }, 'tune: trial done');
    }
    const best = results.reduce((a, b) => (b.validationRocAuc > a.validationRocAuc ? b : a));
    const ts = deps.now();
    await deps.mlflow.logBatch(parentRunId, {
      metrics: [
        { key: 'best_validation_roc_auc', value: best.validationRocAuc, timestamp: ts, step: 0 },
        { key: 'best_holdout_roc_auc', value: best.holdoutRocAuc, timestamp: ts, step: 0 },
        { key: 'trials', value: results.length, timestamp: ts, step: 0 },
      ],
      tags: { 'driftwood.best_run_id': best.runId, 'driftwood.best_params': JSON.stringify(best.params) },
    });
    await deps.mlflow.finishRun(parentRunId, 'FINISHED', deps.now());
    return { parentRunId, experimentId, strategy: options.strategy, trials: results, best };
  } catch (err) {
    await deps.mlflow.finishRun(parentRunId, 'FAILED', deps.now()).catch(() => undefined);
    throw err;
  }
}
