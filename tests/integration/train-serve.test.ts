import { DriftwoodError, type MlflowClient, type Warehouse } from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { parseTransformState, transformRow } from '../../tasks/src/features/transform.js';
import { loadModelFiles } from '../../tasks/src/models/artifact.js';
import { applyCalibration, CALIBRATION_FILE, parseCalibration } from '../../tasks/src/models/calibration.js';
import { compileDenseChain } from '../../tasks/src/models/dense-fast-path.js';
import { predictProba } from '../../tasks/src/models/logistic.js';
import { DEFAULT_POLICY } from '../../tasks/src/promote/decide.js';
import { runPromote } from '../../tasks/src/promote/index.js';
import { runTrain, type TrainResult } from '../../tasks/src/train/index.js';
import { mlflowClient, seededWarehouse, silentLog, uniqueName } from '../support/env.js';

const EPOCHS = 12;

describe('train → MLflow → registry → promote → serve, against a live MLflow server', () => {
  let db: Warehouse;
  let mlflow: MlflowClient;
  let modelName: string;
  let experiment: string;
  let trained: TrainResult;
  let app: FastifyInstance;

  const train = (seed: number) =>
    runTrain(
      {
        dataset: 'churn',
        experiment,
        modelName,
        horizonHours: 48,
        labelDelayHours: 24,
        // patience 0: every epoch runs, so the per-epoch history below has EPOCHS points.
        // The TF.js logistic regression, named: what this file checks end to end is its files and path.
        params: {
          kind: 'logistic',
          epochs: EPOCHS,
          learningRate: 0.05,
          batchSize: 64,
          l2: 0.001,
          seed,
          patience: 0,
        },
        holdoutFraction: 0.2,
        validationFraction: 0.15,
      },
      {
        db,
        mlflow,
        log: silentLog,
        now: Date.now,
        source: { commit: 'abc1234', user: 'test', packages: { node: process.versions.node } },
      },
    );

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-it');
    experiment = uniqueName('exp-it');
    ({ db } = await seededWarehouse({ hours: 144, seed: 11, customers: 800 }));
    trained = await train(7);
  });

  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  it('learns something real on the holdout', () => {
    expect(trained.rows.positives).toBeGreaterThan(10);
    expect(trained.metrics.roc_auc).toBeGreaterThan(0.6);
    expect(trained.metrics.roc_auc).toBeLessThan(1);
  });

  it('records params, per-epoch metrics, tags and the dataset input on the run', async () => {
    const run = await mlflow.getRun(trained.runId);
    const params = Object.fromEntries((run.data.params ?? []).map((p) => [p.key, p.value]));
    expect(params.model).toBe('logistic_regression');
    expect(params.epochs).toBe(String(EPOCHS));
    // The churn contract declares neither: the defaults.
    expect(params.calibration).toBe('platt');
    expect(params.threshold_objective).toBe('f1');
    const tags = Object.fromEntries((run.data.tags ?? []).map((t) => [t.key, t.value]));
    expect(tags['mlflow.source.git.commit']).toBe('abc1234');
    expect(tags['mlflow.runName']).toMatch(/^churn \w+ [0-9a-f]{8} /);
    expect(tags['mlflow.user']).toBe('test');
    expect(run.info.status).toBe('FINISHED');
    const metricKeys = (run.data.metrics ?? []).map((m) => m.key);
    expect(metricKeys).toEqual(
      expect.arrayContaining([
        'loss',
        'val_loss',
        'holdout_roc_auc',
        'holdout_log_loss',
        'validation_log_loss_uncalibrated',
        'holdout_log_loss_uncalibrated',
      ]),
    );
    const metrics = Object.fromEntries((run.data.metrics ?? []).map((m) => [m.key, m.value]));
    // Class weights make the raw scores over-predict churn; Platt, fitted on validation, corrects it.
    expect(metrics.validation_log_loss).toBeLessThan(metrics.validation_log_loss_uncalibrated as number);
    expect(metrics.holdout_log_loss).toBeLessThan(metrics.holdout_log_loss_uncalibrated as number);
    expect(run.inputs?.dataset_inputs?.[0]?.dataset.name).toBe('churn-features');
    expect(run.inputs?.dataset_inputs?.[0]?.dataset.digest).toBe(trained.dataDigest.slice(0, 36));
    expect(run.outputs?.model_outputs?.[0]?.model_id).toBe(trained.modelId);
  });

  it('logs one loss point per epoch, with steps 0..epochs-1', async () => {
    const res = await fetch(
      `${inject('mlflowUri')}/api/2.0/mlflow/metrics/get-history?run_id=${trained.runId}&metric_key=loss`,
    );
    const body = (await res.json()) as { metrics: { step: number }[] };
    expect(body.metrics.map((m) => m.step).sort((a, b) => a - b)).toEqual(
      Array.from({ length: EPOCHS }, (_, i) => i),
    );
  });

  it('stores the model as an MLflow model with its files, and a READY version with alias challenger', async () => {
    const mv = await mlflow.getVersionByAlias(modelName, 'challenger');
    expect(mv?.version).toBe(trained.modelVersion);
    expect(mv?.status).toBe('READY');
    expect(mv?.run_id).toBe(trained.runId);
    const root = await mlflow.resolveVersionArtifacts(mv as NonNullable<typeof mv>);
    const files = (await mlflow.listArtifacts(root)).map((f) => f.path.split('/').pop());
    expect(files).toEqual(
      expect.arrayContaining(['MLmodel', 'model.json', 'weights.bin', 'transform.json', CALIBRATION_FILE]),
    );
    const calibration = parseCalibration(
      JSON.parse((await mlflow.downloadArtifact(root, CALIBRATION_FILE)).toString()),
    );
    expect(calibration.method).toBe('platt');
    expect(mv?.tags?.find((t) => t.key === 'driftwood.calibration')?.value).toBe('platt');
    const mlmodel = (await mlflow.downloadArtifact(root, 'MLmodel')).toString();
    expect(mlmodel).toMatch(/flavors:\n {2}tfjs:/);
    expect(mlmodel).toMatch(/signature:\n {2}inputs: '\[\{"type":"double","name":"tenure_days"/);
  });

  it('the typed-array fast path agrees with TF.js to 1e-6', async () => {
    const mv = await mlflow.getVersionByAlias(modelName, 'challenger');
    const root = await mlflow.resolveVersionArtifacts(mv as NonNullable<typeof mv>);
    const model = await loadModelFiles({
      modelJson: (await mlflow.downloadArtifact(root, 'model.json')).toString(),
      weights: await mlflow.downloadArtifact(root, 'weights.bin'),
    });
    const width = model.inputs[0]?.shape[1] as number;
    const x = Float32Array.from({ length: width * 200 }, (_, i) => Math.sin(i * 12.9898) * 3);
    const tfOut = predictProba(model, x, width);
    const fast = compileDenseChain(model);
    expect(fast).toBeDefined();
    for (let r = 0; r < 200; r++) {
      const y = (fast as (v: Float32Array) => Float32Array)(
        x.subarray(r * width, (r + 1) * width),
      )[0] as number;
      expect(Math.abs(y - (tfOut[r] as number))).toBeLessThan(1e-6);
    }
    model.dispose();
  });

  it('promotes the challenger to champion, and a failed gate leaves the champion alone', async () => {
    const ok = await runPromote(
      { modelName, alias: 'champion', policy: { ...DEFAULT_POLICY, minRocAuc: 0.6 } },
      { mlflow, log: silentLog, now: Date.now },
    );
    expect(ok).toMatchObject({ promoted: true, version: trained.modelVersion, previous: null });
    expect((await mlflow.getVersionByAlias(modelName, 'champion'))?.version).toBe(trained.modelVersion);

    const second = await train(8);
    let caught: unknown;
    try {
      await runPromote(
        { modelName, alias: 'champion', policy: { ...DEFAULT_POLICY, minRocAuc: 0.999 } },
        { mlflow, log: silentLog, now: Date.now },
      );
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DriftwoodError);
    expect((caught as DriftwoodError).code).toBe('GATE_NOT_PASSED');
    expect((caught as DriftwoodError).exitCode).toBe(99);
    expect((await mlflow.getVersionByAlias(modelName, 'champion'))?.version).toBe(trained.modelVersion);
    const rejected = await mlflow.getModelVersion(modelName, second.modelVersion);
    expect(rejected.tags?.find((t) => t.key === 'driftwood.gate.champion')?.value).toMatch(
      /^failed at .*: min_roc_auc: /,
    );
  });

  describe('the API', () => {
    beforeAll(async () => {
      app = await buildApp({ openAccess: true, mlflow, modelName, alias: 'champion' });
      await app.ready();
    });

    const customer = {
      customer_id: 'C000042',
      tenure_days: 35,
      monthly_charges: 19.5,
      sessions_7d: 0,
      sessions_30d: 1,
      minutes_30d: 4,
      tickets_30d: 3,
      payment_failures_30d: 2,
      purchases_30d: 0,
      hours_since_last_session: 150,
      plan: 'basic',
      region: 'north',
    };

    it('is ready with the champion loaded', async () => {
      const res = await app.inject({ method: 'GET', url: '/health/ready' });
      expect(res.statusCode).toBe(200);
      expect(res.json().model).toEqual({ name: modelName, version: trained.modelVersion, alias: 'champion' });
    });

    it('predicts a probability with the served model version', async () => {
      const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: customer });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.probability).toBeGreaterThan(0);
      expect(body.probability).toBeLessThan(1);
      // The label is at the threshold the run chose on validation, which the version carries.
      expect(body.label).toBe(body.probability >= trained.metrics.threshold ? 1 : 0);
      expect(body.model).toEqual({ name: modelName, version: trained.modelVersion, alias: 'champion' });
    });

    it('answers the calibrated probability: the model file’s score through calibration.json', async () => {
      const mv = await mlflow.getVersionByAlias(modelName, 'champion');
      const root = await mlflow.resolveVersionArtifacts(mv as NonNullable<typeof mv>);
      const model = await loadModelFiles({
        modelJson: (await mlflow.downloadArtifact(root, 'model.json')).toString(),
        weights: await mlflow.downloadArtifact(root, 'weights.bin'),
      });
      const state = parseTransformState(
        JSON.parse((await mlflow.downloadArtifact(root, 'transform.json')).toString()),
      );
      const calibration = parseCalibration(
        JSON.parse((await mlflow.downloadArtifact(root, CALIBRATION_FILE)).toString()),
      );
      const { customer_id: _, ...features } = customer;
      const raw = compileDenseChain(model)?.(transformRow(state, features))[0] as number;
      model.dispose();
      const served = (await app.inject({ method: 'POST', url: '/v1/predict', payload: customer })).json()
        .probability;
      expect(served).toBe(applyCalibration(calibration, raw));
      expect(served).not.toBe(raw);
    });

    it('scores a disengaged, friction-heavy customer above an engaged one', async () => {
      const engaged = {
        ...customer,
        sessions_7d: 12,
        sessions_30d: 40,
        minutes_30d: 600,
        tickets_30d: 0,
        payment_failures_30d: 0,
        hours_since_last_session: 2,
        plan: 'premium',
      };
      const a = (await app.inject({ method: 'POST', url: '/v1/predict', payload: customer })).json()
        .probability;
      const b = (await app.inject({ method: 'POST', url: '/v1/predict', payload: engaged })).json()
        .probability;
      expect(a).toBeGreaterThan(b);
    });

    it.each([
      [{ ...customer, tenure_days: 'abc' }, /body\.tenure_days must be a number or null/],
      [{ ...customer, plan: 7 }, /body\.plan must be a string/],
      [{ ...customer, colour: 'blue' }, /body\.colour is not a known field/],
      [{ tenure_days: 3, region: 'north' }, /body\.plan is required/],
    ])('answers 400 naming the field for %j', async (payload, message) => {
      const res = await app.inject({ method: 'POST', url: '/v1/predict', payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toMatch(message);
    });

    it('answers 400 for a body that is not JSON, and 413 for one over the limit', async () => {
      const bad = await app.inject({
        method: 'POST',
        url: '/v1/predict',
        payload: '{"plan":',
        headers: { 'content-type': 'application/json' },
      });
      expect(bad.statusCode).toBe(400);
      const big = await app.inject({
        method: 'POST',
        url: '/v1/predict',
        payload: { ...customer, customer_id: 'x'.repeat(70_000) },
      });
      expect(big.statusCode).toBe(413);
    });
  });

  it('an API whose alias points nowhere is live but not ready, and refuses predictions with 503', async () => {
    const empty = await buildApp({
      openAccess: true,
      mlflow,
      modelName: uniqueName('nomodel'),
      alias: 'champion',
    });
    await empty.ready();
    expect((await empty.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    expect((await empty.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(503);
    expect(
      (
        await empty.inject({
          method: 'POST',
          url: '/v1/predict',
          payload: { plan: 'basic', region: 'north' },
        })
      ).statusCode,
    ).toBe(503);
    await empty.close();
  });
});
