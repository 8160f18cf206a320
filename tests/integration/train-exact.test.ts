import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { MlflowClient, Warehouse } from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { loadModelFiles } from '../../tasks/src/models/artifact.js';
import { applyCalibration, CALIBRATION_FILE, parseCalibration } from '../../tasks/src/models/calibration.js';
import { type ExactLogisticFit, fitLogisticExact } from '../../tasks/src/models/logistic-exact.js';
import { DEFAULT_MODEL_PARAMS } from '../../tasks/src/models/params.js';
import { type PreparedData, prepareTrainingData } from '../../tasks/src/train/data.js';
import { runTrain, type TrainResult } from '../../tasks/src/train/index.js';
import {
  landAndIngest,
  mlflowClient,
  runCli,
  seededWarehouse,
  silentLog,
  tempHome,
  uniqueName,
} from '../support/env.js';

/**
 * A logistic regression fitted by the exact solver goes through the real train step into a live
 * MLflow, and the API serves the very optimum: the weights it loads are the solver's (as float32,
 * the form every TF.js logistic model is saved in) and its probabilities are the solver's.
 */
describe('train --solver exact → MLflow → serve, against a live MLflow server', () => {
  let db: Warehouse;
  let mlflow: MlflowClient;
  let modelName: string;
  let trained: TrainResult;
  let data: PreparedData;
  let fit: ExactLogisticFit;
  let app: FastifyInstance;
  const options = {
    dataset: 'churn',
    horizonHours: 48,
    labelDelayHours: 24,
    holdoutFraction: 0.2,
    validationFraction: 0.15,
  };

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-exact');
    ({ db } = await seededWarehouse({ hours: 144, seed: 11, customers: 800 }));
    trained = await runTrain(
      { ...options, experiment: uniqueName('exp-exact'), modelName, params: { solver: 'exact' } },
      {
        db,
        mlflow,
        log: silentLog,
        now: Date.now,
        source: { commit: 'abc1234', user: 'test', packages: { node: process.versions.node } },
      },
    );
    // The same rows the step trained on (same options, same split seed), fitted here independently.
    data = await prepareTrainingData(
      { ...options, splitSeed: DEFAULT_MODEL_PARAMS.seed },
      { db, log: silentLog },
    );
    fit = fitLogisticExact(data.train.x, data.train.y, data.width, {
      l2: DEFAULT_MODEL_PARAMS.l2,
      classWeighting: true,
      signs: data.profile.signs(data.state.outputs),
    });
    app = await buildApp({ openAccess: true, mlflow, modelName, alias: 'challenger' });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  it('records the solver and its iterations on the run, and learns something real', async () => {
    expect(fit.converged).toBe(true);
    const run = await mlflow.getRun(trained.runId);
    const params = Object.fromEntries((run.data.params ?? []).map((p) => [p.key, p.value]));
    expect(params.solver).toBe('exact');
    expect(params.model).toBe('logistic_regression');
    expect(trained.epochsRun).toBe(fit.iterations);
    expect(trained.metrics.roc_auc).toBeGreaterThan(0.6);
    const res = await fetch(
      `${inject('mlflowUri')}/api/2.0/mlflow/metrics/get-history?run_id=${trained.runId}&metric_key=loss`,
    );
    const losses = ((await res.json()) as { metrics: { step: number; value: number }[] }).metrics
      .sort((a, b) => a.step - b.step)
      .map((m) => m.value);
    expect(losses).toHaveLength(fit.iterations);
    expect(losses.at(-1)).toBeCloseTo(fit.loss, 12);
  });

  it('registers the solver’s optimum, in the TF.js artifact form, with every direction kept', async () => {
    const mv = await mlflow.getVersionByAlias(modelName, 'challenger');
    expect(mv?.version).toBe(trained.modelVersion);
    const root = await mlflow.resolveVersionArtifacts(mv as NonNullable<typeof mv>);
    const model = await loadModelFiles({
      modelJson: (await mlflow.downloadArtifact(root, 'model.json')).toString(),
      weights: await mlflow.downloadArtifact(root, 'weights.bin'),
    });
    const [kernel, bias] = model.getWeights();
    const stored = Float32Array.from(kernel?.dataSync() ?? []);
    expect(Buffer.from(stored.buffer).equals(Buffer.from(Float32Array.from(fit.weights).buffer))).toBe(true);
    expect(bias?.dataSync()[0]).toBe(Math.fround(fit.intercept));
    const signs = data.profile.signs(data.state.outputs);
    expect(Array.from(signs).some((s) => s !== 0)).toBe(true);
    stored.forEach((w, j) => {
      expect(w * (signs[j] as number)).toBeGreaterThanOrEqual(0);
    });
    model.dispose();
  });

  it('serves the probabilities of the exact fit (through its calibration) for 100 holdout customers', async () => {
    const version = await mlflow.getModelVersion(modelName, trained.modelVersion);
    const calibration = parseCalibration(
      JSON.parse(
        (
          await mlflow.downloadArtifact(await mlflow.resolveVersionArtifacts(version), CALIBRATION_FILE)
        ).toString(),
      ),
    );
    const rows = data.parts.holdout.slice(0, 100);
    expect(rows).toHaveLength(100);
    let maxGap = 0;
    for (const [i, r] of rows.entries()) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/predict',
        payload: { customer_id: r.customerId, ...r.features },
      });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json() as { probability: number; model: { version: string } };
      expect(body.model.version).toBe(trained.modelVersion);
      // The same vector the training matrix holds, scored with the solver's float64 weights.
      const x = data.holdout.x.subarray(i * data.width, (i + 1) * data.width);
      let z = fit.intercept;
      for (let j = 0; j < data.width; j++) z += (x[j] as number) * (fit.weights[j] as number);
      const expected = applyCalibration(calibration, 1 / (1 + Math.exp(-z)));
      maxGap = Math.max(maxGap, Math.abs(body.probability - expected));
    }
    // float32 weights and output (before the calibration): the only difference from the float64 optimum.
    expect(maxGap).toBeLessThan(1e-6);
  });

  it('is what `driftwood train --solver exact` runs', async () => {
    const home = tempHome('driftwood-exact-');
    const env = {
      DRIFTWOOD_HOME: home,
      MLFLOW_TRACKING_URI: inject('mlflowUri'),
      DRIFTWOOD_MODEL_NAME: uniqueName('churn-exact-cli'),
      DRIFTWOOD_EXPERIMENT: uniqueName('exact-cli'),
      DRIFTWOOD_PII_KEY: 'exact-key-0123456789abcdef',
      LOG_LEVEL: 'warn',
    };
    await landAndIngest(env, { hours: 120, seed: 12, customers: 600 });
    const r = await runCli(['train', '--dataset', 'churn', '--solver', 'exact'], env);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(path.join(home, 'results', 'train.json'), 'utf8'));
    const run = await mlflow.getRun(result.runId);
    const params = Object.fromEntries((run.data.params ?? []).map((p) => [p.key, p.value]));
    expect(params.solver).toBe('exact');
    // Newton iterations, not the 40 epochs Adam would be allowed.
    expect(result.epochsRun).toBeLessThan(20);
    const bad = await runCli(['train', '--dataset', 'churn', '--solver', 'newton'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--solver: expected adam or exact, got 'newton'");
  });
});
