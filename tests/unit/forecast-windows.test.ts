import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadContract } from '../../tasks/src/contracts/index.js';
import type { Candle } from '../../tasks/src/forecast/candles.js';
import { candleRow } from '../../tasks/src/forecast/model-folder.js';
import { forecastConfig } from '../../tasks/src/forecast/settings.js';
import {
  FORECAST_STATE_FILE,
  fitScaling,
  parseForecastState,
  scaleInputs,
  scaleTarget,
  unscaleTarget,
} from '../../tasks/src/forecast/state.js';
import {
  assertNoLeak,
  buildWindows,
  FEATURE_COUNT,
  featureRow,
  loadCandles,
  splitByTime,
  type Timed,
} from '../../tasks/src/forecast/windows.js';
import { ensureContractTables } from '../../tasks/src/ingest/schema.js';
import { openWarehouse } from '../../tasks/src/warehouse/db.js';
import { tempHome } from '../support/env.js';

const H = 3_600_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

/** Candles at the given hour offsets; the close walks up by 1% an hour so returns are known. */
function candlesAt(hours: readonly number[]): Candle[] {
  return hours.map((h) => ({
    openTime: T0 + h * H,
    open: 100 * 1.01 ** (h - 1),
    high: 100 * 1.01 ** h * 1.02,
    low: 100 * 1.01 ** (h - 1) * 0.99,
    close: 100 * 1.01 ** h,
    volume: 10 + h,
  }));
}
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('time windows', () => {
  it('builds log-change features and the next-hour log return as target', () => {
    const c = candlesAt(range(6));
    const { windows, droppedForGaps } = buildWindows(c, { windowHours: 3, horizonHours: 1 });
    // Windows end at candles 3 and 4 (candle 5 is the last target).
    expect(windows.map((w) => (w.inputEnd - T0) / H)).toEqual([3, 4]);
    expect(droppedForGaps).toBe(0);
    const w = windows[0];
    expect(w?.x.length).toBe(3 * FEATURE_COUNT);
    expect(w?.y).toBeCloseTo(Math.log(1.01), 12);
    expect(w?.targetClose).toBeCloseTo(100 * 1.01 ** 4, 9);
    expect(w?.closes).toHaveLength(4);
    // close return, log range, log body, volume log change, hand-computed for candle 1 after 0.
    const [r, hl, body, vol] = featureRow(c[0] as Candle, c[1] as Candle);
    expect(r).toBeCloseTo(Math.log(1.01), 12);
    expect(hl).toBeCloseTo(Math.log((1.01 * 1.02) / 0.99), 12);
    expect(body).toBeCloseTo(Math.log(1.01), 12);
    expect(vol).toBeCloseTo(Math.log(12 / 11), 12);
    expect(Array.from(w?.x.slice(0, 4) ?? [])).toEqual(Array.from(Float32Array.from([r, hl, body, vol])));
  });

  it('drops every window whose inputs or target span a missing hour', () => {
    // Hour 5 is missing: windows need hours end-3..end+1 all present.
    const c = candlesAt([...range(5), ...range(6, 6)]);
    const { windows, droppedForGaps } = buildWindows(c, { windowHours: 3, horizonHours: 1 });
    for (const w of windows) expect(w.inputStart > T0 + 5 * H || w.targetTime < T0 + 5 * H).toBe(true);
    expect(windows.map((w) => (w.inputEnd - T0) / H)).toEqual([3, 9, 10]);
    expect(droppedForGaps).toBe(4);
  });

  it('refuses candles out of time order', () => {
    const c = candlesAt(range(6));
    [c[2], c[3]] = [c[3] as Candle, c[2] as Candle];
    expect(() => buildWindows(c, { windowHours: 2, horizonHours: 1 })).toThrow(
      /candles\[3\].*ascending time order/,
    );
  });
});

