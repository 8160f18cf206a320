import { fitTransform, parseTransformState, transformRow, transformRows } from '@driftwood/tasks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const spec = { numeric: ['a', 'b'], categorical: ['plan'] };
const rows = [
  { a: 1, b: 10, plan: 'basic' },
  { a: 3, b: null, plan: 'premium' },
  { a: 5, b: 30, plan: 'basic' },
];

describe('fitTransform / transformRow', () => {
  it('imputes the median, adds missing indicators only where training saw gaps, scales and one-hot encodes', () => {
    const state = fitTransform(rows, spec);
    expect(state.outputs).toEqual(['a', 'b', 'b__missing', 'plan=basic', 'plan=premium', 'plan=__unseen__']);
    const a = state.numeric[0];
    // a: mean 3, population sd sqrt(8/3)
    expect(a?.center).toBe(3);
    expect(a?.scale).toBeCloseTo(Math.sqrt(8 / 3), 12);
    const b = state.numeric[1];
    // b: median of [10, 30] = 20 imputes the gap; mean of [10, 20, 30] = 20
    expect(b?.impute).toBe(20);
    expect(b?.center).toBe(20);
    const v = transformRow(state, { a: 3, b: null, plan: 'premium' });
    expect(Array.from(v)).toEqual([0, 0, 1, 0, 1, 0]);
  });

  it('sends unseen and missing categories to the unseen bucket and never throws', () => {
    const state = fitTransform(rows, spec);
    expect(Array.from(transformRow(state, { a: 'x', plan: 'gold' })).slice(3)).toEqual([0, 0, 1]);
    expect(Array.from(transformRow(state, {})).slice(3)).toEqual([0, 0, 1]);
  });

  it('batch transform equals row-by-row transform bit for bit, and never yields NaN', () => {
    const row = fc.record({
      a: fc.oneof(fc.double({ noNaN: false }), fc.constant(null), fc.string()),
      b: fc.oneof(fc.double({ min: -1e6, max: 1e6 }), fc.constant(null)),
      plan: fc.oneof(fc.constantFrom('basic', 'premium', 'other'), fc.constant(undefined)),
    });
    const state = fitTransform(rows, spec);
    fc.assert(
      fc.property(fc.array(row, { maxLength: 30 }), (sample) => {
        const batch = transformRows(state, sample);
        sample.forEach((r, i) => {
          const single = transformRow(state, r);
          expect(Array.from(batch.subarray(i * single.length, (i + 1) * single.length))).toEqual(
            Array.from(single),
          );
        });
        for (const r of sample) {
          const v = transformRow(state, r);
          expect(v.every((x) => !Number.isNaN(x))).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('survives a round trip through JSON unchanged', () => {
    const state = fitTransform(rows, spec);
    const again = parseTransformState(JSON.parse(JSON.stringify(state)));
    expect(again).toEqual(state);
    expect(Array.from(transformRow(again, rows[0] as Record<string, unknown>))).toEqual(
      Array.from(transformRow(state, rows[0] as Record<string, unknown>)),
    );
  });

  it('rejects a document that is not a transform', () => {
    expect(() => parseTransformState({ format: 'other' })).toThrow(/transform.json/);
  });
});
