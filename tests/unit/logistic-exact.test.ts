import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_PARAMS, predictScores, trainClassifier } from '../../tasks/src/models/classifier.js';
import { compileDenseChain } from '../../tasks/src/models/dense-fast-path.js';
import {
  type ExactLogisticOptions,
  fitLogisticExact,
  logisticObjective,
  sklearnC,
} from '../../tasks/src/models/logistic-exact.js';
import { validateModelParams } from '../../tasks/src/models/params.js';
import { initTf } from '../../tasks/src/models/tf.js';
import { Rng } from '../../tasks/src/random.js';
import { modelParamsFromFlags } from '../../tasks/src/train/cli-options.js';
import { ROOT } from '../support/env.js';

const PYTHON = path.join(ROOT, '.venvs', 'mlflow', 'bin', 'python');

/**
 * Correlated columns on different scales, one-hot-like 0/1 columns, a rare positive class (~20%):
 * the label follows a logistic model whose weights have mixed signs.
 */
function generated(n: number, width: number, seed: number) {
  const rng = new Rng(seed);
  const x = new Float32Array(n * width);
  const y = new Float32Array(n);
  const truth = Array.from(
    { length: width },
    (_, j) => (j % 3 === 0 ? 1.2 : j % 3 === 1 ? -0.8 : 0.3) / (1 + j / 4),
  );
  for (let i = 0; i < n; i++) {
    const shared = rng.normal();
    let z = -1.6;
    for (let j = 0; j < width; j++) {
      const v =
        j % 4 === 3 ? (rng.next() < 0.3 ? 1 : 0) : (0.6 * rng.normal() + 0.4 * shared) * (1 + (j % 3));
      x[i * width + j] = v;
      z += (truth[j] as number) * v;
    }
    y[i] = rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  }
  return { x, y, width };
}

// The references, computed by scikit-learn and SciPy themselves on the very rows (as JSON).
const REFERENCE = `
import json, sys
import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

doc = json.load(open(sys.argv[1]))
x = np.asarray(doc["x"], dtype=np.float64).reshape(-1, doc["width"])
y = np.asarray(doc["y"], dtype=np.int64)
n, d = x.shape
out = {}
if doc["task"] == "sklearn":
    m = LogisticRegression(C=doc["C"], class_weight="balanced" if doc["balanced"] else None,
                           solver="lbfgs", tol=1e-12, max_iter=100000)
    m.fit(x, y)
    out = {"weights": m.coef_[0].tolist(), "intercept": float(m.intercept_[0]), "iterations": int(m.n_iter_[0])}
else:
    # The same objective as Driftwood's (mean weighted loss + l2*|w|^2), minimised by L-BFGS-B
    # under the sign bounds.
    s = np.ones(n)
    if doc["balanced"]:
        pos = y.sum()
        s = np.where(y == 1, n / (2 * pos), n / (2 * (n - pos)))
    l2 = doc["l2"]
    def f(t):
        z = x @ t[:d] + t[d]
        p = 1 / (1 + np.exp(-z))
        loss = (s * (np.logaddexp(0, z) - y * z)).sum() / n + l2 * (t[:d] ** 2).sum()
        r = s * (p - y) / n
        return loss, np.concatenate([x.T @ r + 2 * l2 * t[:d], [r.sum()]])
    bounds = [((0, None) if g > 0 else (None, 0) if g < 0 else (None, None)) for g in doc["signs"]] + [(None, None)]
    res = minimize(f, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 100000})
    out = {"weights": res.x[:d].tolist(), "intercept": float(res.x[d]), "iterations": int(res.nit)}
print(json.dumps(out))
`;

const dir = mkdtempSync(path.join(os.tmpdir(), 'logistic-exact-'));
let calls = 0;
function reference(
  task: 'sklearn' | 'lbfgsb',
  data: { x: Float32Array; y: Float32Array; width: number },
  extra: Record<string, unknown>,
): { weights: number[]; intercept: number; iterations: number } {
  const file = path.join(dir, `data-${calls++}.json`);
  writeFileSync(
    file,
    JSON.stringify({ task, width: data.width, x: Array.from(data.x), y: Array.from(data.y), ...extra }),
  );
  const res = spawnSync(PYTHON, ['-c', REFERENCE, file], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`reference fit failed: ${res.stderr}`);
  return JSON.parse(res.stdout);
}

/** Weights on the side their sign forbids. */
const wrongSigns = (weights: ArrayLike<number>, signs: ArrayLike<number>) =>
  Array.from(weights).filter((w, j) => w * (signs[j] as number) < 0).length;

