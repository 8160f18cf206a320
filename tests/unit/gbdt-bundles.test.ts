import { describe, expect, it } from 'vitest';
import { DEFAULT_GBDT_PARAMS, fitGbdtDetailed, type GbdtParams } from '../../tasks/src/models/gbdt.js';
import { binRows } from '../../tasks/src/models/gbdt-bins.js';
import { bundleColumns } from '../../tasks/src/models/gbdt-bundles.js';
import { Rng } from '../../tasks/src/random.js';

const LEVELS = [6, 4];
/** Columns: 0 dense, 1 dense with 10 % missing, 2 missing in 70 % of rows, then each categorical one-hot. */
const DENSE = 3;
const WIDTH = DENSE + LEVELS.reduce((a, b) => a + b, 0);
/** The one-hot columns of categorical k. */
const oneHot = (k: number): number[] => {
  const from = DENSE + LEVELS.slice(0, k).reduce((a, b) => a + b, 0);
  return Array.from({ length: LEVELS[k] as number }, (_, l) => from + l);
};

/** Dense, missing-heavy and one-hot columns (a categorical's missing level: all its columns 0). */
function dataset(n: number, seed: number) {
  const rng = new Rng(seed);
  const x = new Float32Array(n * WIDTH);
  const y = new Float32Array(n);
  const effect = [0.9, -0.7, 0.4, -1.2, 0, 1.1];
  for (let i = 0; i < n; i++) {
    const r = x.subarray(i * WIDTH, (i + 1) * WIDTH);
    r[0] = rng.normal();
    r[1] = rng.next() < 0.1 ? Number.NaN : rng.normal();
    r[2] = rng.next() < 0.7 ? Number.NaN : rng.normal();
    let z = 0.8 * (r[0] as number) + (Number.isNaN(r[1] as number) ? 0.5 : -0.4 * (r[1] as number));
    LEVELS.forEach((levels, k) => {
      const level = Math.floor(rng.next() * levels);
      if (rng.next() < 0.05) return; // missing: no column set
      r[oneHot(k)[level] as number] = 1;
      z += k === 0 ? (effect[level] as number) : 0.3 * level;
    });
    y[i] = rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  }
  return { x, y };
}

const offsetsOf = (bins: Int32Array): { offsets: Int32Array; slots: number } => {
  const offsets = new Int32Array(bins.length);
  let slots = 0;
  bins.forEach((b, f) => {
    offsets[f] = slots;
    slots += b + 1;
  });
  return { offsets, slots };
};

describe('exclusive feature bundling', () => {
  it("bundles each categorical's one-hot columns and leaves the others on their own", () => {
    const n = 2000;
    const { x } = dataset(n, 1);
    const binned = binRows(x, n, WIDTH, 255);
    const { offsets, slots } = offsetsOf(binned.bins);
    const b = bundleColumns(binned, n, offsets, slots);
    const groups = b.columns.map((c) => c.features);
    expect(groups).toEqual([[0], [1], [2], oneHot(0), oneHot(1)]);
    // Each row's bundle code sends it to the slot of the one column off its usual code, if any.
    const wrong: string[] = [];
    for (const column of b.columns.filter((c) => c.slot)) {
      const slot = column.slot as Int32Array;
      for (let i = 0; i < n; i++) {
        const off = column.features.filter((f) => binned.codes[f * n + i] !== b.defaults[f]);
        const f = off[0];
        const want =
          f === undefined ? slots * 3 : ((offsets[f] as number) + (binned.codes[f * n + i] as number)) * 3;
        if (off.length > 1 || slot[column.codes[i] as number] !== want) wrong.push(`row ${i}: ${off}`);
      }
    }
    expect(wrong).toEqual([]);
    // Off, every column is its own pass.
    const single = bundleColumns(binned, n, offsets, slots, false);
    expect(single.columns.map((c) => c.features)).toEqual(Array.from({ length: WIDTH }, (_, f) => [f]));
  });

  it('does not bundle two sparse columns that are ever off their usual code in the same row', () => {
    const n = 1000;
    const x = new Float32Array(n * 3);
    // Columns 0 and 1 are exclusive; column 2 is non-zero in one row where column 0 is too.
    for (let i = 0; i < n; i++) {
      if (i % 10 === 0) x[i * 3] = 1;
      if (i % 10 === 5) x[i * 3 + 1] = 2;
    }
    x[30 * 3 + 2] = 1;
    const binned = binRows(x, n, 3, 255);
    const { offsets, slots } = offsetsOf(binned.bins);
    const groups = bundleColumns(binned, n, offsets, slots).columns.map((c) => c.features);
    expect(groups).toEqual([[0, 1], [2]]);
  });

  const quick: GbdtParams = { ...DEFAULT_GBDT_PARAMS, trees: 30, patience: 5 };
  it.each([
    { name: 'defaults, class-weighted, early stopping', p: quick, signs: undefined },
    {
      name: 'row and column subsampling, a monotone column, L2, 16 bins',
      p: { ...quick, subsample: 0.7, colsample: 0.6, l2: 1, maxBins: 16, seed: 3 },
      signs: [1, 0, 0, ...Array.from({ length: WIDTH - DENSE }, () => 0)],
    },
    {
      name: 'depth-limited, few rows a leaf, no class weights',
      p: { ...quick, maxDepth: 3, minLeaf: 3, classWeighting: false, colsample: 0.4, seed: 11 },
      signs: undefined,
    },
  ])('fits the very same trees bundled as with a pass per column: $name', ({ p, signs }) => {
    const train = dataset(2000, 2);
    const val = dataset(600, 3);
    const data = { x: train.x, y: train.y, valX: val.x, valY: val.y, width: WIDTH };
    const bundled = fitGbdtDetailed(data, p, undefined, signs, { bundle: true });
    const single = fitGbdtDetailed(data, p, undefined, signs, { bundle: false });
    expect(JSON.stringify(bundled.model)).toBe(JSON.stringify(single.model));
    expect(Array.from(bundled.trainMargin)).toEqual(Array.from(single.trainMargin));
    expect(bundled.iterationsRun).toBe(single.iterationsRun);
    // Not vacuous: the trees do split on bundled one-hot columns.
    const split = new Set(bundled.model.trees.flatMap((t) => t.feature.filter((f) => f >= DENSE)));
    expect(split.size).toBeGreaterThan(1);
  });
});
