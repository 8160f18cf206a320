import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  assignVariant,
  ensureContractTables,
  findExperiment,
  loadContract,
  type MlflowClient,
  openWarehouse,
  runExperimentLooks,
  type Warehouse,
} from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { Rng } from '../../tasks/src/random.js';
import { mlflowClient, silentLog, tempHome, uniqueName } from '../support/env.js';
import { CHURN_FIELDS, type RegisteredTestModel, registerTestModel } from '../support/serving-model.js';

/**
 * Issue 23, item 3, end to end: an experiment declared through the real API over two versions in
 * the suite's MLflow, customers answered by their variant, the prediction log, labels simulated in a
 * real (SQLite) warehouse from the treatment's own probabilities — so the treatment is truly the
 * better model — then the analysis step, its MLflow run and the API's report of the decision.
 */
const PII_KEY = 'experiments-test-key-0123456789';
const CUSTOMERS = 1200;
const H = 3_600_000;

describe('an A/B experiment through the API, the prediction log, labels and MLflow', () => {
  let mlflow: MlflowClient;
  let app: FastifyInstance;
  let db: Warehouse;
  let home: string;
  let modelName: string;
  let champion: RegisteredTestModel;
  let challenger: RegisteredTestModel;
  const name = uniqueName('ab').toLowerCase();
  const rng = new Rng(23);
  const rows = Array.from({ length: CUSTOMERS }, (_, i) => {
    const row: Record<string, unknown> = {
      customer_id: `AB${i}`,
      plan: ['basic', 'standard', 'premium'][rng.int(0, 3)],
      region: ['north', 'south', 'east', 'west'][rng.int(0, 4)],
    };
    for (const f of CHURN_FIELDS.numeric) row[f] = Math.round((10 + rng.next() * 180) * 100) / 100;
    return row;
  });

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-ab');
    const experiment = uniqueName('exp-ab');
    champion = await registerTestModel(mlflow, { modelName, experiment, seed: 31, alias: 'champion' });
    challenger = await registerTestModel(mlflow, { modelName, experiment, seed: 32, alias: 'challenger' });
    home = tempHome('driftwood-ab-');
    app = await buildApp({
      mlflow,
      modelName,
      alias: 'champion',
      openAccess: true,
      predictionLog: { dir: path.join(home, 'predictions'), piiKey: PII_KEY, flushMs: 50 },
    });
    await app.ready();
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    await ensureContractTables(db, await loadContract('churn'));
  });

  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  const declaration = {
    variants: [
      { name: 'control', model: 'champion', allocation: 0.5 },
      { name: 'treatment', model: 'challenger', allocation: 0.5 },
    ],
    primary_metric: 'brier',
    minimum_sample: 200,
    stop_rule: { max_samples_per_variant: 5000, max_days: 28 },
    alpha: 0.05,
  };
  const put = (experiment: string, body: unknown) =>
    app.inject({ method: 'PUT', url: `/v1/admin/experiments/${experiment}`, payload: body as object });

  it('refuses a declaration with an error naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ ...declaration, alpha: 2 }, 'experiment alpha:'],
      [{ ...declaration, primary_metric: 'roc_auc' }, 'experiment primary_metric:'],
      [
        {
          ...declaration,
          variants: [declaration.variants[0], { name: 'treatment', model: 'nosuch', allocation: 0.5 }],
        },
        `experiment variants[1].model: model ${modelName} has no alias 'nosuch'`,
      ],
      [{ ...declaration, dataset: 'elsewhere' }, "experiment dataset: 'elsewhere' is not served here"],
    ];
    for (const [body, message] of cases) {
      const res = await put(name, body);
      expect(res.statusCode, message).toBe(400);
      expect(res.json().message).toContain(message);
    }
    expect(await findExperiment(mlflow, name)).toBeUndefined();
  });

  it('declares the experiment, pins each variant to its version and refuses a second one on the dataset', async () => {
    const res = await put(name, declaration);
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({
      name,
      dataset: modelName,
      status: 'running',
      serving_here: true,
      on_decision: 'record',
      action: null,
      action_detail: null,
    });
    expect(body.variants.map((v: { version: string }) => v.version)).toEqual([
      champion.version,
      challenger.version,
    ]);
    const again = await put(`${name}-2`, declaration);
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toContain(`experiment ${name} is running`);
  });

  it('answers each customer with their variant, sticky, and logs experiment and variant', async () => {
    const versionOf = new Map<string, string>();
    for (let i = 0; i < rows.length; i += 100) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/predict/batch',
        payload: { rows: rows.slice(i, i + 100) },
      });
      expect(res.statusCode).toBe(200);
      for (const [k, p] of res.json().predictions.entries())
        versionOf.set(rows[i + k]?.customer_id as string, p.model.version);
    }
    const want = (id: string) =>
      assignVariant(name, id, declaration.variants).name === 'control'
        ? champion.version
        : challenger.version;
    for (const [id, version] of versionOf) expect(version, id).toBe(want(id));
    const treated = [...versionOf.values()].filter((v) => v === challenger.version).length;
    expect(Math.abs(treated - CUSTOMERS / 2)).toBeLessThan(4 * Math.sqrt(CUSTOMERS / 4));
    // Sticky: the same customers again get the same versions; a row without an id gets the champion.
    for (const row of rows.slice(0, 20)) {
      const one = (await app.inject({ method: 'POST', url: '/v1/predict', payload: row })).json();
      expect(one.model.version).toBe(versionOf.get(row.customer_id as string));
    }
    const { customer_id: _id, ...anonymous } = rows[0] as Record<string, unknown>;
    const anon = (await app.inject({ method: 'POST', url: '/v1/predict', payload: anonymous })).json();
    expect(anon.model.version).toBe(champion.version);

    await app.predictionLog?.flush();
    const hour = new Date().toISOString();
    const file = path.join(
      home,
      'predictions',
      `dt=${hour.slice(0, 10)}`,
      `hr=${hour.slice(11, 13)}`,
      'predictions.jsonl',
    );
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const inExperiment = lines.filter((l) => l.experiment === name);
    expect(inExperiment.length).toBe(CUSTOMERS + 20);
    for (const l of inExperiment.slice(0, 50)) {
      expect(l.variant === 'control' ? champion.version : challenger.version).toBe(l.model.version);
      expect(JSON.stringify(l)).not.toContain('AB');
    }
    expect(lines.filter((l) => l.experiment === undefined)).toHaveLength(1);
  });

  it('decides for the truly better variant once labels arrive, in MLflow and in the API', async () => {
    // The truth is the treatment's own probability for every customer, so it is the better model.
    const live = app.experiments.runningFor(modelName);
    const treatment = live?.variants.find((v) => v.name === 'treatment')?.model;
    expect(treatment).toBeDefined();
    const t0 = Date.now();
    const labels = rows.flatMap((row) => {
      const p = treatment?.model.score(row) as number;
      return rng.next() < p
        ? [
            {
              customer_id: row.customer_id,
              churned_at: t0 + H,
              reported_at: t0 + 2 * H,
              source_key: 'simulated',
            },
          ]
        : [];
    });
    // The label feed has come 100 h past the predictions: their 48 h horizon and 24 h delay are over.
    labels.push({
      customer_id: 'W-watermark',
      churned_at: t0 + 90 * H,
      reported_at: t0 + 100 * H,
      source_key: 'simulated',
    });
    for (let i = 0; i < labels.length; i += 200) await db('labels').insert(labels.slice(i, i + 200));

    const churn = await loadContract('churn');
    // The daily look: declared without `on_decision`, its promote decision is recorded, not applied.
    const {
      looks: [look],
    } = await runExperimentLooks(
      {
        experiments: [name],
        asOf: Date.now(),
        predictionsDir: path.join(home, 'predictions'),
        piiKey: PII_KEY,
      },
      { mlflow, warehouse: db, loadContract: async () => churn, log: silentLog, now: Date.now },
    );
    const analysis = look?.analysis;
    if (!analysis) throw new Error('the look made no analysis');
    expect(analysis).toMatchObject({ decision: 'promote', winner: 'treatment', final: true, look: 1 });
    expect(look?.action).toMatchObject({ state: 'recorded', version: challenger.version });
    const [control, treated] = analysis.variants;
    expect((control?.customers ?? 0) + (treated?.customers ?? 0)).toBe(CUSTOMERS);
    expect(treated?.brier.value).toBeLessThan(control?.brier.value as number);
    for (const v of analysis.variants) {
      for (const m of [v.roc_auc, v.brier, v.log_loss, v.cost]) {
        expect(m.low).toBeLessThanOrEqual(m.value);
        expect(m.high).toBeGreaterThanOrEqual(m.value);
      }
      // A percentile bootstrap: the calibration error is biased upwards in a resample, so its
      // interval need not hold the point value; it must still be an interval.
      expect(v.calibration_error.low).toBeLessThan(v.calibration_error.high);
    }
    expect(analysis.comparisons[0]?.high).toBeLessThan(0);

    const found = await findExperiment(mlflow, name);
    expect(found?.stored.status).toBe('decided');
    const tags = Object.fromEntries((found?.run.data.tags ?? []).map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({ 'driftwood.ab.decision': 'promote', 'driftwood.ab.winner': 'treatment' });
    expect(found?.run.info.status).toBe('FINISHED');
    const metrics = Object.fromEntries((found?.run.data.metrics ?? []).map((m) => [m.key, m.value]));
    expect(metrics['treatment.p_value']).toBeLessThanOrEqual(0.05);

    // The dashboard's source: the decision, and the traffic each variant took here.
    const list = (await app.inject({ url: '/v1/experiments' })).json();
    const shown = list.experiments.find((e: { name: string }) => e.name === name);
    expect(shown).toMatchObject({
      status: 'decided',
      analysis: { decision: 'promote', winner: 'treatment' },
      on_decision: 'record',
      action: 'recorded',
    });
    expect(shown.action_detail).toContain(`promote treatment (version ${challenger.version}) recorded`);
    const one = await app.inject({ url: `/v1/experiments/${name}` });
    expect(one.json()).toMatchObject({ action: 'recorded', action_detail: shown.action_detail });
    const openapi = (await app.inject({ url: '/docs/json' })).json();
    const listed = openapi.paths['/v1/experiments'].get.responses['200'].content['application/json'].schema;
    expect(Object.keys(listed.properties.experiments.items.properties)).toEqual(
      expect.arrayContaining(['on_decision', 'action', 'action_detail']),
    );
    expect(shown.variants.reduce((s: number, v: { served_here: number }) => s + v.served_here, 0)).toBe(
      CUSTOMERS + 20,
    );
    // A decided experiment ends: its customers get the champion again.
    const treatedRow = rows.find(
      (r) => assignVariant(name, r.customer_id as string, declaration.variants).name === 'treatment',
    );
    const after = (await app.inject({ method: 'POST', url: '/v1/predict', payload: treatedRow })).json();
    expect(after.model.version).toBe(champion.version);
  });
});
