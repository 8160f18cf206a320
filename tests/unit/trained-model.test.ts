import { describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_PARAMS, type ModelKind, withDefaults } from '../../tasks/src/models/params.js';
import { initTf } from '../../tasks/src/models/tf.js';
import { loadScorer, trainModel } from '../../tasks/src/models/trained-model.js';
import { Rng } from '../../tasks/src/random.js';

/** Rows whose label rises with column 0 and falls with column 1, plus a free column. */
function rows(n: number, seed: number) {
  const rng = new Rng(seed);
  const width = 3;
  const x = new Float32Array(n * width);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < width; j++) x[i * width + j] = rng.normal();
    const z = 1.2 * (x[i * width] as number) - 0.8 * (x[i * width + 1] as number) - 1;
    y[i] = rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  }
  return { x, y, width };
}

/**
 * The seam every model kind goes through: what training measures (scores) is, number for number,
 * what the one-row path serving takes answers; and the saved files load back into that same path.
 */
describe.each<ModelKind>(['logistic', 'mlp', 'gbdt'])('a trained %s', (kind) => {
  it('scores a matrix exactly as serving scores its rows, and reloads from its files unchanged', async () => {
    await initTf();
    const train = rows(1500, 1);
    const val = rows(400, 2);
    const params = withDefaults({ kind, epochs: 5, ...(kind === 'gbdt' ? { trees: 30 } : {}) });
    const model = await trainModel(
      { x: train.x, y: train.y, valX: val.x, valY: val.y, width: 3 },
      params,
      undefined,
      [1, -1, 0],
    );
    try {
      const scores = model.scores(val.x);
      expect(scores).toBeInstanceOf(Float64Array);
      expect(scores).toHaveLength(400);
      const files = await model.files();
      const loaded = await loadScorer(kind, 'test', async (name) => {
        const f = files[name];
        if (f === undefined) throw new Error(`no file ${name}`);
        return Buffer.isBuffer(f) ? f : Buffer.from(f);
      });
      expect(loaded.width).toBe(3);
      for (let i = 0; i < 400; i++) {
        const row = val.x.subarray(i * 3, (i + 1) * 3);
        expect(scores[i]).toBe(model.scoreOne(row));
        expect(loaded.scoreOne(row)).toBe(scores[i]);
      }
      loaded.dispose();
    } finally {
      model.dispose();
    }
  });
});

it('gives the trees their own defaults when the kind is gbdt', () => {
  const p = withDefaults({ kind: 'gbdt' });
  expect(p.learningRate).toBe(0.1);
  expect(withDefaults({ kind: 'gbdt', learningRate: 0.3 }).learningRate).toBe(0.3);
  expect(withDefaults({}).learningRate).toBe(DEFAULT_MODEL_PARAMS.learningRate);
});
