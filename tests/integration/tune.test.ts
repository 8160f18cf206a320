import type { MlflowClient, Warehouse } from '@driftwood/tasks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runTune, type TuneResult } from '../../tasks/src/tune/index.js';
import { mlflowClient, seededWarehouse, silentLog, uniqueName } from '../support/env.js';

describe('driftwood tune against a live MLflow server', () => {
  let db: Warehouse;
  let mlflow: MlflowClient;
  let modelName: string;
  let result: TuneResult;

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-tune');
    ({ db } = await seededWarehouse({ hours: 144, seed: 5, customers: 700 }));
    result = await runTune(
      {
        dataset: 'churn',
        experiment: uniqueName('exp-tune'),
        modelName,
        horizonHours: 48,
        labelDelayHours: 24,
        params: { epochs: 10, seed: 3 },
        holdoutFraction: 0.2,
        validationFraction: 0.15,
        space: { kind: ['logistic', 'mlp'], learningRate: [0.01, 0.05] },
        strategy: 'random',
        maxTrials: 3,
        searchSeed: 4,
      },
      {
        db,
        mlflow,
        log: silentLog,
        now: Date.now,
        source: { commit: 'cafe123', user: 'tune-test', packages: {} },
      },
    );
  });

  afterAll(async () => {
    await db?.destroy();
  });

  it('runs each trial as a finished child run of one parent run', async () => {
    expect(result.trials).toHaveLength(3);
    expect(new Set(result.trials.map((t) => JSON.stringify(t.params))).size).toBe(3);
    for (const t of result.trials) {
      const run = await mlflow.getRun(t.runId);
      const tags = Object.fromEntries((run.data.tags ?? []).map((x) => [x.key, x.value]));
      expect(tags['mlflow.parentRunId']).toBe(result.parentRunId);
      expect(run.info.status).toBe('FINISHED');
      const params = Object.fromEntries((run.data.params ?? []).map((p) => [p.key, p.value]));
      expect(params.learningRate).toBe(String(t.params.learningRate));
      expect(params.model).toBe(t.params.kind === 'mlp' ? 'mlp' : 'logistic_regression');
    }
  });

  it('records the best trial (by validation ROC AUC) on the parent and registers nothing', async () => {
    const best = result.trials.reduce((a, b) => (b.validationRocAuc > a.validationRocAuc ? b : a));
    expect(result.best.runId).toBe(best.runId);
    const parent = await mlflow.getRun(result.parentRunId);
    const tags = Object.fromEntries((parent.data.tags ?? []).map((x) => [x.key, x.value]));
    expect(tags['driftwood.best_run_id']).toBe(best.runId);
    expect(tags['mlflow.parentRunId']).toBeUndefined();
    const metrics = Object.fromEntries((parent.data.metrics ?? []).map((m) => [m.key, m.value]));
    expect(metrics.best_validation_roc_auc).toBeCloseTo(best.validationRocAuc, 9);
    expect(metrics.trials).toBe(3);
    expect(parent.info.status).toBe('FINISHED');
    expect(await mlflow.getVersionByAlias(modelName, 'challenger')).toBeUndefined();
  });
});
