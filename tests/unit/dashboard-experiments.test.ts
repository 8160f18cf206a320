import { describe, expect, it } from 'vitest';
import {
  actionLine,
  decisionLine,
  type ExperimentView,
  variantRows,
  withInterval,
} from '../../dashboard/src/experiments.js';

const est = (value: number) => ({ value, low: value - 0.01, high: value + 0.01 });
const view: ExperimentView = {
  name: 'gbdt-vs-logistic',
  dataset: 'churn',
  status: 'decided',
  started_at: '2026-12-01T09:00:00.000Z',
  declaration: { primary_metric: 'brier', alpha: 0.05, minimum_sample: 200, control: 'control' },
  variants: [
    { name: 'control', model: 'champion', version: '3', allocation: 0.5, served_here: 610 },
    { name: 'treatment', model: 'challenger', version: '4', allocation: 0.5, served_here: 590 },
  ],
  analysis: {
    look: 3,
    analysed_at: '2026-12-04T06:00:00.000Z',
    decision: 'promote',
    winner: 'treatment',
    final: true,
    reason: 'treatment has a lower brier',
    variants: ['control', 'treatment'].map((variant, i) => ({
      variant,
      customers: 600 - i,
      roc_auc: est(0.7),
      calibration_error: est(0.05),
      brier: est(0.2 - i * 0.03),
      log_loss: est(0.6),
      cost: est(0.3),
    })),
    comparisons: [{ variant: 'treatment', difference: -0.03, pValue: 0.001, low: -0.05, high: -0.01 }],
  },
};

describe('the experiment panel', () => {
  it('shows each variant with its version, share, traffic, outcome and test', () => {
    const [control, treatment] = variantRows(view);
    expect(control?.slice(0, 5)).toEqual(['control (control)', 'v3 (champion)', '50%', '610', '600']);
    expect(control?.[9]).toBe('—');
    expect(treatment?.[5]).toBe('0.700 [0.690, 0.710]');
    expect(treatment?.[9]).toBe('-0.0300 [-0.0500, -0.0100]');
    expect(treatment?.[10]).toBe('0.0010');
  });

  it('says the decision, or that none is taken yet', () => {
    expect(decisionLine(view)).toEqual({
      text: 'promote treatment (look 3, 2026-12-04 06:00 UTC): treatment has a lower brier',
      tone: 'ok',
    });
    const fresh = { ...view, status: 'running' as const, analysis: null };
    expect(decisionLine(fresh).text).toContain('no analysis yet');
    expect(variantRows(fresh)[0]?.[5]).toBe('—');
    expect(withInterval({ value: Number.NaN, low: 0, high: 1 })).toBe('—');
  });

  it('says what became of a promote decision, from the MLflow run', () => {
    expect(actionLine(view)).toBeNull();
    const promoted = {
      ...view,
      on_decision: 'promote' as const,
      action: 'promoted' as const,
      action_detail: 'treatment (version 4) promoted to champion in place of version 3',
    };
    expect(actionLine(promoted)).toEqual({
      badge: 'promoted',
      text: 'treatment (version 4) promoted to champion in place of version 3',
      tone: 'ok',
    });
    // The gate's words are shown as they are (the panel sets them as text, never as markup).
    const refused = {
      ...promoted,
      action: 'refused' as const,
      action_detail: 'not promoted: <b>AUC</b> lower',
    };
    expect(actionLine(refused)).toMatchObject({
      text: 'refused by the promotion gate: not promoted: <b>AUC</b> lower',
      tone: 'bad',
    });
    const running = {
      ...view,
      status: 'running' as const,
      analysis: null,
      action: null,
      action_detail: null,
    };
    expect(actionLine({ ...running, on_decision: 'promote' })?.badge).toBe('on promote: promote');
    expect(actionLine(running)?.text).toContain('recorded');
  });
});
