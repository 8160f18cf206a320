import {
  fitTransform,
  inputFields,
  parseTransformState,
  quantile,
  TRANSFORM_FORMAT,
  transformRow,
  transformRows,
} from '@driftwood/tasks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const spec = { numeric: ['a', 'b'], categorical: ['plan'] };
const rows = [
  { a: 1, b: 10, plan: 'basic' },
  { a: 3, b: null, plan: 'premium' },
  { a: 5, b: 30, plan: 'basic' },
];
// Selection off: these tests look at one part at a time.
const noSelection = { nearConstantShare: 1.01, maxCorrelation: 1.01 };

describe('imputation and scaling', () => {
  it('imputes the median, adds missing indicators only where training saw gaps, and scales', () => {
    const state = fitTransform(rows, spec, noSelection);
    expect(state.format).toBe(TRANSFORM_FORMAT);
    expect(state.outputs).toEqual(['a', 'b', 'b__missing', 'plan=basic', 'plan=premium', 'plan=__unseen__']);
    const [a, b] = state.numeric;
    // a: mean 3, population sd sqrt(8/3)
    expect(a?.center).toBe(3);
    expect(a?.scale).toBeCloseTo(Math.sqrt(8 / 3), 12);
    expect(a?.missingIndicator).toBe(false);
    // b: median of [10, 30] = 20 fills the gap; mean of [10, 20, 30] = 20; sd sqrt(200/3)
    expect(b?.impute).toBe(20);
    expect(b?.center).toBe(20);
    expect(b?.scale).toBeCloseTo(Math.sqrt(200 / 3), 12);
    expect(Array.from(transformRow(state, { a: 3, b: null, plan: 'premium' }))).toEqual([0, 0, 1, 0, 1, 0]);
    // A numeric string counts as the number; garbage counts as missing.
    expect(Array.from(transformRow(state, { a: '3', b: 'n/a', plan: 'premium' }))).toEqual([
      0, 0, 1, 0, 1, 0,
    ]);
  });

  it('robust scaling centres on the median and divides by the interquartile range', () => {
    const data = [1, 2, 3, 4, 100].map((x) => ({ x }));
    const state = fitTransform(
      data,
      { numeric: ['x'], categorical: [] },
      { ...noSelection, scaling: 'robust' },
    );
    // quartiles of [1, 2, 3, 4, 100] (linear interpolation): q25 = 2, q50 = 3, q75 = 4
    expect(state.numeric[0]).toMatchObject({ center: 3, scale: 2 });
    expect(Array.from(transformRow(state, { x: 100 }))).toEqual([48.5]);
  });

  it('computes quantiles as numpy does by default (linear interpolation)', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantile([7], 0.9)).toBe(7);
    expect(quantile([], 0.5)).toBe(0);
  });
});

describe('categorical encoding', () => {
  it('one-hot encodes, sends unseen values to the unseen bucket and missing ones to the most frequent', () => {
    const state = fitTransform(rows, spec, noSelection);
    expect(state.categorical[0]).toEqual({ name: 'plan', categories: ['basic', 'premium'], impute: 'basic' });
    expect(Array.from(transformRow(state, { a: 1, plan: 'gold' })).slice(3)).toEqual([0, 0, 1]);
    expect(Array.from(transformRow(state, { a: 1 })).slice(3)).toEqual([1, 0, 0]);
    expect(Array.from(transformRow(state, { a: 1, plan: 42 })).slice(3)).toEqual([1, 0, 0]);
  });

  it('keeps a category only when it reaches the minimum share of training rows', () => {
    const data = [
      ...Array.from({ length: 60 }, () => ({ region: 'north' })),
      ...Array.from({ length: 39 }, () => ({ region: 'south' })),
      { region: 'atlantis' },
    ];
    const state = fitTransform(
      data,
      { numeric: [], categorical: ['region'] },
      { ...noSelection, minCategoryShare: 0.05 },
    );
    expect(state.categorical[0]?.categories).toEqual(['north', 'south']);
    expect(Array.from(transformRow(state, { region: 'atlantis' }))).toEqual([0, 0, 1]);
  });
});

