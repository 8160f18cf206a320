import { describe, expect, it } from 'vitest';
import { DEFAULT_TRANSFORM_OPTIONS, fitTransform } from '../../tasks/src/features/transform.js';
import { Rng } from '../../tasks/src/random.js';
import {
  budgetAllows,
  type CvTable,
  chooseByCv,
  cvMarkdown,
  foldRows,
  meanStd,
  pickLabels,
  stratifiedFolds,
} from '../../tasks/src/tune/cv.js';
import { fitFoldTransform, foldInputs } from '../../tasks/src/tune/folds.js';

const labelsOf = (n: number, rate: number, seed: number) => {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.next() < rate ? 1 : 0));
};

describe('stratified folds', () => {
  it.each([
    [1213, 0.08, 5],
    [700, 0.1, 3],
    [97, 0.3, 10],
  ])('%i rows with %d positives in %i folds: sizes and positives differ by one at most', (n, rate, k) => {
    const y = labelsOf(n, rate, n);
    const fold = stratifiedFolds(y, k, 7);
    const sizes = Array.from({ length: k }, (_, f) => fold.filter((g) => g === f).length);
    const positives = Array.from(
      { length: k },
      (_, f) => y.filter((v, i) => v === 1 && fold[i] === f).length,
    );
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(Math.max(...positives) - Math.min(...positives)).toBeLessThanOrEqual(1);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(n);
  });

  it('is the same for the same seed and differs for another', () => {
    const y = labelsOf(500, 0.1, 1);
    expect(stratifiedFolds(y, 5, 3)).toEqual(stratifiedFolds(y, 5, 3));
    expect(stratifiedFolds(y, 5, 3)).not.toEqual(stratifiedFolds(y, 5, 4));
  });

  it('refuses fewer than 3 folds and more folds than rows, naming the flag', () => {
    expect(() => stratifiedFolds(labelsOf(100, 0.1, 1), 2, 1)).toThrow(
      /--folds: expected a whole number ≥ 3/,
    );
    expect(() => stratifiedFolds(labelsOf(4, 0.5, 1), 5, 1)).toThrow(
      /--folds 5: the training part has 4 rows/,
    );
  });
});

describe('the rows of one fold', () => {
  it('scores fold f, stops early on fold f+1 and trains on the rest, each row in one place', () => {
    const k = 5;
    const fold = stratifiedFolds(labelsOf(300, 0.2, 2), k, 1);
    for (let f = 0; f < k; f++) {
      const rows = foldRows(fold, k, f);
      expect(rows.score.every((i) => fold[i] === f)).toBe(true);
      expect(rows.stop.every((i) => fold[i] === (f + 1) % k)).toBe(true);
      expect(rows.train.every((i) => fold[i] !== f && fold[i] !== (f + 1) % k)).toBe(true);
      const all = [...rows.train, ...rows.stop, ...rows.score].sort((a, b) => a - b);
      expect(all).toEqual(Array.from({ length: 300 }, (_, i) => i));
    }
  });

  it('picks the chosen labels', () => {
    expect(Array.from(pickLabels(Float32Array.from([0, 1, 1]), [1, 0]))).toEqual([1, 0]);
  });
});

