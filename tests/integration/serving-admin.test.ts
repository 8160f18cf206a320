import type { MlflowClient } from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { hashPassword, parseCredentials } from '../../serving/src/auth/credentials.js';
import { summarisePredictions } from '../../serving/src/routes/prediction-summary.js';
import { prPng, rocPng } from '../../tasks/src/evaluate/plots.js';
import { moveAlias } from '../../tasks/src/promote/index.js';
import { mlflowClient, uniqueName } from '../support/env.js';
import { registerTestModel, sampleCustomer } from '../support/serving-model.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const PREDICTOR = basic('predictor', 'predictor-password-1');
const OPERATOR = basic('operator', 'operator-password-1');

/** The routes the dashboard needs, on a live MLflow: model list, inputs, explanations, rollback. */
describe('dashboard routes of the API', () => {
  let mlflow: MlflowClient;
  let modelName: string;
  let app: FastifyInstance;
  let v1: string;
  let v2: string;
  let roc: Buffer;

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-admin');
    const experiment = uniqueName('exp-admin');
    v1 = (await registerTestModel(mlflow, { modelName, experiment, seed: 21 })).version;
    const second = await registerTestModel(mlflow, { modelName, experiment, seed: 22 });
    v2 = second.version;
    // Only version 2 has the plots training logs.
    roc = rocPng(
      [
        [0, 0],
        [0.2, 0.7],
        [1, 1],
      ],
      0.8,
    );
    const runUri = (await mlflow.getRun(second.runId)).info.artifact_uri;
    await mlflow.uploadArtifact(runUri, 'plots/roc.png', roc);
    await mlflow.uploadArtifact(
      runUri,
      'plots/pr.png',
      prPng(
        [
          [0, 1],
          [0.5, 0.6],
          [1, 0.3],
        ],
        0.6,
        0.3,
      ),
    );
    const move = { alias: 'champion', action: 'promote' as const, by: 'test', reason: 'gate passed' };
    await moveAlias(
      mlflow,
      { ...move, at: new Date(Date.now() - 60_000).toISOString(), version: v1, previous: null },
      modelName,
    );
    await moveAlias(
      mlflow,
      { ...move, at: new Date(Date.now() - 30_000).toISOString(), version: v2, previous: v1 },
      modelName,
    );
    const credentials = parseCredentials(
      [
        `predictor:predict:${await hashPassword('predictor-password-1')}`,
        `operator:predict,admin:${await hashPassword('operator-password-1')}`,
      ].join('\n'),
    );
    app = await buildApp({ mlflow, modelName, alias: 'champion', credentials });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
  });

  it('lists the versions with their run metrics, aliases and the audit trail, newest first', async () => {
    const res = await app.inject({ url: '/v1/models', headers: { authorization: PREDICTOR } });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.aliases).toEqual({ champion: v2 });
    expect(body.versions.map((v: { version: string }) => v.version)).toEqual([v2, v1]);
    expect(body.versions[0].aliases).toEqual(['champion']);
    expect(body.versions[0].metrics.holdout_roc_auc).toBeGreaterThan(0.5);
    expect(body.history.map((e: { version: string }) => e.version)).toEqual([v2, v1]);
  });

  it('describes the input fields with the known categories and explains a prediction', async () => {
    const inputs = (await app.inject({ url: '/v1/inputs', headers: { authorization: PREDICTOR } })).json();
    expect(inputs.categorical.find((c: { name: string }) => c.name === 'plan').values).toContain('basic');
    expect(inputs.numeric).toHaveLength(9);
    const x = await app.inject({
      method: 'POST',
      url: '/v1/explain',
      payload: sampleCustomer,
      headers: { authorization: PREDICTOR },
    });
    expect(x.statusCode).toBe(200);
    const p = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: sampleCustomer,
      headers: { authorization: PREDICTOR },
    });
    expect(x.json().probability).toBeCloseTo(p.json().probability, 6);
    expect(x.json().contributions).toHaveLength(11);
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/explain',
      payload: { ...sampleCustomer, tenure_days: 'long' },
      headers: { authorization: PREDICTOR },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/tenure_days/);
  });

  it('refuses rollback to a predict user and rolls back for an admin, then serves the old version', async () => {
    const refused = await app.inject({
      method: 'POST',
      url: '/v1/admin/rollback',
      payload: {},
      headers: { authorization: PREDICTOR },
    });
    expect(refused.statusCode).toBe(403);
    expect((await mlflow.getVersionByAlias(modelName, 'champion'))?.version).toBe(v2);

    const res = await app.inject({
      method: 'POST',
      url: '/v1/admin/rollback',
      payload: { reason: 'bad canary' },
      headers: { authorization: OPERATOR },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ version: v1, previous: v2, served: v1 });
    expect((await mlflow.getVersionByAlias(modelName, 'champion'))?.version).toBe(v1);
    const models = (await app.inject({ url: '/v1/models', headers: { authorization: PREDICTOR } })).json();
    expect(models.history[0]).toMatchObject({
      action: 'rollback',
      by: 'operator',
      version: v1,
      reason: 'bad canary',
    });
  });

  it('answers 404 naming the version when the target does not exist, and the alias stays', async () => {
    for (const url of ['/v1/admin/rollback', '/v1/admin/promote']) {
      const res = await app.inject({
        method: 'POST',
        url,
        payload: { version: '999999' },
        headers: { authorization: OPERATOR },
      });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toMatchObject({ error: 'version_not_found' });
      expect(res.json().message).toBe(`model ${modelName} has no version 999999`);
    }
    expect((await mlflow.getVersionByAlias(modelName, 'champion'))?.version).toBe(v1);
  });

  it('hands a promotion to the promote step in a child process; a refusal leaves the alias', async () => {
    const refused = await app.inject({
      method: 'POST',
      url: '/v1/admin/promote',
      payload: { version: v2 },
      headers: { authorization: PREDICTOR },
    });
    expect(refused.statusCode).toBe(403);
    // These versions were registered without a snapshot to judge them on: the step cannot pass them.
    const res = await app.inject({
      method: 'POST',
      url: '/v1/admin/promote',
      payload: { version: v2 },
      headers: { authorization: OPERATOR },
    });
    expect([409, 502], res.body).toContain(res.statusCode);
    expect(['gate_not_passed', 'not_ready', 'promotion_failed']).toContain(res.json().error);
    expect(res.json().message.length).toBeGreaterThan(0);
    expect((await mlflow.getVersionByAlias(modelName, 'champion'))?.version).toBe(v1);
  }, 120_000);

  it('answers 404 for the prediction summary when the API writes no log', async () => {
    const res = await app.inject({ url: '/v1/monitoring/predictions', headers: { authorization: OPERATOR } });
    expect(res.statusCode).toBe(404);
    const bad = await app.inject({
      url: '/v1/monitoring/predictions?hours=500',
      headers: { authorization: OPERATOR },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/hours/);
    const refused = await app.inject({
      url: '/v1/monitoring/predictions',
      headers: { authorization: PREDICTOR },
    });
    expect(refused.statusCode).toBe(403);
  });
  it("serves a version's training plots from its run, and 404 naming the plot when there is none", async () => {
    const res = await app.inject({
      url: `/v1/models/${v2}/plots/roc`,
      headers: { authorization: PREDICTOR },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    expect(Buffer.compare(res.rawPayload, roc)).toBe(0);
    const none = await app.inject({
      url: `/v1/models/${v1}/plots/pr`,
      headers: { authorization: PREDICTOR },
    });
    expect(none.statusCode).toBe(404);
    expect(none.json().message).toMatch(/pr plot/);
    const bad = await app.inject({
      url: `/v1/models/${v2}/plots/lift`,
      headers: { authorization: PREDICTOR },
    });
    expect(bad.statusCode).toBe(400);
  });
});

describe('summarisePredictions', () => {
  it('counts served lines per hour and per score decile, skipping shadow and partial lines', () => {
    const line = (p: number, served = true) =>
      JSON.stringify({ served, probability: p, label: p >= 0.5 ? 1 : 0 });
    const s = summarisePredictions([
      { hour: 'h1', text: `${line(0.05)}\n${line(0.95)}\n${line(0.5, false)}\n{"served":tr` },
      { hour: 'h2', text: '' },
    ]);
    expect(s.total).toBe(2);
    expect(s.hours).toEqual([
      { hour: 'h1', count: 2, churned: 1, meanProbability: 0.5 },
      { hour: 'h2', count: 0, churned: 0, meanProbability: null },
    ]);
    expect(s.histogram).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });
});
