import { describe, expect, it } from 'vitest';
import { fitTransform, type Row } from '../../tasks/src/features/transform.js';
import {
  parseServingSample,
  pickSampleRows,
  probeProblem,
  probeRows,
  SERVING_SAMPLE_FORMAT,
  sampleProblem,
} from '../../tasks/src/models/serving-sample.js';

const rows: Row[] = Array.from({ length: 60 }, (_, i) => ({
  customer_id: `C${i}`,
  tenure: i,
  plan: i < 57 ? 'basic' : i === 57 ? 'pro' : 'team',
}));
const state = fitTransform(rows, { numeric: ['tenure'], categorical: ['plan'] }, { minCategoryShare: 0 });

/** The holdout sample a version must reproduce before the API serves it (issue 20, problem 6). */
describe('serving sample', () => {
  it('covers every category, keeps input fields only (no id), and caps its size', () => {
    const picked = pickSampleRows(rows, state, 5);
    expect(picked).toHaveLength(5);
    expect(new Set(picked.map((r) => r.plan))).toEqual(new Set(['basic', 'pro', 'team']));
    for (const r of picked) expect(Object.keys(r).sort()).toEqual(['plan', 'tenure']);
  });

  it('passes a scorer that reproduces the recorded probabilities, names the first bad row otherwise', () => {
    const sample = {
      format: SERVING_SAMPLE_FORMAT,
      rows: [{ tenure: 1 }, { tenure: 2 }],
      predictions: [0.25, 0.5],
    };
    const model = (r: Row) => Number(r.tenure) / 4;
    expect(sampleProblem(sample, model)).toBeUndefined();
    expect(sampleProblem(sample, (r) => model(r) + 5e-7)).toBeUndefined();
    expect(sampleProblem(sample, () => 1)).toBe(
      '2 of 2 holdout sample rows fail: sample row 0 answers 1, training recorded 0.25',
    );
    expect(sampleProblem(sample, (r) => (r.tenure === 2 ? Number.NaN : model(r)))).toBe(
      '1 of 2 holdout sample rows fail: sample row 1 answers NaN, not a probability',
    );
  });

  it('refuses a document that is not a sample', () => {
    expect(() =>
      parseServingSample({ format: SERVING_SAMPLE_FORMAT, rows: [{}], predictions: [] }, 'v3'),
    ).toThrow(/v3: serving-sample.json is not a driftwood.serving-sample\/v1 document/);
  });

  it('probes the empty row and every category (and an unseen one) of a version without a sample', () => {
    const probes = probeRows(state);
    expect(probes).toEqual([
      {},
      { plan: 'basic' },
      { plan: 'pro' },
      { plan: 'team' },
      { plan: '\u0000unseen' },
    ]);
    expect(probeProblem(probes, () => 0.3)).toBeUndefined();
    expect(probeProblem(probes, (r) => (r.plan === 'pro' ? Number.NaN : 1))).toBe(
      'probe {"plan":"pro"} answers NaN, not a probability',
    );
  });
});