const maxGap = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, j) => Math.max(m, Math.abs(v - (b[j] as number))), 0);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('exact logistic regression (projected Newton)', () => {
  const data = generated(3000, 12, 5);

  it.each([
    { l2: 0.001, classWeighting: true },
    { l2: 0.01, classWeighting: false },
    { l2: 0.0001, classWeighting: true },
  ])('equals scikit-learn LogisticRegression (lbfgs, C = 1/(2·l2·n)) within 1e-3: %o', (o) => {
    const fit = fitLogisticExact(data.x, data.y, data.width, o);
    expect(fit.converged).toBe(true);
    expect(fit.gradientNorm).toBeLessThanOrEqual(1e-10);
    expect(fit.iterations).toBeGreaterThan(1);
    expect(fit.iterations).toBeLessThan(30);
    const sk = reference('sklearn', data, { C: sklearnC(o.l2, data.y.length), balanced: o.classWeighting });
    const gap = Math.max(maxGap(fit.weights, sk.weights), Math.abs(fit.intercept - sk.intercept));
    console.log(
      `l2 ${o.l2}, class weights ${o.classWeighting}: max |coef − sklearn| ${gap.toExponential(2)}, ` +
        `${fit.iterations} Newton iterations (sklearn lbfgs ${sk.iterations})`,
    );
    expect(gap).toBeLessThan(1e-3);
    // Not a lucky zero fit: the coefficients are sizeable and of both signs.
    expect(Math.max(...fit.weights)).toBeGreaterThan(0.1);
    expect(Math.min(...fit.weights)).toBeLessThan(-0.1);
  });

  it('converges on one-hot groups collinear with the intercept and an all-zero column', () => {
    // Encoded tabular data looks like this: the slow direction of the fit (the intercept against a
    // one-hot group) is where a loose solver stops short and a noisy line search creeps.
    const rng = new Rng(21);
    const n = 2000;
    const width = 8;
    const x = new Float32Array(n * width);
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const row = i * width;
      for (let j = 0; j < 4; j++) x[row + j] = rng.normal() * (1 + j);
      const plan = rng.int(0, 3);
      x[row + 4 + plan] = 1;
      const z =
        -1 + 0.8 * (x[row] as number) - 0.3 * (x[row + 1] as number) + ([0.5, -0.4, 0][plan] as number);
      y[i] = rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    }
    const o = { l2: 0.001, classWeighting: true };
    const fit = fitLogisticExact(x, y, width, o);
    expect(fit.converged).toBe(true);
    expect(fit.iterations).toBeLessThan(15);
    expect(fit.weights[7]).toBe(0);
    const sk = reference('sklearn', { x, y, width }, { C: sklearnC(o.l2, n), balanced: true });
    const gap = Math.max(maxGap(fit.weights, sk.weights), Math.abs(fit.intercept - sk.intercept));
    console.log(`one-hot: max |coef − sklearn| ${gap.toExponential(2)}, ${fit.iterations} Newton iterations`);
    expect(gap).toBeLessThan(1e-3);
  });

  it('keeps every sign constraint and reaches a loss no higher than L-BFGS-B under the same bounds', () => {
    const o = { l2: 0.001, classWeighting: true };
    const free = fitLogisticExact(data.x, data.y, data.width, o);
    // Constraints that contradict the data on some columns, so that they bind.
    const signs = Array.from(free.weights, (_, j) => (j % 3 === 2 ? 0 : j % 2 === 0 ? 1 : -1));
    expect(wrongSigns(free.weights, signs)).toBeGreaterThanOrEqual(2);

    const fit = fitLogisticExact(data.x, data.y, data.width, { ...o, signs });
    expect(fit.converged).toBe(true);
    expect(wrongSigns(fit.weights, signs)).toBe(0);
    expect(fit.weights.filter((w, j) => w === 0 && signs[j] !== 0).length).toBeGreaterThanOrEqual(1);

    const ref = reference('lbfgsb', data, { l2: o.l2, balanced: true, signs });
    const ours = logisticObjective(data.x, data.y, data.width, fit.weights, fit.intercept, o);
    const theirs = logisticObjective(data.x, data.y, data.width, ref.weights, ref.intercept, o);
    expect(wrongSigns(ref.weights, signs)).toBe(0);
    console.log(
      `signs: loss ${ours} vs L-BFGS-B ${theirs}, max |coef gap| ${maxGap(fit.weights, ref.weights).toExponential(2)}`,
    );
    expect(ours).toBeLessThanOrEqual(theirs + 1e-12);
    expect(maxGap(fit.weights, ref.weights)).toBeLessThan(1e-3);
    // And better than clipping the unconstrained optimum onto the bounds.
    const clipped = Array.from(free.weights, (w, j) => (w * (signs[j] as number) < 0 ? 0 : w));
    expect(ours).toBeLessThan(logisticObjective(data.x, data.y, data.width, clipped, free.intercept, o));
  });

  it('is deterministic: two fits give bit-identical weights', () => {
    const o: ExactLogisticOptions = {
      l2: 0.001,
      classWeighting: true,
      signs: [1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0],
    };
    const a = fitLogisticExact(data.x, data.y, data.width, o);
    const b = fitLogisticExact(Float32Array.from(data.x), Float32Array.from(data.y), data.width, o);
    expect(Buffer.from(b.weights.buffer).equals(Buffer.from(a.weights.buffer))).toBe(true);
    expect(Object.is(a.intercept, b.intercept)).toBe(true);
    expect(a.iterations).toBe(b.iterations);
  });

  it('refuses rows that do not match the width, and signs of the wrong length', () => {
    expect(() => fitLogisticExact(data.x, data.y, 11, { l2: 0, classWeighting: false })).toThrow(/rows × 11/);
    expect(() => fitLogisticExact(data.x, data.y, 12, { l2: 0, classWeighting: false, signs: [1] })).toThrow(
      /1 signs for 12 columns/,
    );
  });
});

