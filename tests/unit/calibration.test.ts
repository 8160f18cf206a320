import { describe, expect, it } from 'vitest';
import { datasetSettings, loadContract, validateContract } from '../../tasks/src/contracts/index.js';
import type { Contract } from '../../tasks/src/contracts/types.js';
import {
  applyCalibration,
  type Calibration,
  fitCalibration,
  MIN_PLATT_SLOPE,
  parseCalibration,
} from '../../tasks/src/models/calibration.js';
import {
  binaryMetrics,
  chooseThreshold,
  chooseThresholdFor,
  confusionAt,
  rocAuc,
} from '../../tasks/src/models/metrics.js';
import { Rng } from '../../tasks/src/random.js';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/**
 * n rows whose true log-odds are z, labelled by a draw from σ(z); the score reported for each is
 * `score(z)` — a model's miscalibrated view of the same ranking.
 */
function sample(n: number, seed: number, trueLogit: (z: number) => number, score: (z: number) => number) {
  const rng = new Rng(seed);
  const scores: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const z = rng.normal(0, 1.5);
    labels.push(rng.next() < sigmoid(trueLogit(z)) ? 1 : 0);
    scores.push(score(z));
  }
  return { scores, labels };
}

const logLoss = (scores: ArrayLike<number>, labels: ArrayLike<number>) =>
  binaryMetrics(scores, labels).log_loss;
const calibrated = (c: Calibration, scores: number[]) => scores.map((s) => applyCalibration(c, s));

describe('Platt scaling', () => {
  it('recovers a known miscalibration of the logit (slope 2, shift 1)', () => {
    // The model reports σ((z − 1)/2) where the truth is σ(z): the inverse is a = 2, b = 1.
    const { scores, labels } = sample(
      40_000,
      1,
      (z) => z,
      (z) => sigmoid((z - 1) / 2),
    );
    const c = fitCalibration(scores, labels, 'platt');
    expect(c.method).toBe('platt');
    if (c.method !== 'platt') return;
    expect(c.a).toBeCloseTo(2, 1);
    expect(c.b).toBeCloseTo(1, 1);
  });

  it('leaves a calibrated score nearly as it is', () => {
    const { scores, labels } = sample(40_000, 2, (z) => z, sigmoid);
    const c = fitCalibration(scores, labels, 'platt') as Extract<Calibration, { method: 'platt' }>;
    expect(c.a).toBeCloseTo(1, 1);
    expect(c.b).toBeCloseTo(0, 1);
  });

  it('keeps the ranking: ROC AUC is unchanged', () => {
    const { scores, labels } = sample(
      5_000,
      3,
      (z) => z - 2,
      (z) => sigmoid(0.4 * z + 1),
    );
    const c = fitCalibration(scores, labels, 'platt');
    expect(rocAuc(calibrated(c, scores), labels)).toBe(rocAuc(scores, labels));
  });

  it('never reverses the ranking, even when validation ranks backwards', () => {
    // A few hundred validation rows on which the model happens to rank backwards: the free Platt fit
    // would take a negative slope and turn every later ranking upside down.
    const validation = sample(
      300,
      6,
      (z) => -z - 3,
      (z) => sigmoid(z),
    );
    const c = fitCalibration(validation.scores, validation.labels, 'platt');
    if (c.method !== 'platt') throw new Error(`expected platt, got ${c.method}`);
    expect(c.a).toBe(MIN_PLATT_SLOPE);
    // On rows where the model ranks well, the calibrated scores rank exactly as the raw ones.
    const holdout = sample(
      3_000,
      7,
      (z) => z - 3,
      (z) => sigmoid(z),
    );
    const raw = rocAuc(holdout.scores, holdout.labels);
    expect(raw).toBeGreaterThan(0.8);
    expect(rocAuc(calibrated(c, holdout.scores), holdout.labels)).toBeCloseTo(raw, 12);
    // The probabilities sit near the validation base rate.
    const rate = validation.labels.filter((l) => l === 1).length / validation.labels.length;
    expect(Math.abs(applyCalibration(c, 0.5) - rate)).toBeLessThan(0.02);
  });

  it('copes with scores of exactly 0 and 1 (a saturated sigmoid)', () => {
    const c = fitCalibration([0, 0, 1, 1, 0.5, 0.5], [0, 1, 1, 1, 0, 1], 'platt');
    expect(c.method).toBe('platt');
    for (const s of [0, 1, 0.5]) expect(Number.isFinite(applyCalibration(c, s))).toBe(true);
    expect(applyCalibration(c, 1)).toBeGreaterThan(applyCalibration(c, 0));
  });
});

