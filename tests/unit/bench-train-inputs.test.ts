import { describe, expect, it } from 'vitest';
import { generate, missingDataset, type RawDataset, randomSplit } from '../../bench/train/generated.js';
import { families } from '../../bench/train/prepare.js';

/** A tiny raw dataset: x0 with a gap in training and one in the holdout, x1 full, one 3-level column. */
function tiny(): RawDataset {
  const num = [1, 10, Number.NaN, 20, 3, 30, 5, 40, Number.NaN, 50, 100, 60];
  return {
    name: 'tiny',
    description: 'test rows',
    rows: 6,
    numeric: ['x0', 'x1'],
    categorical: [{ name: 'c', levels: 3 }],
    num: Float64Array.from(num),
    cat: Int32Array.from([0, 2, 1, -1, 2, 0]),
    y: Float32Array.from([0, 1, 0, 1, 1, 0]),
  };
}

describe('bench/train inputs', () => {
  it('splits every row into exactly one part, the same way for the same seed', () => {
    const a = randomSplit(1000, 42, 0.2, 0.15);
    const b = randomSplit(1000, 42, 0.2, 0.15);
    expect(a).toEqual(b);
    expect([a.train.length, a.validation.length, a.holdout.length]).toEqual([650, 150, 200]);
    const all = [...a.train, ...a.validation, ...a.holdout].sort((p, q) => p - q);
    expect(all).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(randomSplit(1000, 43, 0.2, 0.15).holdout).not.toEqual(a.holdout);
  });

  it('imputes and scales the linear inputs with training statistics only', () => {
    // Train rows 0, 1, 2, 3; validation 4; holdout 5 (x0 = 100 there must not move the statistics).
    const split = { train: [0, 1, 2, 3], validation: [4], holdout: [5] };
    const { linear, tree, native } = families(tiny(), split);
    expect(linear.columns).toEqual(['x0', 'x0__missing', 'x1', 'c=0', 'c=1', 'c=2']);
    // x0 in training: 1, NaN, 3, 5 → median 3; imputed 1, 3, 3, 5 → mean 3, sd √2.
    const col = (m: Float32Array, j: number) =>
      Array.from({ length: m.length / linear.width }, (_, i) => m[i * linear.width + j] as number);
    const x0 = col(linear.train.x, 0);
    expect(x0.map((v) => v * Math.SQRT2 + 3)).toEqual([1, 3, 3, 5].map((v) => expect.closeTo(v, 5)));
    expect(col(linear.holdout.x, 0)[0]).toBeCloseTo((100 - 3) / Math.SQRT2, 4);
    // The missing indicator is standardised too, and only x0 (gaps in training) has one.
    const miss = col(linear.train.x, 1);
    expect(miss[1]).toBeGreaterThan(0);
    expect(miss[0]).toBeLessThan(0);
    // One-hot: the level's column is 1, a missing level is all zeros; the same columns for the trees.
    expect(Array.from(linear.train.x.subarray(3, 6))).toEqual([1, 0, 0]);
    expect(Array.from(linear.train.x.subarray(6 * 3 + 3, 6 * 4))).toEqual([0, 0, 0]);
    expect(tree.columns).toEqual(['x0', 'x1', 'c=0', 'c=1', 'c=2']);
    expect(Number.isNaN(tree.train.x[tree.width * 1])).toBe(true);
    expect(tree.holdout.x[0]).toBe(100);
    expect(Array.from(tree.train.x.subarray(2, 5))).toEqual([1, 0, 0]);
    // Native: level codes, NaN for a missing level, declared categorical.
    expect(native?.categorical).toEqual([2]);
    const shown = Array.from(native?.train.x ?? [], (v) => (Number.isNaN(v) ? 'nan' : v));
    expect(shown).toEqual([1, 10, 0, 'nan', 20, 2, 3, 30, 1, 5, 40, 'nan']);
    expect(Array.from(linear.holdout.y)).toEqual([0]);
  });

  it('generates the same rows for the same seed, and other rows for another', () => {
    const a = generate('interactions', 500, 1);
    expect(generate('interactions', 500, 1)).toEqual(a);
    expect(generate('interactions', 500, 2).num).not.toEqual(a.num);
  });

  it('makes the missing dataset 30–50 % missing in x0–x7, and the gaps predict the label', () => {
    const d = missingDataset(20_000, 7);
    const w = d.numeric.length;
    for (let j = 0; j < w; j++) {
      let gaps = 0;
      for (let i = 0; i < d.rows; i++) gaps += Number.isNaN(d.num[i * w + j] as number) ? 1 : 0;
      const share = gaps / d.rows;
      if (j < 8) {
        expect(share).toBeGreaterThan(0.3);
        expect(share).toBeLessThan(0.5);
      } else expect(share).toBe(0);
    }
    // Positive rate among rows missing x0 against rows that have it.
    const rate = (missing: boolean) => {
      let n = 0;
      let pos = 0;
      for (let i = 0; i < d.rows; i++)
        if (Number.isNaN(d.num[i * w] as number) === missing) {
          n++;
          pos += d.y[i] as number;
        }
      return pos / n;
    };
    expect(rate(true) - rate(false)).toBeGreaterThan(0.05);
  });
});