describe('time-ordered split', () => {
  const windows = buildWindows(candlesAt(range(200)), { windowHours: 24, horizonHours: 1 }).windows;

  it('keeps each window inside one part, in order, with a purged gap between parts', () => {
    const s = splitByTime(windows, { validation: 0.15, test: 0.15 });
    const lastTrain = Math.max(...s.train.map((w) => w.targetTime));
    const firstValidation = Math.min(...s.validation.map((w) => w.inputStart));
    const lastValidation = Math.max(...s.validation.map((w) => w.targetTime));
    const firstTest = Math.min(...s.test.map((w) => w.inputStart));
    expect(lastTrain).toBeLessThan(firstValidation);
    expect(lastValidation).toBeLessThan(firstTest);
    // Purged windows straddle a boundary: windowHours + horizon of them at each of the two boundaries.
    expect(s.purged).toBe(2 * 25);
    expect(s.train.length + s.validation.length + s.test.length + s.purged).toBe(windows.length);
  });

  it('refuses shuffled windows', () => {
    const shuffled = [...windows];
    [shuffled[10], shuffled[11]] = [
      shuffled[11] as (typeof windows)[number],
      shuffled[10] as (typeof windows)[number],
    ];
    expect(() => splitByTime(shuffled, { validation: 0.15, test: 0.15 })).toThrow(/never shuffled/);
    expect(() => splitByTime([...windows].reverse(), { validation: 0.15, test: 0.15 })).toThrow(
      /leaky or unordered/,
    );
  });

  it('refuses a window whose target is not after its inputs', () => {
    const bad = windows.map((w, i) => (i === 50 ? { ...w, targetTime: w.inputEnd } : w));
    expect(() => splitByTime(bad, { validation: 0.15, test: 0.15 })).toThrow(/not strictly after its inputs/);
  });

  it('proves a split where a later part reads an earlier part\u2019s hours is a leak', () => {
    const s = splitByTime(windows, { validation: 0.15, test: 0.15 });
    // The first test window moved one hour before the last validation target: overlap.
    const lastVal = s.validation.at(-1) as Timed;
    const overlapping = {
      ...s,
      test: [
        { ...lastVal, inputEnd: lastVal.targetTime + H, targetTime: lastVal.targetTime + 2 * H },
        ...s.test.slice(1),
      ],
    };
    expect(() => assertNoLeak(overlapping)).toThrow(/test reads .* but validation already reads up to/);
    // A random shuffle of all windows into three parts is never accepted.
    expect(() => assertNoLeak({ train: s.test, validation: s.validation, test: s.train })).toThrow(
      /leaky or unordered/,
    );
  });

  it('never leaks on any ordered series with gaps (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 400 }), { minLength: 120, maxLength: 400 }),
        fc.integer({ min: 2, max: 12 }),
        fc.integer({ min: 1, max: 3 }),
        (hours, windowHours, horizonHours) => {
          const { windows: ws } = buildWindows(candlesAt([...hours].sort((a, b) => a - b)), {
            windowHours,
            horizonHours,
          });
          let s: ReturnType<typeof splitByTime> | undefined;
          try {
            s = splitByTime(ws, { validation: 0.2, test: 0.2 });
          } catch (err) {
            // Too few windows to split is refused, never split wrongly.
            expect(String(err)).toMatch(/too few|is empty/);
            return;
          }
          for (const w of [...s.train, ...s.validation, ...s.test]) {
            expect(w.targetTime).toBe(w.inputEnd + horizonHours * H);
            expect(w.inputEnd - w.inputStart).toBe(windowHours * H);
          }
          const last = (p: Timed[]) => Math.max(...p.map((w) => w.targetTime));
          const first = (p: Timed[]) => Math.min(...p.map((w) => w.inputStart));
          expect(last(s.train)).toBeLessThan(first(s.validation));
          expect(last(s.validation)).toBeLessThan(first(s.test));
        },
      ),
      { numRuns: 60, seed: 11 },
    );
  });
});

describe('scaling state', () => {
  const { windows } = buildWindows(candlesAt(range(80)), { windowHours: 4, horizonHours: 1 });
  const s = splitByTime(windows, { validation: 0.2, test: 0.2 });
  const state = fitScaling(s.train, { windowHours: 4, horizonHours: 1, movingAverageHours: 4 });

  it('is fitted on the training windows only', () => {
    // Volume grows each hour: its log change shrinks; fitting on all windows would give another mean.
    const trainVol = s.train.flatMap((w) =>
      Array.from({ length: 4 }, (_, k) => w.x[k * FEATURE_COUNT + 3] as number),
    );
    expect(state.mean[3]).toBeCloseTo(trainVol.reduce((a, b) => a + b, 0) / trainVol.length, 9);
    expect(state.trainedThrough).toBe(new Date(Math.max(...s.train.map((w) => w.targetTime))).toISOString());
    // A constant feature (the close return is always log 1.01) is scaled by 1, not divided by ~0.
    expect(state.std[0]).toBe(1);
    const z = scaleInputs(state, [s.train[0] as (typeof windows)[number]]);
    expect(z[3]).toBeCloseTo(
      ((s.train[0]?.x[3] as number) - (state.mean[3] as number)) / (state.std[3] as number),
      5,
    );
    expect(unscaleTarget(state, scaleTarget(state, 0.0123))).toBeCloseTo(0.0123, 12);
  });

  it('round-trips through JSON and refuses a state it cannot use', () => {
    const back = parseForecastState(JSON.parse(JSON.stringify(state)));
    expect(back).toEqual(state);
    expect(scaleInputs(back, s.test)).toEqual(scaleInputs(state, s.test));
    expect(() => parseForecastState({ ...state, std: [1, 1, 0, 1] })).toThrow(
      new RegExp(`${FORECAST_STATE_FILE}: std`),
    );
    expect(() => parseForecastState({ ...state, features: ['close'] })).toThrow(/features/);
    expect(() => parseForecastState({ ...state, windowHours: 0 })).toThrow(/windowHours/);
  });
});

describe('candles from the warehouse', () => {
  it('reads only candles closed by the cutoff, oldest first', async () => {
    const home = tempHome('driftwood-forecast-wh-');
    const db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    try {
      const contract = await loadContract('btc');
      await ensureContractTables(db, contract);
      const rows = candlesAt([3, 0, 1, 2]).map((c) => ({ ...candleRow(c), source_key: 'k' }));
      await db('candles').insert(rows);
      expect((await loadCandles(db)).map((c) => (c.openTime - T0) / H)).toEqual([0, 1, 2, 3]);
      // At 03:00 the candle opened at 02:00 has just closed; the 03:00 one has not.
      expect((await loadCandles(db, T0 + 3 * H)).map((c) => (c.openTime - T0) / H)).toEqual([0, 1, 2]);
      expect(forecastConfig(contract)).toMatchObject({ table: 'candles', windowHours: 24, horizonHours: 1 });
    } finally {
      await db.destroy();
    }
  });
});
