import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { readCatalog } from '../../serving/src/datasets/read-catalog.js';
import { loadConfig } from '../../tasks/src/config.js';
import { loadContract } from '../../tasks/src/contracts/index.js';
import type { Candle } from '../../tasks/src/forecast/candles.js';
import { runForecastTrain } from '../../tasks/src/forecast/train.js';
import { loadCandles } from '../../tasks/src/forecast/windows.js';
import { runIngest } from '../../tasks/src/ingest/index.js';
import { openObjectStore } from '../../tasks/src/lake/object-store.js';
import { runSimulate } from '../../tasks/src/simulate/index.js';
import { openWarehouse, type Warehouse } from '../../tasks/src/warehouse/db.js';
import { mlflowClient, ROOT, silentLog, tempHome, uniqueName } from '../support/env.js';
import { registerTestModel, sampleCustomer } from '../support/serving-model.js';

const START = Date.parse('2026-03-01T00:00:00Z');
// Contract-only datasets no code has heard of: new names on every run.
const SUFFIX = Date.now().toString(36);
const PARCELS = `parcels_${SUFFIX}`;
const LOCKERS = `lockers_${SUFFIX}`;
const PARCEL_FIELDS = { numeric: ['weight_kg', 'distance_km', 'stops'], categorical: ['carrier', 'service'] };

const flatContract = (dataset: string, modelName: string) => `
dataset: ${dataset}
version: 1
description: Parcels shipped by a courier; the target is a late delivery.
task: binary_classification
builder: columns
alert_threshold: 0.5
model: { name: ${modelName} }
tables:
  - name: ${dataset}_shipments
    files: [shipments.csv]
    key: parcel_ref
    columns:
      - { name: parcel_ref, type: string, role: id, nullable: false, on_anomaly: drop_row }
      - { name: shipped_at, type: timestamp, role: timestamp, nullable: false, on_anomaly: drop_row }
      - { name: weight_kg, type: number, role: feature, nullable: true, on_anomaly: coerce }
      - { name: distance_km, type: number, role: feature, nullable: true, on_anomaly: coerce }
      - { name: stops, type: integer, role: feature, nullable: true, on_anomaly: coerce }
      - { name: carrier, type: string, role: feature, nullable: false, on_anomaly: drop_row }
      - { name: service, type: string, role: feature, nullable: true, on_anomaly: coerce }
      - { name: late, type: string, role: target, nullable: false, allowed: ['yes', 'no'], positive: 'yes', on_anomaly: drop_row }
`;

/** A project contract with its registered model renamed, so the test's versions are its own. */
/** The shipped contract with its model renamed (`model.name`), so that this test's versions are its own. */
const renamedContract = (dataset: string, modelName: string) =>
  readFileSync(path.join(ROOT, 'contracts', `${dataset}.yaml`), 'utf8').replace(
    /^dataset: (\w+)$/m,
    `dataset: $1\nmodel: { name: ${modelName} }`,
  );

const parcel = {
  parcel_ref: 'P000001',
  weight_kg: 2.5,
  distance_km: 340,
  stops: 4,
  carrier: 'a',
  service: 'b',
};

const asRequest = (c: Candle) => ({
  open_time: new Date(c.openTime).toISOString(),
  open: c.open,
  high: c.high,
  low: c.low,
  close: c.close,
  volume: c.volume,
});

/**
 * One API process built from a contracts folder serves churn, BTC and two contract-only datasets
 * at once, against real versions in the real MLflow server: each dataset under its own prefix with
 * its own schema, version, swap and log partition; one without a champion answers 503 naming it
 * while the others keep answering.
 */
