import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { hashPassword, parseCredentials } from '../../serving/src/auth/credentials.js';
import { loadContract } from '../../tasks/src/contracts/index.js';
import type { Candle } from '../../tasks/src/forecast/candles.js';
import { runForecastTrain } from '../../tasks/src/forecast/train.js';
import { loadCandles, loadLatestCandles } from '../../tasks/src/forecast/windows.js';
import { runIngest } from '../../tasks/src/ingest/index.js';
import { openObjectStore } from '../../tasks/src/lake/object-store.js';
import { runSimulate } from '../../tasks/src/simulate/index.js';
import { openWarehouse, type Warehouse } from '../../tasks/src/warehouse/db.js';
import { mlflowClient, silentLog, tempHome, uniqueName } from '../support/env.js';
import { registerTestModel } from '../support/serving-model.js';

const START = Date.parse('2026-03-01T00:00:00Z');

const asRequest = (c: Candle) => ({
  open_time: new Date(c.openTime).toISOString(),
  open: c.open,
  high: c.high,
  low: c.low,
  close: c.close,
  volume: c.volume,
});

/**
 * `POST /v1/forecast` against a real LSTM trained on simulated candles and registered in the real
 * MLflow server: forecasts from the request's candles and from the warehouse's newest ones, errors
 * naming the row and field, auth like predict, and a broken version never replacing the good one.
 */
describe('the forecast route', () => {
  const mlflow = mlflowClient(inject('mlflowUri'));
  const modelName = uniqueName('btc-serving');
  let db: Warehouse;
  let app: FastifyInstance;
  let candles: Candle[];
  let version: string;
  const auth = (user: string, password: string) => ({
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  });
  const reader = auth('reader', 'reader-password-1');

  beforeAll(async () => {
    const home = tempHome('driftwood-forecast-api-');
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
        experiment: uniqueName('forecast-api'),
        modelName,
        params: { seed: 5, epochs: 4 },
      },
      {
        db,
        mlflow,
        log: silentLog,
        now: Date.now,
        source: { commit: undefined, user: 'test', packages: {} },
      },
    );
    version = trained.modelVersion;
    await mlflow.setAlias(modelName, 'champion', version);
    app = await buildApp({
      mlflow,
      modelName: uniqueName('no-churn-model'),
      alias: 'champion',
      credentials: parseCredentials(
        [
          `reader:predict:${await hashPassword('reader-password-1', { N: 1024, r: 8, p: 1 })}`,
          `nobody:admin:${await hashPassword('nobody-password-1', { N: 1024, r: 8, p: 1 })}`,
        ].join('\n'),
      ),
      forecast: {
        modelName,
        alias: 'champion',
        refreshMs: 0,
        latestCandles: (n) => loadLatestCandles(db, n),
      },
    });
  });

  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  const forecast = (body: unknown, headers: Record<string, string> = reader) =>
    app.inject({ method: 'POST', url: '/v1/forecast', headers, payload: body as object });

  it('forecasts the next hour from the candles in the request', async () => {
    // The newest 25 consecutive hours of the series (the simulator leaves gaps elsewhere).
    const tail = candles.slice(-25);
    expect(tail.every((c, i) => i === 0 || c.openTime === (tail[i - 1] as Candle).openTime + 3_600_000)).toBe(
      true,
    );
    const res = await forecast({ candles: tail.map(asRequest) });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const last = tail.at(-1) as Candle;
    expect(body.candles_from).toBe('request');
    expect(body.model).toEqual({ name: modelName, version, alias: 'champion' });
    expect(body.forecast.last_open_time).toBe(new Date(last.openTime).toISOString());
    expect(body.forecast.forecast_open_time).toBe(new Date(last.openTime + 3_600_000).toISOString());
    expect(body.forecast.last_close).toBe(last.close);
    expect(body.forecast.price).toBeCloseTo(last.close * Math.exp(body.forecast.log_return), 6);
    // An hourly forecast stays near the last close.
    expect(Math.abs(body.forecast.log_return)).toBeLessThan(0.2);
  });

  it('without candles, forecasts from the newest candles in the warehouse: the same answer', async () => {
    const fromWarehouse = await forecast({});
    expect(fromWarehouse.statusCode).toBe(200);
    const fromRequest = await forecast({ candles: candles.slice(-25).map(asRequest) });
    expect(fromWarehouse.json().candles_from).toBe('warehouse');
    expect(fromWarehouse.json().forecast).toEqual(fromRequest.json().forecast);
  });

  it('names the row and field of a bad candle, and refuses too few or unordered candles', async () => {
    const rows = candles.slice(-25).map(asRequest);
    const negative = rows.map((r, i) => (i === 3 ? { ...r, close: -5 } : r));
    const bad = await forecast({ candles: negative });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('candles[3].close');
    const few = await forecast({ candles: rows.slice(0, 5) });
    expect(few.statusCode).toBe(400);
    expect(few.json().message).toMatch(/at least 25/);
    const swapped = [...rows];
    [swapped[10], swapped[11]] = [swapped[11], swapped[10]] as [(typeof rows)[0], (typeof rows)[0]];
    expect((await forecast({ candles: swapped })).statusCode).toBe(400);
    const typo = await forecast({ candles: [{ ...rows[0], clsoe: 1 }] });
    expect(typo.statusCode).toBe(400);
    expect(typo.json().message).toContain('clsoe');
  });

  it('needs a credential with the predict role', async () => {
    expect((await forecast({}, {})).statusCode).toBe(401);
    expect((await forecast({}, auth('reader', 'wrong-password'))).statusCode).toBe(401);
    expect((await forecast({}, auth('nobody', 'nobody-password-1'))).statusCode).toBe(403);
  });

  it('replays the champion over its test period next to the actuals and the baselines', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/forecast/backtest', headers: reader });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.model.version).toBe(version);
    expect(body.points.length).toBeGreaterThan(50);
    const byTime = new Map(candles.map((c) => [new Date(c.openTime).toISOString(), c]));
    for (const p of body.points.slice(0, 20)) {
      // Actual is the stored close of that hour; persistence is the close an hour before.
      expect(p.actual).toBe(byTime.get(p.time)?.close);
      const before = new Date(Date.parse(p.time) - 3_600_000).toISOString();
      expect(p.persistence).toBe(byTime.get(before)?.close);
      expect(Number.isFinite(p.forecast)).toBe(true);
    }
    const rmse = (pick: (p: { actual: number; persistence: number }) => number) =>
      Math.sqrt(
        body.points.reduce(
          (a: number, p: { actual: number; persistence: number }) => a + (pick(p) - p.actual) ** 2,
          0,
        ) / body.points.length,
      );
    expect(body.rmse.persistence).toBeCloseTo(
      rmse((p) => p.persistence),
      6,
    );
    expect((await app.inject({ method: 'GET', url: '/v1/forecast/backtest' })).statusCode).toBe(401);
  });

  it('keeps serving the good version when the alias moves to one that cannot load', async () => {
    // A churn classifier is not a forecast model: its files lack the forecast state.
    const broken = await registerTestModel(mlflow, { modelName, experiment: uniqueName('exp'), seed: 3 });
    await mlflow.setAlias(modelName, 'champion', broken.version);
    const res = await forecast({});
    expect(res.statusCode).toBe(200);
    expect(res.json().model.version).toBe(version);
  });
});