describe('isotonic calibration', () => {
  it('pools adjacent violators into the known step map, held half a row from 0 and 1', () => {
    // Blocks: {0.1}→0, {0.2, 0.3}→½, {0.4}→1; with 4 rows the values stay within [⅛, ⅞].
    const c = fitCalibration([0.3, 0.1, 0.4, 0.2], [0, 0, 1, 1], 'isotonic');
    expect(c).toEqual({ method: 'isotonic', x: [0.1, 0.2, 0.3, 0.4], y: [0.125, 0.5, 0.5, 0.875] });
    expect(applyCalibration(c, 0.15)).toBeCloseTo(0.3125, 12);
    expect(applyCalibration(c, 0)).toBe(0.125);
    expect(applyCalibration(c, 1)).toBe(0.875);
  });

  it('is monotone: a higher score never gets a lower probability', () => {
    for (const seed of [4, 5, 6]) {
      const { scores, labels } = sample(
        2_000,
        seed,
        (z) => z - 1.5,
        (z) => sigmoid(z + Math.sin(3 * z)),
      );
      const c = fitCalibration(scores, labels, 'isotonic');
      let previous = -1;
      for (let s = 0; s <= 1; s += 1 / 4096) {
        const p = applyCalibration(c, s);
        expect(p).toBeGreaterThanOrEqual(previous);
        expect(p).toBeGreaterThan(0);
        expect(p).toBeLessThan(1);
        previous = p;
      }
    }
  });
});

describe('calibrating a class-weighted score', () => {
  // Balanced class weights shift a logistic model's log-odds by log(n₋/n₊): with ~10 % positives the
  // model over-predicts the rare class about ninefold at the low end.
  const truth = (z: number) => z - 3;
  const shift = Math.log(0.9 / 0.1);
  const skewed = (z: number) => sigmoid(z - 3 + shift);
  const validation = sample(4_000, 7, truth, skewed);
  const fresh = sample(20_000, 8, truth, skewed);

  it.each(['platt', 'isotonic'] as const)('%s lowers the log loss on rows it was not fitted on', (method) => {
    const c = fitCalibration(validation.scores, validation.labels, method);
    const before = logLoss(fresh.scores, fresh.labels);
    const after = logLoss(calibrated(c, fresh.scores), fresh.labels);
    expect(after).toBeLessThan(before * 0.8);
    // The mean calibrated probability is near the share of positives; the raw one is far above it.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const rate = mean(fresh.labels);
    expect(Math.abs(mean(calibrated(c, fresh.scores)) - rate)).toBeLessThan(0.01);
    expect(mean(fresh.scores) - rate).toBeGreaterThan(0.1);
  });
});

describe('fitting and reading a calibration', () => {
  it('is none when asked, or when the labels hold one class only', () => {
    expect(fitCalibration([0.2, 0.8], [0, 1], 'none')).toEqual({ method: 'none' });
    expect(fitCalibration([0.2, 0.8], [0, 0], 'platt')).toEqual({ method: 'none' });
    expect(fitCalibration([0.2, 0.8], [1, 1], 'isotonic')).toEqual({ method: 'none' });
    expect(applyCalibration({ method: 'none' }, 0.37)).toBe(0.37);
  });

  it('reads back what it saves', () => {
    const { scores, labels } = sample(
      500,
      9,
      (z) => z,
      (z) => sigmoid(z / 3),
    );
    for (const method of ['platt', 'isotonic', 'none'] as const) {
      const c = fitCalibration(scores, labels, method);
      expect(parseCalibration(JSON.parse(JSON.stringify(c)))).toEqual(c);
    }
  });

  it.each([
    [null, /calibration\.json: expected an object with a method, got null/],
    [{ method: 'beta' }, /calibration\.json: method: expected platt, isotonic, none, got "beta"/],
    [{ method: 'platt', a: 1 }, /calibration\.json: b: expected a finite number, got undefined/],
    [{ method: 'platt', a: 'x', b: 0 }, /calibration\.json: a: expected a finite number, got "x"/],
    [{ method: 'platt', a: -0.5, b: 0 }, /calibration\.json: a: -0.5 is not a slope above 0/],
    [{ method: 'isotonic', x: [0.1, 0.2], y: [0.5] }, /x and y as arrays of the same length/],
    [
      { method: 'isotonic', x: [0.3, 0.2], y: [0.1, 0.5] },
      /x\[1\]: knots must not decrease \(0.3 then 0.2\)/,
    ],
    [{ method: 'isotonic', x: [0.1, 0.2], y: [0.5, 0.1] }, /y\[1\]: values must not decrease/],
    [{ method: 'isotonic', x: [0.1], y: [1.5] }, /y\[0\]: expected a probability, got 1.5/],
  ])('refuses %j, naming what is wrong', (json, message) => {
    expect(() => parseCalibration(json)).toThrow(message);
    expect(() => parseCalibration(json)).toThrow(expect.objectContaining({ code: 'MODEL_INVALID' }));
  });
});