describe('one API, every dataset', () => {
  const mlflow = mlflowClient(inject('mlflowUri'));
  const home = tempHome('driftwood-datasets-api-');
  const contractsDir = path.join(home, 'contracts');
  const predictionsDir = path.join(home, 'predictions');
  const names = {
    churn: uniqueName('ds-churn'),
    btc: uniqueName('ds-btc'),
    parcels: uniqueName('ds-parcels'),
    lockers: uniqueName('ds-lockers'),
  };
  const experiment = uniqueName('datasets-api');
  const versions = { churn: '', btc: '', parcels: '' };
  let db: Warehouse;
  let candles: Candle[];
  let app: FastifyInstance;

  beforeAll(async () => {
    await mkdir(contractsDir, { recursive: true });
    writeFileSync(path.join(contractsDir, 'churn.yaml'), renamedContract('churn', names.churn));
    writeFileSync(path.join(contractsDir, 'btc.yaml'), renamedContract('btc', names.btc));
    writeFileSync(path.join(contractsDir, `${PARCELS}.yaml`), flatContract(PARCELS, names.parcels));
    writeFileSync(path.join(contractsDir, `${LOCKERS}.yaml`), flatContract(LOCKERS, names.lockers));

    versions.churn = (
      await registerTestModel(mlflow, { modelName: names.churn, experiment, seed: 1, alias: 'champion' })
    ).version;
    versions.parcels = (
      await registerTestModel(mlflow, {
        modelName: names.parcels,
        experiment,
        seed: 2,
        alias: 'champion',
        fields: PARCEL_FIELDS,
      })
    ).version;
    // BTC: a real LSTM trained on simulated candles, as the forecast route's own test does.
    const lake = openObjectStore(`file://${path.join(home, 'lake')}`);
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    await runSimulate(
      { dataset: 'btc', start: START, hours: 900, seed: 5, entities: 0, labelDelayHours: 0 },
      { lake, log: silentLog },
    );
    await runIngest({ dataset: 'btc', piiKey: undefined, now: Date.now }, { lake, db, log: silentLog });
    candles = await loadCandles(db);
    const trained = await runForecastTrain(
      {
        contract: await loadContract('btc'),
        experiment,
        modelName: names.btc,
        params: { seed: 5, epochs: 2 },
      },
      {
        db,
        mlflow,
        log: silentLog,
        now: Date.now,
        source: { commit: undefined, user: 'test', packages: {} },
      },
    );
    versions.btc = trained.modelVersion;
    await mlflow.setAlias(names.btc, 'champion', versions.btc);

    // The catalog as `driftwood serve` reads it, from the folder and the environment.
    const config = loadConfig(
      {
        DRIFTWOOD_HOME: home,
        DRIFTWOOD_CONTRACTS_DIR: contractsDir,
        DRIFTWOOD_DATASET: 'churn',
        DRIFTWOOD_FORECAST_MODEL: names.btc,
      },
      home,
    );
    const catalog = await readCatalog(config);
    app = await buildApp({
      openAccess: true,
      mlflow,
      modelName: names.churn,
      alias: 'champion',
      datasets: catalog.datasets,
      defaultDataset: catalog.defaultDataset,
      noDefault: catalog.noDefault,
      forecast: { alias: 'champion', refreshMs: 0 },
      predictionLog: { dir: predictionsDir, flushMs: 50 },
    });
    await app.ready();
  }, 600_000);

  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  const post = (url: string, payload: unknown) =>
    app.inject({ method: 'POST', url, payload: payload as object });
  const predictChurn = async (url = '/v1/datasets/churn/predict') => {
    const res = await post(url, sampleCustomer);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { probability: number; model: { name: string; version: string } };
  };
  const predictParcel = async () => {
    const res = await post(`/v1/datasets/${PARCELS}/predict`, parcel);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { probability: number; model: { name: string; version: string } };
  };
  const forecast = async () => {
    const res = await post('/v1/datasets/btc/forecast', { candles: candles.slice(-30).map(asRequest) });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { forecast: { price: number }; model: { name: string; version: string } };
  };

  it('lists every dataset of the folder with the champion answering for it', async () => {
    await forecast();
    const res = await app.inject({ method: 'GET', url: '/v1/datasets' });
    expect(res.statusCode).toBe(200);
    const listed = (
      res.json() as {
        datasets: { dataset: string; kind: string; champion: string | null; default: boolean }[];
      }
    ).datasets;
    expect(Object.fromEntries(listed.map((d) => [d.dataset, [d.kind, d.champion, d.default]]))).toEqual({
      churn: ['tabular', versions.churn, true],
      [PARCELS]: ['tabular', versions.parcels, false],
      [LOCKERS]: ['tabular', null, false],
      btc: ['forecast', versions.btc, false],
    });
  });

  it('predicts on churn, BTC and a contract-only dataset from the one process', async () => {
    const churn = await predictChurn();
    expect(churn.model).toMatchObject({ name: names.churn, version: versions.churn });
    expect(churn.probability).toBeGreaterThanOrEqual(0);
    const flat = await predictParcel();
    expect(flat.model).toMatchObject({ name: names.parcels, version: versions.parcels });
    const btc = await forecast();
    expect(btc.model).toMatchObject({ name: names.btc, version: versions.btc });
    expect(btc.forecast.price).toBeGreaterThan(0);
    // The default dataset keeps its unprefixed routes.
    expect((await predictChurn('/v1/predict')).model.name).toBe(names.churn);
    expect((await app.inject({ method: 'GET', url: '/v1/model' })).json()).toMatchObject({
      dataset: 'churn',
      name: names.churn,
    });
    expect((await app.inject({ method: 'GET', url: `/v1/datasets/${PARCELS}/model` })).json()).toMatchObject({
      dataset: PARCELS,
      name: names.parcels,
      inputs: PARCEL_FIELDS,
    });
    expect((await app.inject({ method: 'GET', url: '/v1/datasets/btc/model' })).json()).toMatchObject({
      dataset: 'btc',
      name: names.btc,
      version: versions.btc,
    });
  });

  it('validates each dataset against its own model’s fields, naming the field', async () => {
    const churnRowOnParcels = await post(`/v1/datasets/${PARCELS}/predict`, sampleCustomer);
    expect(churnRowOnParcels.statusCode).toBe(400);
    expect(churnRowOnParcels.json().message).toMatch(/carrier|tenure_days/);
    const parcelOnChurn = await post('/v1/datasets/churn/predict', parcel);
    expect(parcelOnChurn.statusCode).toBe(400);
    const batch = await post(`/v1/datasets/${PARCELS}/predict/batch`, {
      rows: [parcel, { ...parcel, stops: 1 }],
    });
    expect(batch.statusCode, batch.body).toBe(200);
    expect(batch.json().count).toBe(2);
  });

  it('answers 503 naming a dataset without a champion while the others keep serving', async () => {
    const res = await post(`/v1/datasets/${LOCKERS}/predict`, parcel);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'model_not_loaded' });
    expect(res.json().message).toContain(`no champion for dataset ${LOCKERS} yet`);
    const model = await app.inject({ method: 'GET', url: `/v1/datasets/${LOCKERS}/model` });
    expect(model.statusCode).toBe(503);
    expect(model.json().message).toContain(LOCKERS);
    expect((await predictChurn()).model.version).toBe(versions.churn);
    expect((await predictParcel()).model.version).toBe(versions.parcels);
    // The process is ready: its default dataset serves.
    expect((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
  });

  it('answers 404 naming an unknown dataset, and a route a dataset does not have', async () => {
    const unknown = await post('/v1/datasets/nosuch/predict', parcel);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'unknown_dataset' });
    expect(unknown.json().message).toContain('dataset nosuch is not served');
    const wrongKind = await post('/v1/datasets/btc/predict', parcel);
    expect(wrongKind.statusCode).toBe(404);
    expect(wrongKind.json().message).toContain('dataset btc has no route POST /v1/datasets/btc/predict');
  });

  it('swaps one dataset’s champion while the other two keep answering with their versions', async () => {
    const next = (
      await registerTestModel(mlflow, {
        modelName: names.parcels,
        experiment,
        seed: 3,
        alias: 'champion',
        fields: PARCEL_FIELDS,
      })
    ).version;
    const reload = await app.inject({ method: 'POST', url: '/v1/admin/reload' });
    expect(reload.statusCode).toBe(200);
    const outcomes = reload.json().outcomes as { dataset: string; action: string; version: string | null }[];
    expect(outcomes.find((o) => o.dataset === PARCELS)).toMatchObject({ action: 'load', version: next });
    expect(outcomes.find((o) => o.dataset === 'churn')).toMatchObject({
      action: 'keep',
      version: versions.churn,
    });
    expect(outcomes.find((o) => o.dataset === LOCKERS)).toMatchObject({
      action: 'alias_gone',
      version: null,
    });
    expect((await predictParcel()).model.version).toBe(next);
    expect((await predictChurn()).model.version).toBe(versions.churn);
    expect((await forecast()).model.version).toBe(versions.btc);
  });

  it('labels the prediction counters by dataset and logs each dataset in its own partition', async () => {
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(
      new RegExp(`driftwood_predictions_total\\{dataset="${PARCELS}",model_name="${names.parcels}"`),
    );
    expect(metrics).toMatch(/driftwood_predictions_total\{dataset="churn",model_name=/);
    expect(metrics).toContain(`driftwood_model_served{dataset="${PARCELS}",alias="champion"`);
    await app.predictionLog?.flush();
    // The default dataset's lines stay where the drift sidecar reads them; the others go under dataset=<name>.
    const top = await readdir(predictionsDir);
    expect(top).toContain(`dataset=${PARCELS}`);
    const readLines = async (dir: string) => {
      const out: Record<string, unknown>[] = [];
      for (const dt of (await readdir(dir)).filter((d) => d.startsWith('dt=')))
        for (const hr of await readdir(path.join(dir, dt)))
          for (const line of (await readFile(path.join(dir, dt, hr, 'predictions.jsonl'), 'utf8')).split(
            '\n',
          ))
            if (line) out.push(JSON.parse(line));
      return out;
    };
    const churnLines = await readLines(predictionsDir);
    const parcelLines = await readLines(path.join(predictionsDir, `dataset=${PARCELS}`));
    expect(churnLines.length).toBeGreaterThan(0);
    expect(new Set(churnLines.map((l) => l.dataset))).toEqual(new Set(['churn']));
    expect(parcelLines.length, JSON.stringify(parcelLines)).toBeGreaterThanOrEqual(4);
    expect(new Set(parcelLines.map((l) => l.dataset))).toEqual(new Set([PARCELS]));
    // Forecasts are logged too, in their dataset's partition, with the forecast in place of a score.
    const btcLines = await readLines(path.join(predictionsDir, 'dataset=btc'));
    expect(btcLines.length).toBeGreaterThanOrEqual(3);
    expect(btcLines[0]).toMatchObject({ dataset: 'btc', model: { name: names.btc }, served: true });
    expect((btcLines[0]?.forecast as { price: number } | undefined)?.price).toBeGreaterThan(0);
    // Every line the API wrote, of every dataset, is a line of the committed schema.
    const validate = new Ajv({ allErrors: true }).compile(
      JSON.parse(readFileSync(path.join(ROOT, 'contracts', 'prediction-log.schema.json'), 'utf8')),
    );
    for (const line of [...churnLines, ...parcelLines, ...btcLines])
      expect(validate(line), JSON.stringify(validate.errors)).toBe(true);
  });
});

