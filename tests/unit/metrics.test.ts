import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { churnBehaviourChecks } from '../../tasks/src/datasets/churn/behaviour.js';
import { pairedBootstrapAuc } from '../../tasks/src/evaluate/bootstrap.js';
import { confusionPng, prPng, rocPng } from '../../tasks/src/evaluate/plots.js';
import { segmentMetrics } from '../../tasks/src/evaluate/segments.js';
import {
  averagePrecision,
  binaryMetrics,
  chooseThreshold,
  confusionAt,
  prCurve,
  rocCurve,
} from '../../tasks/src/models/metrics.js';
import { Rng } from '../../tasks/src/random.js';

describe('binary metrics beyond the confusion matrix', () => {
  it.each([
    // Values from sklearn.metrics.average_precision_score on the same inputs.
    [[0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.8333333333333333],
    [[0.9, 0.8, 0.7, 0.6], [1, 1, 0, 0], 1],
    [[0.9, 0.8, 0.7, 0.6], [0, 0, 1, 1], 0.4166666666666667],
    [[0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5],
  ])('average precision of %j with labels %j is %d', (scores, labels, ap) => {
    expect(averagePrecision(scores, labels)).toBeCloseTo(ap, 12);
  });

  it('computes the Brier score and records the threshold used', () => {
    const m = binaryMetrics([1, 0, 0.5, 0.25], [1, 0, 1, 0], 0.3);
    expect(m.brier).toBeCloseTo((0 + 0 + 0.25 + 0.0625) / 4, 12);
    expect(m.threshold).toBe(0.3);
    expect(m.pr_auc).toBeCloseTo(1, 12);
    expect(confusionAt([1, 0, 0.5, 0.25], [1, 0, 1, 0], 0.3)).toEqual({ tp: 2, fp: 0, tn: 2, fn: 0 });
  });

  it('chooses the threshold with the best F1 among the scores seen', () => {
    // At 0.6: tp=2, fp=0, fn=1 → F1 0.8; at 0.3: tp=3, fp=2 → F1 0.75; at 0.9: tp=1 → F1 0.5.
    expect(chooseThreshold([0.9, 0.6, 0.5, 0.4, 0.3], [1, 1, 0, 0, 1])).toBe(0.6);
    expect(chooseThreshold([0.2, 0.3], [0, 0])).toBe(0.5);
  });

  it('draws ROC from (0,0) to (1,1) and PR ending at full recall', () => {
    const scores = [0.9, 0.8, 0.7, 0.6, 0.2];
    const labels = [1, 0, 1, 0, 0];
    const roc = rocCurve(scores, labels);
    expect(roc[0]).toEqual([0, 0]);
    expect(roc[roc.length - 1]).toEqual([1, 1]);
    for (let i = 1; i < roc.length; i++) {
      expect((roc[i] as number[])[0]).toBeGreaterThanOrEqual((roc[i - 1] as number[])[0] as number);
      expect((roc[i] as number[])[1]).toBeGreaterThanOrEqual((roc[i - 1] as number[])[1] as number);
    }
    const pr = prCurve(scores, labels);
    expect(pr[0]).toEqual([0.5, 1]);
    expect(pr[pr.length - 1]).toEqual([1, 0.4]);
  });
});

describe('plots', () => {
  const decode = (buf: Buffer) => PNG.sync.read(buf);
  const hasColour = (png: PNG, rgb: [number, number, number]) => {
    for (let i = 0; i < png.data.length; i += 4)
      if (png.data[i] === rgb[0] && png.data[i + 1] === rgb[1] && png.data[i + 2] === rgb[2]) return true;
    return false;
  };

  it('writes ROC, PR and confusion-matrix images that decode as PNGs with the curve drawn', () => {
    const roc = decode(
      rocPng(
        [
          [0, 0],
          [0.2, 0.7],
          [1, 1],
        ],
        0.81,
      ),
    );
    expect([roc.width, roc.height]).toEqual([320, 320]);
    expect(hasColour(roc, [31, 119, 180])).toBe(true);
    const empty = decode(rocPng([], Number.NaN));
    expect(hasColour(empty, [31, 119, 180])).toBe(false);
    const pr = decode(
      prPng(
        [
          [0.5, 1],
          [1, 0.4],
        ],
        0.7,
        0.4,
      ),
    );
    expect(hasColour(pr, [31, 119, 180])).toBe(true);
    const cm = decode(confusionPng({ tp: 5, fp: 2, tn: 80, fn: 3 }, 0.42));
    expect(cm.width).toBe(320);
  });

  it('shades the fullest confusion cell darkest', () => {
    const cm = decode(confusionPng({ tp: 1, fp: 1, tn: 100, fn: 1 }, 0.5));
    const px = (x: number, y: number) => cm.data[(y * cm.width + x) * 4] as number;
    // Cell (0,0) = true negatives (100 rows) against cell (1,1) = true positives (1 row).
    expect(px(40, 40)).toBeLessThan(px(200, 200));
  });
});

describe('segmentMetrics', () => {
  it('reports each plan and region separately', () => {
    const rows = [
      { plan: 'basic', region: 'north' },
      { plan: 'basic', region: 'south' },
      { plan: 'premium', region: 'north' },
      { plan: 'premium', region: 'south' },
    ];
    const seg = segmentMetrics(rows, [0.9, 0.1, 0.2, 0.8], [1, 0, 1, 0], 0.5, ['plan', 'region']);
    expect(seg.map((s) => s.segment)).toEqual(['plan=basic', 'plan=premium', 'region=north', 'region=south']);
    expect(seg[0]).toMatchObject({ n: 2, positives: 1, roc_auc: 1, accuracy: 1 });
    expect(seg[1]).toMatchObject({ n: 2, positives: 1, roc_auc: 0, accuracy: 0 });
    expect(seg[2]?.roc_auc).toBeNaN();
  });
});

describe('pairedBootstrapAuc', () => {
  const rng = new Rng(5);
  const labels = Array.from({ length: 400 }, () => (rng.next() < 0.2 ? 1 : 0));
  const good = labels.map((y) => y * 0.6 + rng.next() * 0.5);
  const noisy = labels.map((y) => y * 0.15 + rng.next() * 0.5);

  it('puts a clearly better model’s interval above zero, and is repeatable for a seed', () => {
    const a = pairedBootstrapAuc(good, noisy, labels, { samples: 300, seed: 1, level: 0.95 });
    expect(a.diff).toBeGreaterThan(0);
    expect(a.low).toBeGreaterThan(0);
    expect(a.low).toBeLessThanOrEqual(a.diff);
    expect(a.high).toBeGreaterThanOrEqual(a.diff);
    expect(pairedBootstrapAuc(good, noisy, labels, { samples: 300, seed: 1, level: 0.95 })).toEqual(a);
  });

  it('centres on zero for a model against itself', () => {
    const a = pairedBootstrapAuc(good, good, labels, { samples: 100, seed: 2, level: 0.9 });
    expect(a).toMatchObject({ diff: 0, low: 0, high: 0 });
  });
});

describe('churnBehaviourChecks', () => {
  const rows = Array.from({ length: 40 }, (_, i) => ({
    customer_id: `C${i}`,
    plan: i % 2 ? 'basic' : 'premium',
    region: 'north',
    tenure_days: 10 + i,
    sessions_3d: i % 4,
    sessions_7d: i % 7,
    sessions_30d: 10 + (i % 9),
    minutes_30d: 100,
    tickets_7d: 0,
    tickets_30d: i % 3,
    payment_failures_30d: i % 2,
    purchases_30d: 5,
    hours_since_last_session: 5 + i,
  }));
  const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
  const sensible = (r: Record<string, unknown>) =>
    sigmoid(
      1.5 * Number(r.payment_failures_30d) -
        0.8 * Number(r.sessions_7d) -
        0.2 * Number(r.sessions_30d) +
        0.02 * Number(r.hours_since_last_session) +
        0.5 * Number(r.tickets_30d),
    );
  const byName = (checks: ReturnType<typeof churnBehaviourChecks>) =>
    Object.fromEntries(checks.map((c) => [c.name, c]));

  it('passes a model that behaves', () => {
    const checks = churnBehaviourChecks(rows, sensible, 0.5);
    expect(checks.every((c) => c.passed)).toBe(true);
    expect(checks.map((c) => c.kind).sort()).toEqual([
      'directional',
      'directional',
      'invariance',
      'minimum_functionality',
    ]);
  });

  it('fails a model that reads the customer id', () => {
    const leaky = (r: Record<string, unknown>) => sensible(r) * (String(r.customer_id).length % 2 ? 0.9 : 1);
    const c = byName(churnBehaviourChecks(rows, leaky, 0.5)).invariant_to_customer_id_and_pii;
    expect(c?.passed).toBe(false);
    expect(c?.failures).toBeGreaterThan(0);
  });

  it('fails a model where payment failures lower the risk', () => {
    const backwards = (r: Record<string, unknown>) =>
      sensible({ ...r, payment_failures_30d: -3 * Number(r.payment_failures_30d) });
    const c = byName(churnBehaviourChecks(rows, backwards, 0.5));
    expect(c.more_payment_failures_never_lower_risk?.passed).toBe(false);
    expect(c.more_payment_failures_never_lower_risk?.failures).toBeGreaterThan(rows.length / 2);
    expect(c.fewer_recent_sessions_never_lower_risk?.passed).toBe(true);
  });

  it('fails a model that calls everyone a churner on the obvious cases', () => {
    const c = byName(churnBehaviourChecks(rows, () => 0.9, 0.5)).obvious_cases_classified_right;
    expect(c?.passed).toBe(false);
    expect(c?.detail).toMatch(/obviously engaged customer on basic scored 0.900/);
  });
});
