import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONTRACTS_DIR, loadContract } from '../../tasks/src/contracts/index.js';
import { simulateCandles } from '../../tasks/src/datasets/btc/simulate.js';
import { type Candle, validateForecastCandles } from '../../tasks/src/forecast/candles.js';
import { lastConsecutive } from '../../tasks/src/forecast/evaluate.js';
import { DEFAULT_LSTM_PARAMS, trainLstm } from '../../tasks/src/forecast/lstm.js';
import { forecastFromRows, forecastNext, loadForecastModel } from '../../tasks/src/forecast/predict.js';
import { forecastConfig } from '../../tasks/src/forecast/settings.js';
import { fitScaling, scaleInputs, scaleTarget } from '../../tasks/src/forecast/state.js';
import { evaluateForecasts, modelPrices } from '../../tasks/src/forecast/train.js';
import { buildWindows, FEATURE_COUNT, splitByTime } from '../../tasks/src/forecast/windows.js';
import { saveModelFiles } from '../../tasks/src/models/artifact.js';
import { initTf } from '../../tasks/src/models/tf.js';

const START = Date.parse('2026-03-01T00:00:00Z');
const H = 3_600_000;

describe('the btc contract', () => {
  it('loads with its forecast section, and the churn contract still does', async () => {
    const btc = await loadContract('btc');
    expect(btc).toMatchObject({ task: 'sequence_forecast', builder: 'time_windows' });
    expect(btc.tables[0]).toMatchObject({ name: 'candles', key: 'open_time' });
    expect(forecastConfig(btc)).toEqual({
      table: 'candles',
      timeColumn: 'open_time',
      target: 'close',
      windowHours: 24,
      horizonHours: 1,
      movingAverageHours: 24,
      validationFraction: 0.15,
      testFraction: 0.15,
      persistenceMargin: 0.01,
    });
    expect((await loadContract('churn')).forecast).toBeUndefined();
  });

  it('refuses a forecast section that names a column the table does not have', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'driftwood-btc-contract-'));
    const text = readFileSync(path.join(DEFAULT_CONTRACTS_DIR, 'btc.yaml'), 'utf8');
    writeFileSync(path.join(dir, 'btc.yaml'), text.replace('target: close', 'target: price'));
    await expect(loadContract('btc', dir)).rejects.toThrow(
      /\/forecast\/target: 'price' is not a column of table 'candles'/,
    );
    writeFileSync(path.join(dir, 'btc.yaml'), text.replace('window_hours: 24', 'window_hours: 1'));
    await expect(loadContract('btc', dir)).rejects.toThrow(/\/forecast\/window_hours/);
  });
});

describe('candle validation for a forecast request', () => {
  const rows = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      open_time: new Date(START + i * H).toISOString(),
      open: 100,
      high: 102,
      low: 99,
      close: 101,
      volume: 5,
    }));
  const cases: [string, (r: Record<string, unknown>[]) => unknown, RegExp][] = [
    ['too few rows', (r) => r.slice(0, 3), /candles: expected at least 5 consecutive hourly candles, got 3/],
    ['not an array', () => ({}), /candles: expected an array/],
    [
      'a negative price',
      (r) => r.with(2, { ...r[2], close: -5 }),
      /candles\[2\]\.close: expected a positive number, got -5/,
    ],
    [
      'a missing volume',
      (r) => r.with(1, { ...r[1], volume: undefined }),
      /candles\[1\]\.volume: expected a non-negative number/,
    ],
    [
      'a bad time',
      (r) => r.with(0, { ...r[0], open_time: 'yesterday' }),
      /candles\[0\]\.open_time: expected an ISO time/,
    ],
    [
      'off the hour',
      (r) => r.with(0, { ...r[0], open_time: '2026-03-01T00:30:00Z' }),
      /candles\[0\]\.open_time: expected the start of an hour/,
    ],
    [
      'out of order',
      (r) => r.with(3, r[1] as Record<string, unknown>),
      /candles\[3\]\.open_time: candles must be in ascending time order/,
    ],
    [
      'a missing hour',
      (r) => [...r.slice(0, 3), ...r.slice(4), { ...r[4], open_time: new Date(START + 9 * H).toISOString() }],
      /candles\[3\]\.open_time: expected 2026-03-01T03:00:00\.000Z \(consecutive hours\)/,
    ],
    // The extract step's rules and words (candleRule): the value outside [low, high] is named.
    [
      'high below close',
      (r) => r.with(4, { ...r[4], high: 100.5 }),
      /candles\[4\]\.close: close 101 is outside \[low 99, high 100\.5\]/,
    ],
    [
      'low above open',
      (r) => r.with(4, { ...r[4], low: 100.5 }),
      /candles\[4\]\.open: open 100 is outside \[low 100\.5, high 102\]/,
    ],
    [
      'high below low',
      (r) => r.with(4, { ...r[4], high: 98 }),
      /candles\[4\]\.high: high 98 is below low 99/,
    ],
  ];
  for (const [name, mutate, message] of cases)
    it(`names the row and field: ${name}`, () => {
      expect(() => validateForecastCandles(mutate(rows(6)), 5)).toThrow(message);
    });

  it('reads good rows, with times as ISO or epoch milliseconds', () => {
    const good = validateForecastCandles(
      rows(6).map((r, i) => (i % 2 ? { ...r, open_time: Date.parse(r.open_time) } : r)),
      5,
    );
    expect(good.map((c) => c.openTime)).toEqual(rows(6).map((r) => Date.parse(r.open_time)));
  });
});

