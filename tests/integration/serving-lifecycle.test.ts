import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type MlflowClient, tokenise } from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { mlflowClient, tempHome, uniqueName } from '../support/env.js';
import { eventually, registerTestModel, sampleCustomer } from '../support/serving-model.js';

const metricValue = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('model lifecycle against a live MLflow server: hot swap, canary, shadow, prediction log', () => {
  let mlflow: MlflowClient;
  let experiment: string;

  beforeAll(() => {
    mlflow = mlflowClient(inject('mlflowUri'));
    experiment = uniqueName('exp-lifecycle');
  });

  describe('hot swap', () => {
    let modelName: string;
    let app: FastifyInstance;
    let v1: string;

    beforeAll(async () => {
      modelName = uniqueName('churn-swap');
      v1 = (await registerTestModel(mlflow, { modelName, experiment, seed: 1, alias: 'champion' })).version;
      app = await buildApp({ openAccess: true, mlflow, modelName, alias: 'champion', pollMs: 150 });
      await app.ready();
    });
    afterAll(async () => app?.close());

    const servedVersion = async () =>
      (await app.inject({ method: 'POST', url: '/v1/predict', payload: sampleCustomer })).json().model
        .version;
    const metrics = async () => (await app.inject({ method: 'GET', url: '/metrics' })).body;

    it('follows the champion alias: the poller swaps in a new version after checking it', async () => {
      expect(await servedVersion()).toBe(v1);
      const v2 = (await registerTestModel(mlflow, { modelName, experiment, seed: 2, alias: 'champion' }))
        .version;
      await eventually(async () => ((await servedVersion()) === v2 ? true : undefined));
      const text = await metrics();
      expect(
        metricValue(
          text,
          `driftwood_model_loads_total{dataset="${modelName}",alias="champion",version="${v2}",outcome="success"}`,
        ),
      ).toBe(1);
      expect(
        metricValue(text, `driftwood_model_served{dataset="${modelName}",alias="champion",version="${v2}"}`),
      ).toBe(1);
      expect(
        metricValue(text, `driftwood_model_served{dataset="${modelName}",alias="champion",version="${v1}"}`),
      ).toBeUndefined();
    });

    it.each([
      ['corrupt files', 'corrupt', /model\.json/],
      ['other input fields', 'incompatible', /adds numeric field age_years/],
      ['a NaN warm-up prediction', 'nan', /warm-up prediction is NaN/],
    ] as const)(
      'never swaps in a version with %s: the old one keeps serving and the failure is counted',
      async (_what, broken, reason) => {
        const before = await servedVersion();
        const bad = (
          await registerTestModel(mlflow, { modelName, experiment, seed: 9, alias: 'champion', broken })
        ).version;
        const series = `driftwood_model_loads_total{dataset="${modelName}",alias="champion",version="${bad}",outcome="failure"}`;
        await eventually(async () => metricValue(await metrics(), series));
        expect(metricValue(await metrics(), series)).toBe(1);
        expect(await servedVersion()).toBe(before);
        expect((await app.inject({ method: 'GET', url: '/health/ready' })).json().model.version).toBe(before);
        // The same broken version is not loaded again on each poll: only when the alias moves.
        const again = await app.models.refresh();
        expect(again[0]).toMatchObject({ action: 'skip_failed', version: bad });
        expect(metricValue(await metrics(), series)).toBe(1);
        expect(app.models.lastError()).toMatch(reason);
      },
    );

    it('an admin reload swaps at once, without waiting for the poll', async () => {
      const quiet = await buildApp({ openAccess: true, mlflow, modelName, alias: 'champion', pollMs: 0 });
      await quiet.ready();
      try {
        const next = (await registerTestModel(mlflow, { modelName, experiment, seed: 4, alias: 'champion' }))
          .version;
        const res = await quiet.inject({ method: 'POST', url: '/v1/admin/reload', payload: {} });
        expect(res.json().outcomes).toEqual([
          { dataset: modelName, slot: 'champion', alias: 'champion', action: 'load', version: next },
        ]);
        const served = await quiet.inject({ method: 'POST', url: '/v1/predict', payload: sampleCustomer });
        expect(served.json().model.version).toBe(next);
      } finally {
        await quiet.close();
      }
    });
  });

  describe('canary and shadow', () => {
    let modelName: string;
    let champion: string;
    let challenger: string;

    beforeAll(async () => {
      modelName = uniqueName('churn-canary');
      champion = (await registerTestModel(mlflow, { modelName, experiment, seed: 21, alias: 'champion' }))
        .version;
      challenger = (await registerTestModel(mlflow, { modelName, experiment, seed: 22, alias: 'challenger' }))
        .version;
    });

    it('splits 10k customers 30/70 within tolerance, sticky per customer id', async () => {
      const app = await buildApp({
        openAccess: true,
        mlflow,
        modelName,
        alias: 'champion',
        maxBatchRows: 200,
        challenger: { alias: 'challenger', mode: 'canary', canaryPercent: 30 },
      });
      await app.ready();
      try {
        const counts = new Map<string, number>();
        const firstAnswer = new Map<string, string>();
        for (let b = 0; b < 50; b++) {
          const rows = Array.from({ length: 200 }, (_, i) => ({
            ...sampleCustomer,
            customer_id: `C${b * 200 + i}`,
          }));
          const res = await app.inject({ method: 'POST', url: '/v1/predict/batch', payload: { rows } });
          expect(res.statusCode).toBe(200);
          res.json().predictions.forEach((p: { model: { version: string } }, i: number) => {
            counts.set(p.model.version, (counts.get(p.model.version) ?? 0) + 1);
            firstAnswer.set(rows[i]?.customer_id as string, p.model.version);
          });
        }
        const share = (counts.get(challenger) ?? 0) / 10_000;
        // Binomial sd at p=0.3, n=10k is 0.0046: ±0.02 is over four of them.
        expect(share).toBeGreaterThan(0.28);
        expect(share).toBeLessThan(0.32);
        expect((counts.get(champion) ?? 0) + (counts.get(challenger) ?? 0)).toBe(10_000);
        for (const id of ['C1', 'C77', 'C4242', 'C9999']) {
          for (let k = 0; k < 3; k++) {
            const res = await app.inject({
              method: 'POST',
              url: '/v1/predict',
              payload: { ...sampleCustomer, customer_id: id },
            });
            expect(res.json().model.version).toBe(firstAnswer.get(id));
          }
        }
        const { customer_id: _none, ...anonymous } = sampleCustomer;
        const anon = await app.inject({ method: 'POST', url: '/v1/predict', payload: anonymous });
        expect(anon.json().model).toMatchObject({ version: champion, alias: 'champion' });
        const info = (await app.inject({ method: 'GET', url: '/v1/model' })).json();
        expect(info.challenger).toMatchObject({ version: challenger, alias: 'challenger' });
      } finally {
        await app.close();
      }
    });

    it('shadow: the champion answers every request, the challenger scores it too, logged but not returned', async () => {
      const home = tempHome('driftwood-shadow-');
      const app = await buildApp({
        openAccess: true,
        mlflow,
        modelName,
        alias: 'champion',
        challenger: { alias: 'challenger', mode: 'shadow', canaryPercent: 0 },
        predictionLog: { dir: path.join(home, 'predictions'), piiKey: 'shadow-key-0123456789' },
      });
      await app.ready();
      for (let i = 0; i < 20; i++) {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/predict',
          payload: { ...sampleCustomer, customer_id: `S${i}` },
        });
        expect(res.json().model).toMatchObject({ version: champion, alias: 'champion' });
      }
      await new Promise((r) => setImmediate(r));
      const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      await app.close();
      const shadowCount = [0, 1]
        .map(
          (label) =>
            metricValue(
              metrics,
              `driftwood_predictions_total{dataset="${modelName}",model_name="${modelName}",model_version="${challenger}",alias="challenger",served="false",label="${label}"}`,
            ) ?? 0,
        )
        .reduce((a, b) => a + b, 0);
      expect(shadowCount).toBe(20);
      const lines = readLog(path.join(home, 'predictions'));
      const served = lines.filter((l) => l.served);
      const shadow = lines.filter((l) => !l.served);
      expect(served).toHaveLength(20);
      expect(shadow).toHaveLength(20);
      expect(new Set(served.map((l) => l.model.version))).toEqual(new Set([champion]));
      expect(new Set(shadow.map((l) => l.model.version))).toEqual(new Set([challenger]));
      // Each shadow line pairs with the served line of the same request.
      expect(new Set(shadow.map((l) => l.request_id))).toEqual(new Set(served.map((l) => l.request_id)));
    });
  });

  describe('canary rollback', () => {
    it('a challenger that fails on live rows is answered for by the champion, then rolled back until its alias moves', async () => {
      const modelName = uniqueName('churn-rollback');
      const champion = (
        await registerTestModel(mlflow, { modelName, experiment, seed: 61, alias: 'champion' })
      ).version;
      const fragile = (
        await registerTestModel(mlflow, {
          modelName,
          experiment,
          seed: 62,
          alias: 'challenger',
          broken: 'overflow',
        })
      ).version;
      const app = await buildApp({
        openAccess: true,
        mlflow,
        modelName,
        alias: 'champion',
        challenger: {
          alias: 'challenger',
          mode: 'canary',
          canaryPercent: 100,
          rollback: { minRequests: 20, maxFailureRate: 0.1 },
        },
      });
      await app.ready();
      try {
        const ask = async (tenure: number) => {
          const res = await app.inject({
            method: 'POST',
            url: '/v1/predict',
            payload: { ...sampleCustomer, tenure_days: tenure },
          });
          expect(res.statusCode).toBe(200);
          return res.json().model.version as string;
        };
        for (let i = 0; i < 40; i++) expect(await ask(30 + i)).toBe(fragile);
        // Rows the challenger cannot score: the caller still gets an answer, from the champion.
        for (let i = 0; i < 5; i++) expect(await ask(20_000)).toBe(champion);
        // 5 failures in 45 is over 10%: the split is rolled back, healthy rows go to the champion too.
        expect(await ask(30)).toBe(champion);
        const info = (await app.inject({ method: 'GET', url: '/v1/model' })).json();
        expect(info.routing).toMatchObject({ mode: 'canary', canary_percent: 100 });
        expect(info.routing.rolled_back.version).toBe(fragile);
        expect(info.routing.rolled_back.reason).toMatch(
          /challenger failure rate 11\.1% \(5 of 45\) is over 10\.0%/,
        );
        const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
        expect(
          metricValue(
            metrics,
            `driftwood_canary_rollbacks_total{dataset="${modelName}",version="${fragile}"}`,
          ),
        ).toBe(1);
        // A new challenger version takes canary traffic again.
        const fixed = (
          await registerTestModel(mlflow, { modelName, experiment, seed: 63, alias: 'challenger' })
        ).version;
        await app.models.refresh();
        expect(await ask(30)).toBe(fixed);
        expect((await app.inject({ method: 'GET', url: '/v1/model' })).json().routing.rolled_back).toBeNull();
      } finally {
        await app.close();
      }
    });
  });

  describe('prediction log', () => {
    it('holds every served prediction with version, features, output and time, and no raw customer id', async () => {
      const modelName = uniqueName('churn-log');
      const { version } = await registerTestModel(mlflow, {
        modelName,
        experiment,
        seed: 31,
        alias: 'champion',
      });
      const home = tempHome('driftwood-predlog-');
      const key = 'log-key-0123456789abcdef';
      const app = await buildApp({
        openAccess: true,
        mlflow,
        modelName,
        alias: 'champion',
        predictionLog: { dir: path.join(home, 'predictions'), piiKey: key, flushMs: 20 },
      });
      await app.ready();
      const answers = new Map<string, number>();
      for (let i = 0; i < 25; i++) {
        const customer_id = `Cust-${i}@example.com`;
        const res = await app.inject({
          method: 'POST',
          url: '/v1/predict',
          payload: { ...sampleCustomer, customer_id, tenure_days: i * 10 },
        });
        answers.set(tokenise(customer_id, key), res.json().probability);
      }
      const batch = await app.inject({
        method: 'POST',
        url: '/v1/predict/batch',
        payload: {
          rows: Array.from({ length: 5 }, (_, i) => ({ ...sampleCustomer, customer_id: `Batch-${i}` })),
        },
      });
      batch.json().predictions.forEach((p: { probability: number }, i: number) => {
        answers.set(tokenise(`Batch-${i}`, key), p.probability);
      });
      await app.close();

      const dir = path.join(home, 'predictions');
      const now = new Date().toISOString();
      const partitions = readdirSync(dir);
      expect(partitions.every((p) => /^dt=\d{4}-\d{2}-\d{2}$/.test(p))).toBe(true);
      expect(partitions).toContain(`dt=${now.slice(0, 10)}`);
      const raw = readAll(dir);
      expect(raw).not.toMatch(/Cust-\d+@example\.com|Batch-\d/);
      const lines = readLog(dir);
      expect(lines).toHaveLength(30);
      for (const l of lines) {
        expect(l.model).toEqual({ name: modelName, version, alias: 'champion' });
        expect(l.served).toBe(true);
        expect(l.customer_token).toMatch(/^[0-9a-f]{32}$/);
        expect(l.probability).toBe(answers.get(l.customer_token));
        expect(l.label).toBe(l.probability >= 0.5 ? 1 : 0);
        expect(l.features).not.toHaveProperty('customer_id');
        expect(l.features.plan).toBe('basic');
        expect(Date.parse(l.ts)).not.toBeNaN();
      }
      expect(lines.map((l) => l.features.tenure_days).slice(0, 25)).toEqual(
        Array.from({ length: 25 }, (_, i) => i * 10),
      );
    });
  });
});

interface LogLine {
  ts: string;
  request_id: string;
  model: { name: string; version: string; alias: string };
  served: boolean;
  customer_token: string;
  features: Record<string, unknown>;
  probability: number;
  label: number;
}

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('predictions.jsonl'))
    .map((f) => path.join(dir, f));
}
function readAll(dir: string): string {
  return files(dir)
    .map((f) => readFileSync(f, 'utf8'))
    .join('');
}
function readLog(dir: string): LogLine[] {
  for (const f of files(dir)) expect(f).toMatch(/dt=\d{4}-\d{2}-\d{2}\/hr=\d{2}\/predictions\.jsonl$/);
  return readAll(dir)
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogLine);
}
