import type { MlflowClient, Warehouse } from '@driftwood/tasks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CvTable } from '../../tasks/src/tune/cv.js';
import { runTune, type TuneOptions, type TuneResult } from '../../tasks/src/tune/index.js';
import { mlflowClient, seededWarehouse, silentLog, uniqueName } from '../support/env.js';

const record = (xs: { key: string; value: string }[] | undefined) =>
  Object.fromEntries((xs ?? []).map((x) => [x.key, x.value]));

describe('driftwood tune against a live MLflow server', () => {
  let db: Warehouse;
  let mlflow: MlflowClient;
  let modelName: string;
  let result: TuneResult;
  let budgeted: TuneResult;

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-tune');
    ({ db } = await seededWarehouse({ hours: 144, seed: 5, customers: 700 }));
    const options: TuneOptions = {
      dataset: 'churn',
      experiment: uniqueName('exp-tune'),
      modelName,
      horizonHours: 48,
      labelDelayHours: 24,
      params: { epochs: 10, seed: 3, trees: 40 },
      holdoutFraction: 0.2,
      validationFraction: 0.15,
      // Every kind through the one training seam: the TF.js logistic regression and MLP, and the trees.
      space: { kind: ['logistic', 'mlp', 'gbdt'], learningRate: [0.1] },
      strategy: 'grid',
      maxTrials: 3,
      searchSeed: 4,
      folds: 3,
    };
    const deps = {
      db,
      mlflow,
      log: silentLog,
      now: Date.now,
      source: { commit: 'cafe123', user: 'tune-test', packages: {} },
    };
    result = await runTune(options, deps);
    // A budget of 0 s: the first trial runs (a search must choose something), no other starts.
    budgeted = await runTune({ ...options, maxTrials: 3, budgetSeconds: 0 }, deps);
  });

  afterAll(async () => {
    await db?.destroy();
  });

  it('runs each trial as a finished child run of one parent run, with CV metrics per fold', async () => {
    expect(result.trials).toHaveLength(3);
    expect(result.trials.map((t) => t.params.kind)).toEqual(['logistic', 'mlp', 'gbdt']);
    expect(new Set(result.trials.map((t) => JSON.stringify(t.params))).size).toBe(3);
    for (const t of result.trials) {
      const run = await mlflow.getRun(t.runId);
      expect(record(run.data.tags)['mlflow.parentRunId']).toBe(result.parentRunId);
      expect(run.info.status).toBe('FINISHED');
      const params = record(run.data.params);
      expect(params.learningRate).toBe(String(t.params.learningRate));
      expect(params.model).toBe(
        t.params.kind === 'logistic' ? 'logistic_regression' : (t.params.kind as string),
      );
      expect(params.folds).toBe('3');
      const metrics = Object.fromEntries((run.data.metrics ?? []).map((m) => [m.key, m.value]));
      expect(metrics.cv_roc_auc_mean).toBeCloseTo(t.cvRocAucMean, 9);
      expect(metrics.cv_roc_auc_std).toBeCloseTo(t.cvRocAucStd, 9);
      // Each of the 3 folds is scored, and the mean is theirs.
      const folds = await mlflow.getMetricHistory(t.runId, 'cv_roc_auc');
      expect(folds.map((m) => m.step).sort()).toEqual([0, 1, 2]);
      const mean = folds.reduce((a, m) => a + m.value, 0) / folds.length;
      expect(metrics.cv_roc_auc_mean).toBeCloseTo(mean, 9);
      expect(t.cvRocAucMean).toBeGreaterThan(0.5);
    }
  });

  it('measures no trial on the holdout or the validation rows', async () => {
    for (const t of [...result.trials, ...budgeted.trials]) {
      const run = await mlflow.getRun(t.runId);
      const keys = (run.data.metrics ?? []).map((m) => m.key);
      expect(keys.filter((k) => k.startsWith('holdout_') || k.startsWith('validation_'))).toEqual([]);
      expect(keys).toContain('cv_roc_auc_mean');
    }
  });

  it('chooses by CV, measures the chosen setting alone on the holdout and registers nothing', async () => {
    const best = result.trials.reduce((a, b) => (b.cvRocAucMean > a.cvRocAucMean ? b : a));
    expect(result.best.runId).toBe(best.runId);
    const parent = await mlflow.getRun(result.parentRunId);
    const tags = record(parent.data.tags);
    expect(tags['driftwood.best_run_id']).toBe(best.runId);
    expect(JSON.parse(tags['driftwood.best_params'] as string)).toEqual(best.params);
    expect(tags['mlflow.parentRunId']).toBeUndefined();
    const params = record(parent.data.params);
    expect(params.chosen_kind).toBe(best.params.kind);
    expect(params.chosen_learningRate).toBe(String(best.params.learningRate));
    expect(params.folds).toBe('3');
    const metrics = Object.fromEntries((parent.data.metrics ?? []).map((m) => [m.key, m.value]));
    expect(metrics.best_cv_roc_auc_mean).toBeCloseTo(best.cvRocAucMean, 9);
    expect(metrics.trials).toBe(3);
    expect(metrics.trials_planned).toBe(3);
    expect(metrics.stopped_by_budget).toBe(0);
    expect(parent.info.status).toBe('FINISHED');
    // The one run with holdout figures: the chosen setting's, a child of the same parent.
    const chosen = await mlflow.getRun(result.best.holdout.runId);
    expect(tags['driftwood.chosen_run_id']).toBe(chosen.info.run_id);
    expect(record(chosen.data.tags)['mlflow.parentRunId']).toBe(result.parentRunId);
    expect(record(chosen.data.params).learningRate).toBe(String(best.params.learningRate));
    const chosenMetrics = Object.fromEntries((chosen.data.metrics ?? []).map((m) => [m.key, m.value]));
    expect(chosenMetrics.holdout_roc_auc).toBeCloseTo(result.best.holdout.rocAuc, 9);
    expect(metrics.best_holdout_roc_auc).toBeCloseTo(result.best.holdout.rocAuc, 9);
    expect(await mlflow.getVersionByAlias(modelName, 'challenger')).toBeUndefined();
  });

  it('keeps the CV table on the parent, naming the winner', async () => {
    const parent = await mlflow.getRun(result.parentRunId);
    const table = JSON.parse(
      (await mlflow.downloadArtifact(parent.info.artifact_uri, 'tune/cv.json')).toString('utf8'),
    ) as CvTable;
    expect(table.folds).toBe(3);
    expect(table.trials.map((t) => t.runId)).toEqual(result.trials.map((t) => t.runId));
    expect(table.chosen).toEqual({
      trial: result.best.trial,
      runId: result.best.runId,
      params: result.best.params,
    });
    expect(table.holdout.runId).toBe(result.best.holdout.runId);
    expect(table.ran).toBe(3);
    const md = (await mlflow.downloadArtifact(parent.info.artifact_uri, 'tune/cv.md')).toString('utf8');
    expect(md).toContain(`| ${result.best.trial} **chosen** | \`${JSON.stringify(result.best.params)}\``);
    expect(md).toContain('Trials: 3 of 3 planned ran.');
  });

  it('starts no trial once the time budget has run out, and says how many ran', async () => {
    expect(budgeted.planned).toBe(3);
    expect(budgeted.ran).toBe(1);
    expect(budgeted.trials).toHaveLength(1);
    expect(budgeted.stoppedByBudget).toBe(true);
    const parent = await mlflow.getRun(budgeted.parentRunId);
    const metrics = Object.fromEntries((parent.data.metrics ?? []).map((m) => [m.key, m.value]));
    expect(metrics.trials).toBe(1);
    expect(metrics.trials_planned).toBe(3);
    expect(metrics.stopped_by_budget).toBe(1);
    expect(record(parent.data.params).budget_seconds).toBe('0');
    const table = JSON.parse(
      (await mlflow.downloadArtifact(parent.info.artifact_uri, 'tune/cv.json')).toString('utf8'),
    ) as CvTable;
    expect(table).toMatchObject({ planned: 3, ran: 1, stoppedByBudget: true, budgetSeconds: 0 });
    const md = (await mlflow.downloadArtifact(parent.info.artifact_uri, 'tune/cv.md')).toString('utf8');
    expect(md).toContain('Trials: 1 of 3 planned ran (the time budget of 0 s ran out');
  });
});
