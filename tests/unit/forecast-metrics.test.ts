import { describe, expect, it } from 'vitest';
import { loadContract, validateContract } from '../../tasks/src/contracts/index.js';
import { DEFAULT_FORECAST_POLICY, decideForecastPromotion } from '../../tasks/src/forecast/gate.js';
import {
  forecastMetrics,
  movingAverageForecast,
  persistenceForecast,
} from '../../tasks/src/forecast/metrics.js';
import { forecastConfig } from '../../tasks/src/forecast/settings.js';

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

describe('the forecast gate margin in the contract', () => {
  const btcWith = async (margin: number | undefined) => {
    const btc = await loadContract('btc');
    const { persistence_margin: _, ...forecast } = btc.forecast as NonNullable<typeof btc.forecast>;
    return {
      ...btc,
      forecast: margin === undefined ? forecast : { ...forecast, persistence_margin: margin },
    };
  };
  const evidence = {
    challenger: { version: '2', rmse: 96 },
    persistence: { rmse: 100 },
    champion: null,
    hours: 5,
  };

  it('defaults to 1% and is the policy the gate applies', async () => {
    expect(forecastConfig(await btcWith(undefined)).persistenceMargin).toBe(0.01);
    expect(forecastConfig(await loadContract('btc')).persistenceMargin).toBe(0.01);
    const strict = forecastConfig(await btcWith(0.05)).persistenceMargin;
    expect(strict).toBe(0.05);
    // 4% better than persistence: enough under the default, not under a declared 5%.
    expect(decideForecastPromotion(evidence, { minImprovement: 0.01 }).promote).toBe(true);
    const refused = decideForecastPromotion(evidence, { minImprovement: strict });
    expect(refused.promote).toBe(false);
    expect(refused.reason).toMatch(/persistence RMSE 100\.000 less 5\.00% \(95\.0000\)/);
  });

  it.each([
    [-0.01, /\/forecast\/persistence_margin: must be >= 0/],
    [1, /\/forecast\/persistence_margin: must be < 1/],
  ])('refuses a margin of %f, naming the path', async (margin, message) => {
    const { digest: _, ...raw } = await btcWith(margin);
    await expect(validateContract(raw, 'btc.yaml')).rejects.toThrow(message);
  });
});