describe("solver 'exact' in the classifier", () => {
  const train = generated(1500, 6, 8);
  const val = generated(400, 6, 9);
  const data = { x: train.x, y: train.y, valX: val.x, valY: val.y, width: 6 };
  const params = { ...DEFAULT_MODEL_PARAMS, solver: 'exact' as const };

  beforeAll(async () => {
    process.env.DRIFTWOOD_TF_BACKEND = 'wasm';
    await initTf();
  });

  it('is opt-in: the default solver stays adam', () => {
    expect(DEFAULT_MODEL_PARAMS.solver).toBe('adam');
  });

  it('pours the exact weights into the TF.js model the serving fast path scores', async () => {
    const epochs: number[] = [];
    const trained = await trainClassifier(data, params, (m) => epochs.push(m.loss));
    // Against the data on the first two columns, so that the constraints bind.
    const signs = [-1, 1, 0, 1, -1, 0];
    const fit = fitLogisticExact(train.x, train.y, 6, { l2: params.l2, classWeighting: true });
    const [kernel, bias] = trained.model.getWeights();
    expect(Array.from(kernel?.dataSync() ?? [])).toEqual(Array.from(Float32Array.from(fit.weights)));
    expect(Array.from(bias?.dataSync() ?? [])).toEqual([Math.fround(fit.intercept)]);
    expect(wrongSigns(fit.weights, signs)).toBe(2);
    expect(trained.exact?.iterations).toBe(fit.iterations);
    expect(trained.epochsRun).toBe(fit.iterations);
    expect(epochs).toHaveLength(fit.iterations);
    expect(epochs.at(-1)).toBe(fit.loss);

    const fast = compileDenseChain(trained.model);
    const tfScores = predictScores(trained.model, val.x, 6);
    for (let r = 0; r < 50; r++) {
      const row = val.x.subarray(r * 6, (r + 1) * 6);
      let z = fit.intercept;
      for (let j = 0; j < 6; j++) z += (row[j] as number) * (fit.weights[j] as number);
      const served = (fast as (v: Float32Array) => Float32Array)(row)[0] as number;
      expect(Math.abs(served - (tfScores[r] as number))).toBeLessThan(1e-6);
      expect(Math.abs(served - 1 / (1 + Math.exp(-z)))).toBeLessThan(1e-6);
    }
    trained.model.dispose();

    // The monotone option reaches the solver when signs are given.
    const held = await trainClassifier(data, params, undefined, signs);
    const w = held.model.getWeights()[0]?.dataSync() as Float32Array;
    expect(wrongSigns(w, signs)).toBe(0);
    held.model.dispose();
  });

  it('is chosen by --solver and refused for the mlp', () => {
    expect(modelParamsFromFlags({ solver: 'exact' })).toEqual({ solver: 'exact' });
    expect(() => modelParamsFromFlags({ solver: 'newton' })).toThrow(
      "--solver: expected adam or exact, got 'newton'",
    );
    expect(() => validateModelParams({ ...params, kind: 'mlp' })).toThrow(/solver: expected 'adam' for mlp/);
  });
});
