import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compileGbdt,
  compileGbdtMargin,
  DEFAULT_GBDT_PARAMS,
  fitGbdt,
  fitGbdtDetailed,
  type GbdtIteration,
  type GbdtModel,
  type GbdtParams,
  parseGbdtModel,
  scoreGbdt,
  sigmoid,
  validateGbdtParams,
} from '../../tasks/src/models/gbdt.js';
import { fitLogisticExact } from '../../tasks/src/models/logistic-exact.js';
import { rocAuc } from '../../tasks/src/models/metrics.js';
import { Rng } from '../../tasks/src/random.js';
import { ROOT } from '../support/env.js';

const PYTHON = path.join(ROOT, '.venvs', 'mlflow', 'bin', 'python');

type Label = (row: Float32Array, rng: Rng) => number;

/** Rows of `width` standard normal columns (a share missing in `missingColumns`), labels from `label`. */
function rows(
  n: number,
  width: number,
  seed: number,
  label: Label,
  missingColumns: number[] = [],
  missing = 0,
) {
  const rng = new Rng(seed);
  const x = new Float32Array(n * width);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = x.subarray(i * width, (i + 1) * width);
    for (let j = 0; j < width; j++)
      r[j] = missingColumns.includes(j) && rng.next() < missing ? Number.NaN : rng.normal();
    y[i] = label(r, rng);
  }
  return { x, y, width };
}

const bernoulli = (rng: Rng, z: number): number => (rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0);
/** Interactions, a step and a missing-aware term: what trees are for. */
const nonlinear: Label = (r, rng) => {
  const a = Number.isNaN(r[4] as number) ? 1 : (r[4] as number);
  const [x0, x1, x2, x3, , x5] = r as unknown as number[];
  return bernoulli(
    rng,
    -0.5 +
      1.5 * (x0 as number) * (x1 as number) +
      ((x2 as number) > 0.5 ? 1.5 : 0) -
      0.8 * (x3 as number) +
      0.7 * a +
      Math.sin(2 * (x5 as number)),
  );
};

const quick: GbdtParams = { ...DEFAULT_GBDT_PARAMS, trees: 60, patience: 0, classWeighting: false };
const none = new Float32Array(0);
const fitRows = (
  d: { x: Float32Array; y: Float32Array; width: number },
  p: GbdtParams,
  val = { x: none, y: none },
) => fitGbdtDetailed({ x: d.x, y: d.y, valX: val.x, valY: val.y, width: d.width }, p);

