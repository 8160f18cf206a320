import { describe, expect, it } from 'vitest';
import { PLOT, pathData, toPixels } from '../../dashboard/src/curves.js';
import {
  curveCandidates,
  defaultPair,
  formatDelta,
  formatMetric,
  formatRange,
  formatValue,
  keyMetrics,
  metricDiff,
  paramDiff,
  typicalRange,
} from '../../dashboard/src/figures.js';
import { parseCurves } from '../../serving/src/routes/models-info.js';
import { CURVES_FORMAT, curveSeries, curvesPath, thinCurve } from '../../tasks/src/evaluate/curves.js';

/** The Models and Predict pages' pure parts, and the curve points evaluate logs for them. */

describe('the versions table', () => {
  it('shows the key metrics some version logged, classifier or forecast, in a fixed order', () => {
    const churn = [
      { metrics: { holdout_brier: 0.1, holdout_roc_auc: 0.8, loss: 0.3, epochs_run: 12 } },
      { metrics: { holdout_pr_auc: 0.5 } },
    ];
    expect(keyMetrics(churn).map((c) => c.label)).toEqual(['ROC AUC', 'PR AUC', 'Brier']);
    const btc = [{ metrics: { test_rmse: 120.5, test_rmse_vs_persistence: 0.97, persistence_rmse: 124 } }];
    expect(keyMetrics(btc).map((c) => c.key)).toEqual(['test_rmse', 'test_rmse_vs_persistence']);
    expect(keyMetrics([{ metrics: { holdout_roc_auc: Number.NaN } }])).toEqual([]);
  });

  it.each([
    [12, '12'],
    [0, '0'],
    [0.81234567, '0.8123'],
    [-0.5, '-0.5000'],
    [undefined, '—'],
    [Number.NaN, '—'],
  ])('formats %s as %s', (v, text) => {
    expect(formatMetric(v)).toBe(text);
  });

  it.each([
    [0.0123, '+0.0123'],
    [-0.0045, '−0.0045'],
    [3, '+3'],
    [-2, '−2'],
    [0, '0'],
    [0.00001, '+<0.0001'],
    [-0.00001, '−<0.0001'],
    [undefined, '—'],
  ])('formats the difference %s as %s', (d, text) => {
    expect(formatDelta(d)).toBe(text);
  });
});

describe('the version diff', () => {
  it('puts key metrics first, then the rest by name, each with b − a', () => {
    const rows = metricDiff(
      { zeta: 1, holdout_log_loss: 0.5, holdout_roc_auc: 0.7, alpha: 2 },
      { zeta: 1, holdout_log_loss: 0.25, holdout_roc_auc: 0.75, beta: 4 },
    );
    expect(rows.map((r) => r.key)).toEqual(['holdout_roc_auc', 'holdout_log_loss', 'alpha', 'beta', 'zeta']);
    expect(rows[0]).toMatchObject({ label: 'ROC AUC', a: 0.7, b: 0.75 });
    expect(rows[0]?.delta).toBeCloseTo(0.05, 12);
    expect(rows[1]?.delta).toBe(-0.25);
    expect(rows.find((r) => r.key === 'alpha')).toMatchObject({ a: 2, b: undefined, delta: undefined });
    expect(rows.find((r) => r.key === 'zeta')?.delta).toBe(0);
  });

  it('lists only the parameters that differ, one side possibly missing', () => {
    expect(
      paramDiff({ seed: '7', epochs: '30', lr: '0.01' }, { seed: '8', epochs: '30', kind: 'mlp' }),
    ).toEqual([
      { key: 'kind', a: undefined, b: 'mlp' },
      { key: 'lr', a: '0.01', b: undefined },
      { key: 'seed', a: '7', b: '8' },
    ]);
    expect(paramDiff({ seed: '7' }, { seed: '7' })).toEqual([]);
  });

  it('compares the served version with the challenger, else with the newest other', () => {
    expect(defaultPair(['5', '4', '3'], { champion: '3', challenger: '4' }, 'champion')).toEqual(['3', '4']);
    expect(defaultPair(['5', '4', '3'], { champion: '4', challenger: '4' }, 'champion')).toEqual(['4', '5']);
    expect(defaultPair(['5', '4', '3'], {}, 'champion')).toEqual(['4', '5']);
    expect(defaultPair(['5'], { champion: '5' }, 'champion')).toBeNull();
  });

  it('tries the challenger, the newest unserved and then the served version for curves', () => {
    expect(curveCandidates(['5', '4', '3'], { champion: '4', challenger: '3' }, 'champion')).toEqual([
      '3',
      '5',
      '4',
    ]);
    expect(curveCandidates(['5', '4'], { champion: '4', challenger: '5' }, 'champion')).toEqual(['5', '4']);
    expect(curveCandidates(['2'], { champion: '2', challenger: '9' }, 'champion')).toEqual(['2']);
  });
});