describe("a fold's transform", () => {
  // The training part of a prepared dataset: one numeric input, one categorical.
  const dataOf = (values: (number | null)[], plans: string[]) => {
    const rows = values.map((v, i) => ({
      customerId: `c${i}`,
      time: 0,
      label: (i % 3 === 0 ? 1 : 0) as 0 | 1,
      features: { spend: v, plan: plans[i] as string },
    }));
    const options = { ...DEFAULT_TRANSFORM_OPTIONS, scaling: 'robust' as const, minCategoryShare: 0.05 };
    return {
      parts: { train: rows, validation: [], holdout: [] },
      state: fitTransform(
        rows.map((r) => r.features),
        { numeric: ['spend'], categorical: ['plan'] },
        options,
      ),
      profile: {
        numeric: ['spend'],
        categorical: ['plan'],
        signs: (outputs: readonly string[]) => Int8Array.from(outputs, (o) => (o === 'spend' ? 1 : 0)),
      },
      train: { x: new Float32Array(0), y: Float32Array.from(rows, (r) => r.label) },
    } as unknown as Parameters<typeof fitFoldTransform>[0];
  };

  it("is fitted on the fold's training rows alone, with the step's options: the scored and stopping folds' values change nothing", () => {
    const n = 300;
    const fold = stratifiedFolds(labelsOf(n, 0.3, 5), 5, 9);
    const rows = foldRows(fold, 5, 2);
    const values = Array.from({ length: n }, (_, i) => (i % 17 === 0 ? null : (i * 37) % 101));
    const plans = Array.from({ length: n }, (_, i) => ['basic', 'premium', 'standard'][i % 3] as string);
    const base = dataOf(values, plans);
    // Outside the fold's training rows: extreme values, a category of their own, no missing value.
    const outside = new Set([...rows.score, ...rows.stop]);
    const shifted = dataOf(
      values.map((v, i) => (outside.has(i) ? 1e6 + i : v)),
      plans.map((p, i) => (outside.has(i) ? 'enterprise' : p)),
    );
    const state = fitFoldTransform(base, rows);
    expect(state.options.scaling).toBe('robust');
    expect(fitFoldTransform(shifted, rows)).toEqual(state);
    // Fitted on the whole training part (as before), the scored fold's values move the state.
    expect(base.state).not.toEqual(state);
    expect(shifted.state.categorical[0]?.categories).toContain('enterprise');
    expect(state.categorical[0]?.categories).not.toContain('enterprise');

    const inputs = foldInputs(base, state, rows);
    expect(inputs.width).toBe(state.outputs.length);
    expect(inputs.train.x.length).toBe(rows.train.length * inputs.width);
    expect(inputs.score.x.length).toBe(rows.score.length * inputs.width);
    expect(Array.from(inputs.stop.y)).toEqual(rows.stop.map((i) => (i % 3 === 0 ? 1 : 0)));
    expect(Array.from(inputs.signs)).toEqual(state.outputs.map((o) => (o === 'spend' ? 1 : 0)));
  });
});

describe('the time budget', () => {
  it.each([
    // started, now, budget (s), trials done → may another start?
    [0, 10_000, 5, 0, true], // the first trial always runs
    [0, 4_999, 5, 1, true],
    [0, 5_000, 5, 1, false],
    [0, 1, 0, 1, false],
    [0, 10 ** 9, undefined, 7, true], // no budget: every planned trial
  ])('started %i, now %i, budget %s s, %i done → %s', (started, now, budget, done, allowed) => {
    expect(budgetAllows(started, now, budget, done)).toBe(allowed);
  });
});

describe('choosing by CV', () => {
  it('takes the best mean, the earlier trial on a tie', () => {
    const trials = [
      { trial: 1, cvRocAucMean: 0.7 },
      { trial: 2, cvRocAucMean: 0.8 },
      { trial: 3, cvRocAucMean: 0.8 },
    ];
    expect(chooseByCv(trials).trial).toBe(2);
    expect(() => chooseByCv([])).toThrow(/no trial ran/);
  });

  it('reports the population standard deviation, as scikit-learn does', () => {
    const { mean, std } = meanStd([0.7, 0.8, 0.9]);
    expect(mean).toBeCloseTo(0.8, 12);
    expect(std).toBeCloseTo(Math.sqrt(0.02 / 3), 12);
  });

  it('writes a table that marks the chosen trial and says how many ran', () => {
    const table: CvTable = {
      dataset: 'churn',
      metric: 'roc_auc',
      folds: 3,
      foldSeed: 7,
      trainRows: 900,
      planned: 4,
      ran: 2,
      budgetSeconds: 30,
      stoppedByBudget: true,
      trials: [
        {
          trial: 1,
          runId: 'r1',
          params: { kind: 'logistic' },
          foldRocAuc: [0.7, 0.72, 0.71],
          cvRocAucMean: 0.71,
          cvRocAucStd: 0.008,
          seconds: 2,
        },
        {
          trial: 2,
          runId: 'r2',
          params: { kind: 'gbdt' },
          foldRocAuc: [0.8, 0.79, 0.81],
          cvRocAucMean: 0.8,
          cvRocAucStd: 0.008,
          seconds: 3,
        },
      ],
      chosen: { trial: 2, runId: 'r2', params: { kind: 'gbdt' } },
      holdout: { runId: 'final', rocAuc: 0.78, validationRocAuc: 0.79 },
    };
    const md = cvMarkdown(table);
    expect(md).toContain(
      '| 2 **chosen** | `{"kind":"gbdt"}` | 0.8000 0.7900 0.8100 | 0.8000 | 0.0080 | 3.0 |',
    );
    expect(md).toContain('| 1 | `{"kind":"logistic"}`');
    expect(md).toContain(
      'Trials: 2 of 4 planned ran (the time budget of 30 s ran out; no trial started after it).',
    );
    expect(md).toContain('its holdout ROC AUC is 0.7800');
  });
});