const dir = mkdtempSync(path.join(os.tmpdir(), 'gbdt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gradient-boosted trees', () => {
  it('learns an XOR interaction that a logistic regression cannot', () => {
    const xor: Label = (r, rng) => ((r[0] as number) * (r[1] as number) > 0 !== rng.next() < 0.1 ? 1 : 0);
    const train = rows(3000, 6, 1, xor);
    const holdout = rows(2000, 6, 2, xor);
    const trees = rocAuc(scoreGbdt(fitRows(train, quick).model, holdout.x, 6), holdout.y);
    const linear = fitLogisticExact(train.x, train.y, 6, { l2: 0.001, classWeighting: false });
    const z = Array.from(holdout.y, (_, i) =>
      linear.weights.reduce((s, w, j) => s + w * (holdout.x[i * 6 + j] as number), linear.intercept),
    );
    const logistic = rocAuc(z, holdout.y);
    console.log(`XOR holdout ROC AUC: trees ${trees.toFixed(4)}, logistic ${logistic.toFixed(4)}`);
    expect(trees).toBeGreaterThan(0.85);
    expect(logistic).toBeLessThan(0.6);
  });

  it.each([
    { missingLike: 'high values', rate: 0.9, missingLeft: false },
    { missingLike: 'low values', rate: 0.1, missingLeft: true },
  ])('routes missing values with the $missingLike they behave like', ({ rate, missingLeft }) => {
    // Column 0 drives the label upwards; its missing rows are positive at `rate`.
    const label: Label = (r, rng) =>
      Number.isNaN(r[0] as number) ? (rng.next() < rate ? 1 : 0) : bernoulli(rng, 3 * (r[0] as number));
    const train = rows(4000, 2, 3, label, [0], 0.25);
    const { model } = fitRows(train, { ...quick, trees: 40 });
    const root = model.trees[0] as GbdtModel['trees'][number];
    expect(root.feature[0]).toBe(0);
    expect(root.missingLeft[0]).toBe(missingLeft);
    const predict = compileGbdt(model);
    const p = predict(Float32Array.of(Number.NaN, 0));
    expect(Math.abs(p - rate)).toBeLessThan(0.05);
    // A missing value is not scored as the middle value would be.
    expect(Math.abs(p - predict(Float32Array.of(0, 0)))).toBeGreaterThan(0.3);
  });

  it('holds the score monotone in a constrained column, where the unconstrained trees are not', () => {
    // Risk rises with column 0 overall but dips in the middle (a bump the data really has), and
    // column 1 interacts with it: unconstrained trees learn the dip, constrained ones may not.
    const bumpy: Label = (r, rng) => {
      const a = r[0] as number;
      return bernoulli(rng, 1.2 * a - 2.5 * Math.exp(-4 * a * a) + 0.8 * a * (r[1] as number));
    };
    const train = rows(6000, 3, 9, bumpy);
    const holdout = rows(3000, 3, 10, bumpy);
    const signs = [1, 0, -1];
    const fitted = (constrained: boolean) =>
      fitGbdt(
        { x: train.x, y: train.y, valX: none, valY: none, width: 3 },
        quick,
        undefined,
        constrained ? signs : undefined,
      ).model;
    // The score along each constrained column, every other column held at a grid of values.
    const violations = (model: GbdtModel): number => {
      const predict = compileGbdt(model);
      let count = 0;
      const x = new Float32Array(3);
      for (const column of [0, 2])
        for (const b of [-1.5, -0.5, 0, 0.5, 1.5])
          for (const c of [-1, 0, 1]) {
            let previous = Number.NaN;
            for (let v = -3; v <= 3; v += 0.05) {
              x[column] = v;
              x[column === 0 ? 1 : 0] = b;
              x[column === 0 ? 2 : 1] = c;
              const p = predict(x);
              const sign = signs[column] as number;
              if (!Number.isNaN(previous) && sign * (p - previous) < -1e-12) count++;
              previous = p;
            }
          }
      return count;
    };
    const free = fitted(false);
    const held = fitted(true);
    expect(violations(free)).toBeGreaterThan(0);
    expect(violations(held)).toBe(0);
    const auc = (m: GbdtModel) => rocAuc(scoreGbdt(m, holdout.x, 3), holdout.y);
    console.log(`monotone: holdout ROC AUC free ${auc(free).toFixed(4)}, held ${auc(held).toFixed(4)}`);
    expect(auc(held)).toBeGreaterThan(0.6);
    expect(() =>
      fitGbdt({ x: train.x, y: train.y, valX: none, valY: none, width: 3 }, quick, undefined, [1, 0]),
    ).toThrow(/2 monotone signs for 3 columns/);
  });

  it('is deterministic for a seed, and subsampling with another seed gives another model', () => {
    const train = rows(2000, 8, 4, nonlinear, [4], 0.1);
    const p = { ...quick, trees: 20, subsample: 0.7, colsample: 0.6 };
    const a = JSON.stringify(fitRows(train, p).model);
    expect(JSON.stringify(fitRows({ ...train, x: Float32Array.from(train.x) }, p).model)).toBe(a);
    expect(JSON.stringify(fitRows(train, { ...p, seed: 8 }).model)).not.toBe(a);
    // Without subsampling the seed draws nothing.
    const full = { ...quick, trees: 5 };
    expect(JSON.stringify(fitRows(train, { ...full, seed: 8 }).model)).toBe(
      JSON.stringify(fitRows(train, full).model),
    );
  });

  it('stops early and keeps the trees of the best validation loss', () => {
    // A weak signal and a high learning rate: the validation loss turns up after a few trees.
    const weak: Label = (r, rng) => bernoulli(rng, 0.4 * (r[0] as number));
    const train = rows(1500, 5, 5, weak);
    const val = rows(800, 5, 6, weak);
    const p = { ...quick, trees: 300, learningRate: 0.5, patience: 4 };
    const seen: GbdtIteration[] = [];
    const data = { x: train.x, y: train.y, valX: val.x, valY: val.y, width: 5 };
    const result = fitGbdt(data, p, (m) => seen.push(m));
    const losses = seen.map((m) => m.valLoss);
    const best = losses.indexOf(Math.min(...losses)) + 1;
    expect(result.iterationsRun).toBeLessThan(300);
    expect(result.iterationsRun).toBe(seen.length);
    expect(result.bestIteration).toBe(best);
    expect(result.iterationsRun).toBe(best + 4);
    expect(result.model.trees).toHaveLength(best);
    // The kept trees are the best iteration's: rescoring gives its validation loss.
    const margin = compileGbdtMargin(result.model);
    const margins = Float64Array.from(val.y, (_, i) => margin(val.x, i * 5));
    let loss = 0;
    for (let i = 0; i < val.y.length; i++) {
      const z = margins[i] as number;
      loss += Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0) - (val.y[i] as number) * z;
    }
    expect(loss / val.y.length).toBeCloseTo(losses[best - 1] as number, 10);
    expect(rocAuc(margins, val.y)).toBe(seen[best - 1]?.valRocAuc);
    // And the training margins handed back are those of the kept trees.
    const detailed = fitGbdtDetailed(data, p);
    for (let i = 0; i < 200; i++) expect(margin(train.x, i * 5)).toBe(detailed.trainMargin[i]);
  });

  it('scores every training row through the saved thresholds exactly as training did (no skew)', () => {
    const train = rows(3000, 8, 7, nonlinear, [4, 6], 0.15);
    // Subsampling too: rows a tree did not see are placed by their bins, not by the partition.
    const result = fitRows(train, { ...quick, trees: 30, subsample: 0.8, colsample: 0.75, maxBins: 32 });
    const margin = compileGbdtMargin(result.model);
    const predict = compileGbdt(result.model);
    let differ = 0;
    for (let i = 0; i < 3000; i++) {
      const row = train.x.subarray(i * 8, (i + 1) * 8);
      if (margin(row) !== result.trainMargin[i]) differ++;
      if (predict(row) !== sigmoid(result.trainMargin[i] as number)) differ++;
    }
    expect(differ).toBe(0);
  });

  it('round-trips through JSON and scores the same through scoreGbdt and compileGbdt', () => {
    const train = rows(2000, 8, 9, nonlinear, [4], 0.1);
    const holdout = rows(500, 8, 10, nonlinear, [4], 0.1);
    const { model } = fitRows(train, { ...quick, trees: 25 });
    const copy = parseGbdtModel(JSON.parse(JSON.stringify(model)));
    const scores = scoreGbdt(model, holdout.x, 8);
    expect(scoreGbdt(copy, holdout.x, 8)).toEqual(scores);
    const predict = compileGbdt(copy);
    const compiled = Float32Array.from({ length: 500 }, (_, i) =>
      predict(holdout.x.subarray(i * 8, (i + 1) * 8)),
    );
    expect(compiled).toEqual(scores);
    expect(() => scoreGbdt(model, holdout.x, 7)).toThrow(/takes 8 columns, the rows have 7/);
  });

  describe('parseGbdtModel refuses a broken model, naming what is wrong', () => {
    const train = rows(500, 6, 11, nonlinear);
    const { model } = fitRows(train, { ...quick, trees: 2, maxLeaves: 4 });
    const broken = (edit: (t: GbdtModel['trees'][number]) => void): unknown => {
      const copy = structuredClone(model);
      edit(copy.trees[1] as GbdtModel['trees'][number]);
      return copy;
    };
    it.each([
      [
        'a feature index past the columns',
        broken((t) => {
          t.feature[0] = 6;
        }),
        /trees\[1\] node 0: feature index 6 is not/,
      ],
      [
        'a dangling child',
        broken((t) => {
          t.right[0] = 99;
        }),
        /trees\[1\] node 0: right child 99 is not a node after it/,
      ],
      [
        'a child pointing back',
        broken((t) => {
          t.left[0] = 0;
        }),
        /left child 0 is not a node after it/,
      ],
      [
        'a non-finite threshold',
        broken((t) => {
          t.threshold[0] = Number.POSITIVE_INFINITY;
        }),
        /node 0: threshold Infinity is not a finite number/,
      ],
      [
        'a NaN leaf value',
        broken((t) => {
          t.value[t.value.length - 1] = Number.NaN;
        }),
        /value NaN is not a finite number/,
      ],
      [
        'arrays of different lengths',
        broken((t) => {
          t.missingLeft.pop();
        }),
        /trees\[1\].missingLeft: expected an array of \d+ entries/,
      ],
      ['another format', { ...model, format: 'xgboost' }, /format: expected 'driftwood-gbdt', got "xgboost"/],
    ])('%s', (_, json, message) => {
      expect(() => parseGbdtModel(json)).toThrow(message);
      try {
        parseGbdtModel(json);
      } catch (e) {
        expect((e as { code: string }).code).toBe('MODEL_INVALID');
      }
    });
    it('accepts the model itself', () => {
      expect(parseGbdtModel(JSON.parse(JSON.stringify(model)))).toEqual(model);
    });
  });

  it.each([
    [{ maxBins: 256 }, 'model parameter maxBins: expected a whole number in 2..255, got 256'],
    [{ learningRate: 0 }, 'model parameter learningRate: expected a number in (0, 1], got 0'],
    [{ maxLeaves: 1 }, 'model parameter maxLeaves: expected a whole number ≥ 2, got 1'],
    [{ subsample: 1.5 }, 'model parameter subsample: expected a number in (0, 1], got 1.5'],
    [{ l2: -1 }, 'model parameter l2: expected a finite number ≥ 0, got -1'],
    [{ trees: 2.5 }, 'model parameter trees: expected a whole number ≥ 1, got 2.5'],
  ])('validateGbdtParams names a bad parameter: %o', (change, message) => {
    expect(() => validateGbdtParams({ ...DEFAULT_GBDT_PARAMS, ...change })).toThrow(message);
    expect(validateGbdtParams(DEFAULT_GBDT_PARAMS)).toBe(DEFAULT_GBDT_PARAMS);
  });

  it('refuses infinite inputs and labels other than 0 and 1', () => {
    const train = rows(100, 6, 12, nonlinear);
    train.x[19] = Number.POSITIVE_INFINITY;
    expect(() => fitRows(train, quick)).toThrow(
      'training row 3 column 1 is Infinity; use NaN for a missing value',
    );
    train.x[19] = 0;
    train.y[5] = 2;
    expect(() => fitRows(train, quick)).toThrow('label y[5] is 2, expected 0 or 1');
  });
});