describe('a numeric field’s typical range', () => {
  it('keeps a skewed count inside its training range: no negative bound, whole numbers', () => {
    // tickets_30d: mostly 0, a few up to 9 — mean − std is below zero.
    const r = typicalRange({ median: 0, mean: 0.6, std: 1.3, min: 0, max: 9 });
    expect(r).toEqual({ low: 0, high: 2, whole: true });
  });

  it('uses mean ± std for a continuous field, clipped to the training range', () => {
    expect(typicalRange({ median: 50.2, mean: 52.5, std: 10, min: 45.5, max: 99.5 })).toEqual({
      low: 45.5,
      high: 62.5,
      whole: false,
    });
  });

  it('uses the median ± half the IQR when the transform scales robustly', () => {
    expect(typicalRange({ median: 10, mean: 10, std: 8, min: 0, max: 100 }, 'robust')).toEqual({
      low: 6,
      high: 14,
      whole: true,
    });
  });

  it('without a stored training range it can only show mean ± std', () => {
    expect(typicalRange({ median: 1, mean: 1, std: 3 })).toEqual({ low: -2, high: 4, whole: false });
  });

  it.each([
    [3, false, '3'],
    [2.5, true, '3'],
    [1234.56, false, '1235'],
    [0.456, false, '0.46'],
  ])('writes %s (whole %s) as %s', (v, whole, text) => {
    expect(formatValue(v, whole)).toBe(text);
  });

  it.each([
    [43.6, 157.2, false, '44 – 157'],
    [0.25, 3.5, false, '0.25 – 3.50'],
    [0, 2, true, '0 – 2'],
    [-1.5, 99, false, '-1.50 – 99.00'],
  ])('writes the range %s to %s (whole %s) as %s', (low, high, whole, text) => {
    expect(formatRange(low, high, whole)).toBe(text);
  });
});

describe('curve points', () => {
  it('maps the unit square onto the plot, y upwards, clamping strays', () => {
    const { width, height, pad } = PLOT;
    expect(toPixels([0, 0])).toEqual([pad, height - pad]);
    expect(toPixels([1, 1])).toEqual([width - pad, pad]);
    expect(toPixels([2, -1])).toEqual([width - pad, height - pad]);
  });

  it('draws a path through finite points only, and nothing for fewer than two', () => {
    const plot = { width: 120, height: 120, pad: 10 };
    expect(
      pathData(
        [
          [0, 0],
          [Number.NaN, 0.5],
          [0.5, 0.5],
          [1, 1],
        ],
        plot,
      ),
    ).toBe('M10 110 L60 60 L110 10');
    expect(pathData([[0.5, 0.5]], plot)).toBe('');
  });

  it('thins a long curve evenly, keeping both ends', () => {
    const long = Array.from({ length: 1001 }, (_, i): [number, number] => [i / 1000, Math.sqrt(i / 1000)]);
    const thin = thinCurve(long, 11);
    expect(thin).toHaveLength(11);
    expect(thin[0]).toEqual([0, 0]);
    expect(thin[10]).toEqual([1, 1]);
    expect(thin[3]).toEqual([0.3, 0.547723]);
    expect(thinCurve(long.slice(0, 3), 11)).toHaveLength(3);
    expect(() => thinCurve(long, 1)).toThrow(RangeError);
  });

  it('gives one model’s ROC and PR on a holdout, and the API reads the file evaluate writes', () => {
    const scores = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1];
    const labels = [1, 1, 0, 1, 0, 0];
    const s = curveSeries('candidate', '4', scores, labels, { rocAuc: 0.89, prAuc: 0.92 });
    expect(s.roc[0]).toEqual([0, 0]);
    expect(s.roc.at(-1)).toEqual([1, 1]);
    expect(s.pr[0]).toEqual([0.333333, 1]);
    expect(s.pr.at(-1)).toEqual([1, 0.5]);
    expect(curvesPath('champion')).toBe('evidence/champion-curves.json');
    const file = JSON.stringify({ format: CURVES_FORMAT, alias: 'champion', series: [s] });
    expect(parseCurves(file)?.series).toHaveLength(1);
    expect(parseCurves(JSON.stringify({ format: 'driftwood.curves/v0', series: [] }))).toBeNull();
    expect(parseCurves('{"format": ')).toBeNull();
  });
});
