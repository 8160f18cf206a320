import { describe, expect, it } from 'vitest';
import { DEFAULT_FORECAST_POLICY, decideForecastPromotion } from '../../tasks/src/forecast/gate.js';
import {
  forecastMetrics,
  movingAverageForecast,
  persistenceForecast,
} from '../../tasks/src/forecast/metrics.js';

describe('forecast metrics', () => {
  it('computes RMSE, MAE, MAPE and directional accuracy as by hand', () => {
    // actual 110, 90, 100, 100 after last closes 100, 100, 100, 100; forecasts 105, 95, 102, 100.
    // errors 5, -5, -2, 0 → RMSE √(54/4) = 3.674…, MAE 3, MAPE (5/110+5/90+2/100+0)/4·100,
    // directions: up/up, down/down, up/flat (wrong), flat/flat (right) → 3/4.
    const m = forecastMetrics([110, 90, 100, 100], [105, 95, 102, 100], [100, 100, 100, 100]);
    expect(m.rmse).toBeCloseTo(Math.sqrt(54 / 4), 12);
    expect(m.mae).toBe(3);
    expect(m.mape).toBeCloseTo(((5 / 110 + 5 / 90 + 2 / 100) / 4) * 100, 12);
    expect(m.directional_accuracy).toBe(0.75);
    expect(m.n).toBe(4);
  });

  it('gives the persistence forecast no direction and the last close as forecast', () => {
    const windows = [
      { lastClose: 100, closes: [90, 95, 100] },
      { lastClose: 100, closes: [100, 110, 100] },
    ];
    expect(persistenceForecast(windows)).toEqual([100, 100]);
    const m = forecastMetrics([101, 99], persistenceForecast(windows), [100, 100]);
    expect(m.rmse).toBe(1);
    expect(m.directional_accuracy).toBe(0);
  });

  it('averages the last k closes for the moving-average forecast', () => {
    const windows = [{ closes: [90, 95, 100] }, { closes: [100, 110, 120] }];
    expect(movingAverageForecast(windows, 2)).toEqual([97.5, 115]);
    expect(movingAverageForecast(windows, 3)).toEqual([95, 110]);
    expect(() => movingAverageForecast(windows, 4)).toThrow(/k=4 but window 0 holds 3 closes/);
  });

  it('refuses mismatched or empty inputs', () => {
    expect(() => forecastMetrics([], [], [])).toThrow(/metrics/);
    expect(() => forecastMetrics([1, 2], [1], [1, 2])).toThrow(/metrics/);
  });
});

describe('forecast gate', () => {
  const cases: {
    name: string;
    challenger: number;
    persistence: number;
    champion: number | null;
    promote: boolean;
    reason: RegExp;
  }[] = [
    {
      name: 'beats persistence, no champion',
      challenger: 95,
      persistence: 100,
      champion: null,
      promote: true,
      reason: /^promoted: .*no champion yet/,
    },
    {
      name: 'beats persistence and champion',
      challenger: 95,
      persistence: 100,
      champion: 97,
      promote: true,
      reason: /^promoted: .*champion v1 RMSE 97/,
    },
    {
      name: 'ties persistence',
      challenger: 100,
      persistence: 100,
      champion: null,
      promote: false,
      reason: /beats_persistence failed/,
    },
    {
      name: 'under persistence by less than the margin',
      challenger: 99.5,
      persistence: 100,
      champion: null,
      promote: false,
      reason: /beats_persistence failed .*less 1\.00% \(99\.0000\)/,
    },
    {
      name: 'beats persistence, loses to champion',
      challenger: 95,
      persistence: 100,
      champion: 94,
      promote: false,
      reason: /beats_champion failed .*95\.0000 >= champion v1 RMSE 94/,
    },
    {
      name: 'ties champion',
      challenger: 95,
      persistence: 100,
      champion: 95,
      promote: false,
      reason: /beats_champion failed/,
    },
    {
      name: 'model broke (NaN)',
      challenger: Number.NaN,
      persistence: 100,
      champion: null,
      promote: false,
      reason: /finite failed/,
    },
    {
      name: 'champion cannot be scored',
      challenger: 95,
      persistence: 100,
      champion: Number.NaN,
      promote: false,
      reason: /beats_champion failed/,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const d = decideForecastPromotion({
        challenger: { version: '2', rmse: c.challenger },
        persistence: { rmse: c.persistence },
        champion: c.champion === null ? null : { version: '1', rmse: c.champion },
        hours: 300,
      });
      expect(d.promote).toBe(c.promote);
      expect(d.reason).toMatch(c.reason);
    });

  it('does not compare a version with itself', () => {
    const d = decideForecastPromotion({
      challenger: { version: '3', rmse: 95 },
      persistence: { rmse: 100 },
      champion: { version: '3', rmse: 95 },
      hours: 10,
    });
    expect(d.promote).toBe(true);
    expect(d.checks.map((k) => k.name)).toEqual(['finite', 'beats_persistence']);
  });

  it('takes the margin from the policy', () => {
    expect(DEFAULT_FORECAST_POLICY.minImprovement).toBe(0.01);
    const evidence = {
      challenger: { version: '2', rmse: 99.5 },
      persistence: { rmse: 100 },
      champion: null,
      hours: 5,
    };
    expect(decideForecastPromotion(evidence, { minImprovement: 0 }).promote).toBe(true);
    expect(decideForecastPromotion(evidence).promote).toBe(false);
  });
});