// scikit-learn's HistGradientBoostingClassifier on the very rows (as JSON; NaN as null), one fit per
// parameter set, in one process (importing scikit-learn is the slow part).
const SKLEARN = `
import json, sys
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

doc = json.load(open(sys.argv[1]))
w = doc["width"]
def matrix(v):
    return np.asarray([np.nan if a is None else a for a in v], dtype=np.float64).reshape(-1, w)
x, hx = matrix(doc["x"]), matrix(doc["hx"])
aucs = []
for p in doc["params"]:
    m = HistGradientBoostingClassifier(max_iter=p["trees"], learning_rate=p["learningRate"],
        max_leaf_nodes=p["maxLeaves"], min_samples_leaf=p["minLeaf"], l2_regularization=p["l2"],
        max_bins=p["maxBins"], early_stopping=False, random_state=0)
    m.fit(x, np.asarray(doc["y"], dtype=np.int64))
    aucs.append(roc_auc_score(doc["hy"], m.predict_proba(hx)[:, 1]))
print(json.dumps(aucs))
`;

describe('against scikit-learn HistGradientBoostingClassifier', () => {
  const width = 8;
  const train = rows(5000, width, 13, nonlinear, [4, 7], 0.1);
  const holdout = rows(3000, width, 14, nonlinear, [4, 7], 0.1);
  const cases: Partial<GbdtParams>[] = [
    { trees: 100 },
    { trees: 150, learningRate: 0.05, maxLeaves: 15, minLeaf: 5, l2: 1, maxBins: 32 },
  ];
  const params = cases.map((c) => ({ ...DEFAULT_GBDT_PARAMS, ...c, patience: 0, classWeighting: false }));
  let theirs: number[] = [];
  beforeAll(() => {
    const file = path.join(dir, 'rows.json');
    const json = (a: Float32Array) => Array.from(a, (v) => (Number.isNaN(v) ? null : v));
    const doc = {
      params,
      width,
      x: json(train.x),
      y: Array.from(train.y),
      hx: json(holdout.x),
      hy: Array.from(holdout.y),
    };
    writeFileSync(file, JSON.stringify(doc));
    // One thread: OpenMP's spinning threads take seconds per fit on a busy two-core machine.
    const env = { ...process.env, OMP_NUM_THREADS: '1' };
    const res = spawnSync(PYTHON, ['-c', SKLEARN, file], { encoding: 'utf8', env });
    if (res.status !== 0) throw new Error(`scikit-learn reference failed: ${res.stderr}`);
    theirs = JSON.parse(res.stdout) as number[];
  });

  it.each(cases.map((c, k) => [c, k] as const))(
    'reaches its holdout ROC AUC within 0.01 with the same parameters: %o',
    (change, k) => {
      const ours = rocAuc(
        scoreGbdt(fitRows(train, params[k] as GbdtParams).model, holdout.x, width),
        holdout.y,
      );
      const sk = theirs[k] as number;
      console.log(
        `${JSON.stringify(change)}: holdout ROC AUC driftwood ${ours.toFixed(4)}, scikit-learn HGB ${sk.toFixed(4)}`,
      );
      expect(ours).toBeGreaterThan(0.75);
      expect(Math.abs(ours - sk)).toBeLessThan(0.01);
    },
  );
});