/**
 * Two classification contracts and no DRIFTWOOD_DATASET: there is no default dataset. The API still
 * starts, serves both under their prefixes, and the unprefixed routes say how to choose.
 */
describe('one API, no default dataset', () => {
  const mlflow = mlflowClient(inject('mlflowUri'));
  const home = tempHome('driftwood-datasets-nodefault-');
  const contractsDir = path.join(home, 'contracts');
  const first = `first_${SUFFIX}`;
  const second = `second_${SUFFIX}`;
  const modelName = uniqueName('ds-first');
  let app: FastifyInstance;

  beforeAll(async () => {
    await mkdir(contractsDir, { recursive: true });
    writeFileSync(path.join(contractsDir, `${first}.yaml`), flatContract(first, modelName));
    writeFileSync(path.join(contractsDir, `${second}.yaml`), flatContract(second, uniqueName('ds-second')));
    await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('datasets-nodefault'),
      seed: 4,
      alias: 'champion',
      fields: PARCEL_FIELDS,
    });
    const catalog = await readCatalog(
      loadConfig(
        { DRIFTWOOD_HOME: home, DRIFTWOOD_CONTRACTS_DIR: contractsDir, DRIFTWOOD_FORECAST_MODEL: 'off' },
        home,
      ),
    );
    expect(catalog.defaultDataset).toBeUndefined();
    app = await buildApp({
      openAccess: true,
      mlflow,
      modelName,
      alias: 'champion',
      datasets: catalog.datasets,
      noDefault: catalog.noDefault,
    });
    await app.ready();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
  });

  it('answers the unprefixed routes with 503 naming the choice, and serves each dataset by name', async () => {
    for (const [method, url] of [
      ['POST', '/v1/predict'],
      ['GET', '/v1/model'],
    ] as const) {
      const res = await app.inject({ method, url, ...(method === 'POST' ? { payload: parcel } : {}) });
      expect(res.statusCode, url).toBe(503);
      expect(res.json().message).toBe(
        `no default dataset: set DRIFTWOOD_DATASET to one of ${first}, ${second}, or call /v1/datasets/<dataset>/…`,
      );
    }
    const served = await app.inject({
      method: 'POST',
      url: `/v1/datasets/${first}/predict`,
      payload: parcel,
    });
    expect(served.statusCode, served.body).toBe(200);
    const none = await app.inject({ method: 'POST', url: `/v1/datasets/${second}/predict`, payload: parcel });
    expect(none.statusCode).toBe(503);
    expect(none.json().message).toContain(`no champion for dataset ${second} yet`);
    // Ready: a dataset serves, though there is no default one.
    expect((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
  });
});
