import { beforeAll, describe, expect, it } from 'vitest';
import { churnSigns } from '../../tasks/src/datasets/churn/directions.js';
import {
  balancedClassWeights,
  DEFAULT_MODEL_PARAMS,
  type EpochMetrics,
  type ModelParams,
  predictScores,
  trainClassifier,
  validateModelParams,
} from '../../tasks/src/models/classifier.js';
import { compileDenseChain } from '../../tasks/src/models/dense-fast-path.js';
import { rocAuc } from '../../tasks/src/models/metrics.js';
import { initTf } from '../../tasks/src/models/tf.js';
import { Rng } from '../../tasks/src/random.js';

/** Rows whose label depends on the first two columns (plus noise); churners are ~15%. */
function synthetic(n: number, seed: number, width = 6) {
  const rng = new Rng(seed);
  const x = new Float32Array(n * width);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < width; j++) x[i * width + j] = rng.normal();
    const z = 1.8 * (x[i * width] as number) - 1.2 * (x[i * width + 1] as number) - 2 + rng.normal(0, 0.5);
    y[i] = z > 0 ? 1 : 0;
  }
  return { x, y, width };
}

const train = synthetic(800, 1);
const val = synthetic(300, 2);
const test = synthetic(400, 3);
const data = { x: train.x, y: train.y, valX: val.x, valY: val.y, width: train.width };

async function trainOn(p: Partial<ModelParams>) {
  const epochs: EpochMetrics[] = [];
  const trained = await trainClassifier(data, { ...DEFAULT_MODEL_PARAMS, epochs: 15, ...p }, (m) =>
    epochs.push(m),
  );
  const scores = predictScores(trained.model, test.x, test.width);
  const weights = trained.model.getWeights().map((w) => Array.from(w.dataSync()));
  return { trained, epochs, scores, auc: rocAuc(scores, test.y), weights };
}

