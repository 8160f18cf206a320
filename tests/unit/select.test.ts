import { describe, expect, it } from 'vitest';
import { modelParamsFromFlags } from '../../tasks/src/train/cli-options.js';
import { resolveParams } from '../../tasks/src/train/index.js';
import {
  autoCandidates,
  type CandidateScore,
  candidateName,
  chooseCandidate,
  isAuto,
} from '../../tasks/src/train/select.js';

const c = (name: string, validationRocAuc: number, failedChecks: string[] = []): CandidateScore => ({
  name,
  kind: name.startsWith('logistic') ? 'logistic' : 'gbdt',
  validationRocAuc,
  failedChecks,
});

describe('auto: which candidate is kept (validation figures and behaviour only)', () => {
  it.each([
    [
      'the highest validation ROC AUC',
      [c('logistic-exact', 0.63), c('logistic-adam', 0.62), c('gbdt', 0.86)],
      2,
    ],
    [
      'the linear model where the truth is linear',
      [c('logistic-exact', 0.77), c('logistic-adam', 0.761), c('gbdt', 0.76)],
      0,
    ],
    [
      'the earlier, simpler candidate on a tie',
      [c('logistic-exact', 0.8), c('logistic-adam', 0.8), c('gbdt', 0.8)],
      0,
    ],
    [
      'a candidate without a figure (one class in validation) last',
      [c('logistic-exact', Number.NaN), c('gbdt', 0.7)],
      1,
    ],
    [
      'the best of those that pass the behavioural checks',
      [
        c('logistic-exact', 0.7),
        c('logistic-adam', 0.72),
        c('gbdt', 0.9, ['more_payment_failures_never_lower_risk']),
      ],
      1,
    ],
    [
      'the best on validation when none passes (the gate then refuses it)',
      [
        c('logistic-exact', 0.7, ['obvious_cases_classified_right']),
        c('gbdt', 0.9, ['fewer_recent_sessions_never_lower_risk']),
      ],
      1,
    ],
  ])('keeps %s', (_, candidates, index) => {
    expect(chooseCandidate(candidates).index).toBe(index);
  });

  it('says why, with every candidate’s figure and the checks that refused one', () => {
    const { reason } = chooseCandidate([
      c('logistic-exact', 0.7),
      c('gbdt', 0.9, ['more_payment_failures_never_lower_risk']),
    ]);
    expect(reason).toBe(
      'logistic-exact: the highest validation ROC AUC among the candidates that pass the behavioural checks (logistic-exact 0.7000, gbdt 0.9000); gbdt failed more_payment_failures_never_lower_risk on the validation rows',
    );
    expect(chooseCandidate([c('logistic-exact', 0.8), c('gbdt', 0.8)]).reason).toMatch(
      /^logistic-exact: the simpler of equal validation ROC AUC/,
    );
    expect(chooseCandidate([c('logistic-exact', 0.7, ['x']), c('gbdt', 0.9, ['y'])]).reason).toMatch(
      /every candidate failed a behavioural check \(logistic-exact: x; gbdt: y\)/,
    );
  });
});

describe('auto: the candidates and the requests that mean it', () => {
  it('fits the exact and the Adam logistic regression and the trees, each with its own defaults', () => {
    const [exact, adam, gbdt] = autoCandidates({});
    expect([exact, adam, gbdt].map((p) => p && candidateName(p))).toEqual([
      'logistic-exact',
      'logistic-adam',
      'gbdt',
    ]);
    expect(exact).toMatchObject({ kind: 'logistic', solver: 'exact', l2: 0.001, monotonic: true });
    expect(gbdt).toMatchObject({ kind: 'gbdt', learningRate: 0.1, l2: 0, patience: 10, monotonic: true });
  });

  it('gives every candidate the parameters it uses; a named solver keeps the logistic regression to it', () => {
    const all = autoCandidates({ seed: 3, trees: 40, l2: 0.01 });
    expect(all.map((p) => [p.seed, p.trees, p.l2])).toEqual([
      [3, 40, 0.01],
      [3, 40, 0.01],
      [3, 40, 0.01],
    ]);
    expect(autoCandidates({ solver: 'exact' }).map(candidateName)).toEqual(['logistic-exact', 'gbdt']);
    expect(() => autoCandidates({ trees: 0 })).toThrow(/trees/);
  });

  it('is what a request without a kind means, and --model auto; a named kind is that kind alone', () => {
    expect(isAuto({})).toBe(true);
    // A solver belongs to the logistic regression: naming one without a kind fits that model alone.
    expect(isAuto(modelParamsFromFlags({ solver: 'exact' }))).toBe(false);
    expect(resolveParams(modelParamsFromFlags({ solver: 'exact' }))).toMatchObject({
      kind: 'logistic',
      solver: 'exact',
    });
    expect(isAuto(modelParamsFromFlags({ model: 'auto', solver: 'exact' }))).toBe(true);
    expect(isAuto(modelParamsFromFlags({ model: 'auto' }))).toBe(true);
    expect(isAuto(modelParamsFromFlags({ model: 'logistic' }))).toBe(false);
    // --model logistic keeps the Adam fit it always had.
    expect(resolveParams(modelParamsFromFlags({ model: 'logistic' }))).toMatchObject({ solver: 'adam' });
    expect(() => modelParamsFromFlags({ model: 'forest' })).toThrow(
      "--model: expected auto or logistic or mlp or gbdt, got 'forest'",
    );
    // One model's parameters (tune's trials, the calibration bench) cannot be `auto`.
    expect(() => resolveParams({ kind: 'auto' })).toThrow(/name one kind here: logistic, mlp or gbdt/);
  });
});