describe('the LSTM forecaster', () => {
  const { candles } = simulateCandles({ start: START, hours: 420, seed: 5, gapRate: 0 });
  const shape = { windowHours: 8, horizonHours: 1, movingAverageHours: 8 };
  const { windows } = buildWindows(candles, shape);
  const split = splitByTime(windows, { validation: 0.2, test: 0.2 });
  const state = fitScaling(split.train, shape);
  const data = {
    x: scaleInputs(state, split.train),
    y: Float32Array.from(split.train, (w) => scaleTarget(state, w.y)),
    valX: scaleInputs(state, split.validation),
    valY: Float32Array.from(split.validation, (w) => scaleTarget(state, w.y)),
    windowHours: 8,
    features: FEATURE_COUNT,
  };
  const params = { ...DEFAULT_LSTM_PARAMS, units: 4, epochs: 4, patience: 4, batchSize: 32, seed: 9 };

  beforeAll(async () => {
    await initTf();
  });

  it('trains deterministically: same data and seed, same losses and test metrics', async () => {
    const run = async () => {
      const losses: number[] = [];
      const t = await trainLstm(data, params, (e) => losses.push(e.loss, e.valLoss));
      const metrics = evaluateForecasts(split.test, modelPrices(t.model, state, split.test), 8);
      t.model.dispose();
      return { losses, metrics, best: t.bestEpoch };
    };
    const a = await run();
    const b = await run();
    expect(b).toEqual(a);
    expect(a.losses.length).toBe(2 * 4);
    // The training loss drops over the epochs.
    expect(a.losses[6]).toBeLessThan(a.losses[0] as number);
    const other = await trainLstm(data, { ...params, seed: 10 });
    expect(evaluateForecasts(split.test, modelPrices(other.model, state, split.test), 8).model.rmse).not.toBe(
      a.metrics.model.rmse,
    );
    other.model.dispose();
  });

  it('forecasts from saved files the same prices as in training, and from request rows', async () => {
    const t = await trainLstm(data, { ...params, epochs: 2 });
    const files = await saveModelFiles(t.model);
    const expected = modelPrices(t.model, state, split.test.slice(0, 3));
    t.model.dispose();
    const loaded = await loadForecastModel({ ...files, state: JSON.stringify(state) });
    try {
      split.test.slice(0, 3).forEach((w, i) => {
        const history = candles.filter((c: Candle) => c.openTime >= w.inputStart && c.openTime <= w.inputEnd);
        const f = forecastNext(loaded, history);
        expect(f.price).toBeCloseTo(expected[i] as number, 6);
        expect(f.forecastOpenTime).toBe(new Date(w.targetTime).toISOString());
        expect(f.lastClose).toBe(w.lastClose);
      });
      const w = split.test[0];
      const rows = candles
        .filter((c) => w && c.openTime >= w.inputStart && c.openTime <= w.inputEnd)
        .map((c) => ({ ...c, open_time: new Date(c.openTime).toISOString() }));
      expect(forecastFromRows(loaded, rows).price).toBeCloseTo(expected[0] as number, 6);
      expect(() => forecastFromRows(loaded, rows.slice(2))).toThrow(/candles: expected at least 9/);
      await expect(
        loadForecastModel({ ...files, state: JSON.stringify({ ...state, windowHours: 6 }) }),
      ).rejects.toThrow(/shape/);
    } finally {
      loaded.dispose();
    }
  });
});

describe('the staging smoke check', () => {
  const at = (hours: number[]) =>
    hours.map((h) => ({ openTime: START + h * H, open: 1, high: 1, low: 1, close: 1, volume: 1 }));
  it('forecasts from the newest candles in consecutive hours, past a gap near the end', () => {
    const hours = (cs: readonly { openTime: number }[]) => cs.map((c) => (c.openTime - START) / H);
    expect(hours(lastConsecutive(at([0, 1, 2, 3, 4, 5]), 3))).toEqual([3, 4, 5]);
    expect(hours(lastConsecutive(at([0, 1, 2, 3, 7, 8]), 3))).toEqual([1, 2, 3]);
    expect(hours(lastConsecutive(at([0, 1, 2, 5, 6, 7, 9]), 3))).toEqual([5, 6, 7]);
  });
});