describe('TF.js classifiers', () => {
  beforeAll(async () => {
    process.env.DRIFTWOOD_TF_BACKEND = 'wasm';
    await initTf();
  });

  it.each(['logistic', 'mlp'] as const)(
    '%s learns: training loss drops and test ROC AUC is high',
    async (kind) => {
      const r = await trainOn({ kind, patience: 0 });
      expect(r.epochs).toHaveLength(15);
      expect((r.epochs.at(-1) as EpochMetrics).loss).toBeLessThan((r.epochs[0] as EpochMetrics).loss);
      expect(r.auc).toBeGreaterThan(0.9);
      r.trained.model.dispose();
    },
  );

  it.each(['logistic', 'mlp'] as const)(
    '%s: the same data and seed give the same weights and scores',
    async (kind) => {
      const a = await trainOn({ kind, seed: 11 });
      const b = await trainOn({ kind, seed: 11 });
      expect(b.weights).toEqual(a.weights);
      expect(Array.from(b.scores)).toEqual(Array.from(a.scores));
      const c = await trainOn({ kind, seed: 12 });
      expect(c.weights).not.toEqual(a.weights);
      for (const r of [a, b, c]) r.trained.model.dispose();
    },
  );

  it('builds an MLP with the hidden widths asked for, which the typed-array fast path runs', async () => {
    const r = await trainOn({ kind: 'mlp', hiddenUnits: [8, 4], epochs: 2, patience: 0 });
    const dense = r.trained.model.layers.map((l) => (l.getConfig() as { units: number }).units);
    expect(dense).toEqual([8, 4, 1]);
    const fast = compileDenseChain(r.trained.model);
    expect(fast).toBeDefined();
    for (let i = 0; i < 20; i++) {
      const row = test.x.subarray(i * test.width, (i + 1) * test.width);
      expect(
        Math.abs(((fast as (v: Float32Array) => Float32Array)(row)[0] as number) - (r.scores[i] as number)),
      ).toBeLessThan(1e-5);
    }
    r.trained.model.dispose();
  });

  it('stops early when validation ROC AUC stops improving, keeping the best epoch', async () => {
    const r = await trainOn({ epochs: 200, patience: 3, learningRate: 0.1 });
    expect(r.trained.epochsRun).toBeLessThan(200);
    expect(r.trained.epochsRun - 1 - r.trained.bestEpoch).toBe(3);
    const best = Math.max(...r.epochs.map((e) => e.valRocAuc));
    expect((r.epochs[r.trained.bestEpoch] as EpochMetrics).valRocAuc).toBeGreaterThan(best - 1e-4 - 1e-12);
    // The model keeps the best epoch's weights: its validation AUC is that epoch's.
    const valAuc = rocAuc(predictScores(r.trained.model, val.x, val.width), val.y);
    expect(valAuc).toBeCloseTo((r.epochs[r.trained.bestEpoch] as EpochMetrics).valRocAuc, 6);
    r.trained.model.dispose();
  });

  it('holds the logistic regression to the given signs, and leaves free columns free', async () => {
    // Column 0 raises the label and column 1 lowers it; the signs say the opposite for both.
    const signs = [-1, 1, 0, 0, 0, 0];
    const t = await trainClassifier(
      data,
      { ...DEFAULT_MODEL_PARAMS, epochs: 10, patience: 0 },
      undefined,
      signs,
    );
    const kernel = Array.from(t.model.getWeights()[0]?.dataSync() ?? []);
    expect(kernel[0]).toBeLessThanOrEqual(0);
    expect(kernel[1]).toBeGreaterThanOrEqual(0);
    const free = await trainClassifier(
      data,
      { ...DEFAULT_MODEL_PARAMS, epochs: 10, patience: 0 },
      undefined,
      [0, 0, 0, 0, 0, 0],
    );
    const freeKernel = Array.from(free.model.getWeights()[0]?.dataSync() ?? []);
    expect(freeKernel[0]).toBeGreaterThan(0.5);
    expect(freeKernel[1]).toBeLessThan(-0.5);
    const off = await trainClassifier(
      data,
      { ...DEFAULT_MODEL_PARAMS, epochs: 10, patience: 0, monotonic: false },
      undefined,
      signs,
    );
    expect(Array.from(off.model.getWeights()[0]?.dataSync() ?? [])).toEqual(freeKernel);
    for (const m of [t, free, off]) m.model.dispose();
  });

  it('maps churn features to their known directions', () => {
    expect(
      Array.from(
        churnSigns([
          'payment_failures_30d',
          'tickets_7d',
          'sessions_3d',
          'minutes_90d',
          'session_rate_trend',
          'hours_since_last_session',
          'sessions_3d__missing',
          'plan=basic',
        ]),
      ),
    ).toEqual([1, 1, -1, -1, -1, 0, 0, 0]);
  });

  it('weights the classes inversely to their frequency', () => {
    expect(balancedClassWeights([0, 0, 0, 1])).toEqual({ 0: 4 / 6, 1: 2 });
    expect(balancedClassWeights([1, 1])).toBeUndefined();
  });

  it('class weighting raises the scores of the rare class', async () => {
    const weighted = await trainOn({ patience: 0, classWeighting: true });
    const plain = await trainOn({ patience: 0, classWeighting: false });
    const mean = (s: Float32Array) => s.reduce((a, b) => a + b, 0) / s.length;
    expect(mean(weighted.scores)).toBeGreaterThan(mean(plain.scores));
    weighted.trained.model.dispose();
    plain.trained.model.dispose();
  });

  it.each([
    [{ epochs: 0 }, /epochs: expected a whole number ≥ 1, got 0/],
    [{ learningRate: -1 }, /learningRate/],
    [{ kind: 'tree' }, /kind: expected logistic or mlp or gbdt, got tree/],
    [{ kind: 'mlp', hiddenUnits: [] }, /hiddenUnits/],
    [{ patience: 1.5 }, /patience/],
    [{ kind: 'gbdt', maxBins: 300 }, /maxBins: expected a whole number in 2\.\.255, got 300/],
    [{ kind: 'gbdt', subsample: 0 }, /subsample/],
    [{ kind: 'gbdt', solver: 'exact' }, /solver: expected 'adam' for gbdt/],
  ])('rejects %j naming the parameter', (bad, message) => {
    expect(() => validateModelParams({ ...DEFAULT_MODEL_PARAMS, ...bad } as ModelParams)).toThrow(message);
  });

  it('leaves the trees parameters to the trees: a logistic regression with maxBins 300 is fine', () => {
    expect(validateModelParams({ ...DEFAULT_MODEL_PARAMS, maxBins: 300 }).kind).toBe('logistic');
  });
});