describe('the threshold from a declared cost', () => {
  const scores = [0.9, 0.6, 0.5, 0.4, 0.3];
  const labels = [1, 1, 0, 0, 1];
  const cost = (fp: number, fn: number) =>
    ({ objective: 'cost', falsePositiveCost: fp, falseNegativeCost: fn }) as const;

  it('flags more rows as a miss costs more than a false alarm', () => {
    // Missing a positive costs 5: flag all five (2 false alarms, cost 2) rather than miss one (5).
    expect(chooseThresholdFor(scores, labels, cost(1, 5))).toBe(0.3);
    // A false alarm costs 5: flag the top two (no false alarm, one miss: cost 1).
    expect(chooseThresholdFor(scores, labels, cost(5, 1))).toBe(0.6);
    expect(chooseThresholdFor(scores, labels, { objective: 'f1' })).toBe(chooseThreshold(scores, labels));
  });

  it('flags no one when every cut costs more than missing every positive', () => {
    const t = chooseThresholdFor([0.9, 0.5], [0, 1], cost(100, 1));
    expect(t).toBeGreaterThan(0.9);
    expect(confusionAt([0.9, 0.5], [0, 1], t)).toEqual({ tp: 0, fp: 0, tn: 1, fn: 1 });
  });

  it('has the least expected cost of every cut the scores allow', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 20; trial++) {
      const n = 200;
      const y = Array.from({ length: n }, () => (rng.next() < 0.15 ? 1 : 0));
      const s = y.map((v) => Math.round(sigmoid(rng.normal(v ? 1 : -1, 1.2)) * 100) / 100);
      const [fpCost, fnCost] = [1 + rng.int(0, 5), 1 + rng.int(0, 10)];
      const costAt = (t: number) => {
        const c = confusionAt(s, y, t);
        return c.fp * fpCost + c.fn * fnCost;
      };
      const chosen = costAt(chooseThresholdFor(s, y, cost(fpCost, fnCost)));
      for (const t of [...new Set(s), 2]) expect(chosen).toBeLessThanOrEqual(costAt(t));
    }
  });
});

const loans = (training: Record<string, unknown>) => ({
  dataset: 'loans',
  version: 1,
  task: 'binary_classification',
  builder: 'columns',
  training,
  tables: [
    {
      name: 'applications',
      files: ['applications.csv'],
      key: 'application_id',
      columns: [
        { name: 'application_id', type: 'string', role: 'id' },
        { name: 'income', type: 'number', role: 'feature' },
        { name: 'defaulted', type: 'boolean', role: 'target' },
      ],
    },
  ],
});

describe('calibration and threshold in the contract', () => {
  const settingsOf = async (training: Record<string, unknown>) =>
    datasetSettings({ ...(await validateContract(loans(training), 'loans.yaml')), digest: 'x' } as Contract);

  it('reads the model train fits: none by default, else its kind and parameters', async () => {
    expect((await settingsOf({})).model).toEqual({});
    expect(
      (await settingsOf({ model: { kind: 'gbdt', params: { trees: 50, maxLeaves: 15 } } })).model,
    ).toEqual({ kind: 'gbdt', trees: 50, maxLeaves: 15 });
    expect((await settingsOf({ model: { kind: 'auto', params: { trees: 50 } } })).model).toEqual({
      kind: 'auto',
      trees: 50,
    });
  });

  it('reads them, with platt and F1 by default', async () => {
    expect(await settingsOf({})).toMatchObject({ calibration: 'platt', threshold: { objective: 'f1' } });
    expect(datasetSettings(await loadContract('churn'))).toMatchObject({
      calibration: 'platt',
      threshold: { objective: 'f1' },
    });
    expect(
      await settingsOf({
        calibration: 'isotonic',
        threshold: { objective: 'cost', false_positive_cost: 1, false_negative_cost: 5 },
      }),
    ).toMatchObject({
      calibration: 'isotonic',
      threshold: { objective: 'cost', falsePositiveCost: 1, falseNegativeCost: 5 },
    });
  });

  it.each([
    [
      'an unknown calibration',
      { calibration: 'sigmoid' },
      /\/training\/calibration: must be equal to one of the allowed values \(platt, isotonic, none\)/,
    ],
    [
      'an unknown objective',
      { threshold: { objective: 'accuracy' } },
      /\/training\/threshold\/objective: must be equal to one of the allowed values \(f1, cost\)/,
    ],
    [
      'a cost objective without the cost of a miss',
      { threshold: { objective: 'cost', false_positive_cost: 1 } },
      /\/training\/threshold\/false_negative_cost: objective 'cost' needs both costs: add false_negative_cost/,
    ],
    [
      'a cost with objective f1',
      { threshold: { objective: 'f1', false_negative_cost: 5 } },
      /\/training\/threshold\/false_negative_cost: a cost counts only with objective: cost/,
    ],
    [
      'a negative cost',
      { threshold: { objective: 'cost', false_positive_cost: -1, false_negative_cost: 5 } },
      /\/training\/threshold\/false_positive_cost: must be >= 0/,
    ],
    [
      'two costs of 0',
      { threshold: { objective: 'cost', false_positive_cost: 0, false_negative_cost: 0 } },
      /\/training\/threshold: both costs are 0/,
    ],
    [
      'a model parameter train does not know',
      { model: { kind: 'gbdt', params: { depth: 3 } } },
      /\/training\/model\/params.*depth/,
    ],
    ['an unknown model kind', { model: { kind: 'forest' } }, /\/training\/model\/kind/],
  ])('refuses %s, naming the field', async (_, training, message) => {
    await expect(validateContract(loans(training), 'loans.yaml')).rejects.toThrow(message);
    await expect(validateContract(loans(training), 'loans.yaml')).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });
});