describe('feature selection', () => {
  it('drops near-constant and highly correlated features and says why', () => {
    const data = Array.from({ length: 200 }, (_, i) => ({
      x: i,
      twin: 2 * i + 1, // r = 1 with x
      flat: i === 0 ? 1 : 0, // one value in 199 of 200 rows
      noise: (i * 7919) % 13,
      country: 'NL',
    }));
    const state = fitTransform(
      data,
      { numeric: ['x', 'twin', 'flat', 'noise'], categorical: ['country'] },
      { nearConstantShare: 0.99, maxCorrelation: 0.95 },
    );
    expect(state.numeric.map((n) => n.name)).toEqual(['x', 'noise']);
    expect(state.categorical).toEqual([]);
    expect(state.dropped).toEqual([
      { name: 'twin', kind: 'numeric', reason: expect.stringMatching(/correlated with x: r = 1\.0000/) },
      { name: 'flat', kind: 'numeric', reason: expect.stringMatching(/near-constant: one value in 99\.5/) },
      { name: 'country', kind: 'categorical', reason: expect.stringMatching(/near-constant: 'NL' in 100/) },
    ]);
    expect(state.outputs).toEqual(['x', 'noise']);
    // Requests may still carry the dropped fields; they do not change the vector.
    expect(inputFields(state)).toEqual({ numeric: ['x', 'noise', 'twin', 'flat'], categorical: ['country'] });
    expect(Array.from(transformRow(state, { x: 5, noise: 3, twin: 1e9, flat: -4 }))).toEqual(
      Array.from(transformRow(state, { x: 5, noise: 3 })),
    );
  });

  it('fits only on the rows it is given: the state does not depend on their order', () => {
    const data = Array.from({ length: 50 }, (_, i) => ({
      a: (i * 37) % 11,
      b: i % 3 ? null : i,
      plan: i % 4 ? 'x' : 'y',
    }));
    const reversed = [...data].reverse();
    expect(fitTransform(reversed, spec)).toEqual(fitTransform(data, spec));
  });
});

describe('one implementation for batch and single rows', () => {
  const wild = fc.oneof(
    fc.double(),
    fc.constantFrom(null, undefined, '', ' ', 'abc', '1e308', Number.MAX_VALUE, -Number.MAX_VALUE),
    fc.string(),
    fc.integer(),
  );
  const row = fc.record({
    a: wild,
    b: wild,
    plan: fc.oneof(fc.constantFrom('basic', 'premium', 'other'), wild),
  });

  it('batch transform equals row-by-row transform bit for bit, and nothing yields NaN or throws', () => {
    fc.assert(
      fc.property(
        fc.array(row, { minLength: 1, maxLength: 40 }),
        fc.array(row, { maxLength: 30 }),
        fc.constantFrom('standard' as const, 'robust' as const),
        (train, sample, scaling) => {
          const state = fitTransform(train, spec, { scaling });
          const batch = transformRows(state, sample);
          const width = state.outputs.length;
          sample.forEach((r, i) => {
            const single = transformRow(state, r);
            expect(Array.from(batch.subarray(i * width, (i + 1) * width))).toEqual(Array.from(single));
          });
          expect(batch.every((x) => !Number.isNaN(x))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('survives a round trip through JSON losslessly', () => {
    fc.assert(
      fc.property(fc.array(row, { minLength: 1, maxLength: 40 }), (train) => {
        const state = fitTransform(train, spec);
        const again = parseTransformState(JSON.parse(JSON.stringify(state)));
        expect(again).toEqual(state);
        for (const r of train)
          expect(Array.from(transformRow(again, r))).toEqual(Array.from(transformRow(state, r)));
      }),
      { numRuns: 100 },
    );
  });
});

describe('parseTransformState', () => {
  const good = fitTransform(rows, spec);
  it.each([
    [{ format: 'other' }, /expected format driftwood\.transform\/v2/],
    [{ ...good, format: 'driftwood.transform/v1' }, /retrain the model/],
    [null, /expected a JSON object/],
    [{ ...good, outputs: ['a'] }, /make \d+ columns but outputs lists 1/],
    [{ ...good, dropped: undefined }, /dropped and options are required/],
    [
      { ...good, numeric: [{ ...good.numeric[0], scale: 0 }, ...good.numeric.slice(1)] },
      /non-finite or zero/,
    ],
  ])('rejects %j', (doc, message) => {
    expect(() => parseTransformState(doc)).toThrow(message);
  });
});
