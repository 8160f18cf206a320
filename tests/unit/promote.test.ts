import { describe, expect, it } from 'vitest';
import type { Run } from '../../tasks/src/mlflow/types.js';
import { DEFAULT_POLICY, decidePromotion, type GateEvidence } from '../../tasks/src/promote/decide.js';
import {
  type AliasEvent,
  auditArtifactPath,
  auditTagKey,
  auditTagText,
  parseAuditTags,
  planRollback,
  versionAt,
} from '../../tasks/src/promote/history.js';
import { evaluationText, promotionSummary, sameTraining } from '../../tasks/src/promote/index.js';
import {
  modelParamsFromFlags,
  policyFromFlags,
  searchSpaceFromFlag,
} from '../../tasks/src/train/cli-options.js';
import { gridOf, planTrials } from '../../tasks/src/tune/index.js';

const seg = (segment: string, roc_auc: number, n = 100) => ({ segment, n, positives: 10, roc_auc });
const ok = [{ name: 'invariant_to_customer_id_and_pii', passed: true, detail: 'no prediction moved' }];
const evidence = (over: Partial<GateEvidence> = {}): GateEvidence => ({
  candidate: { version: '2', rocAuc: 0.8, segments: [seg('plan=basic', 0.8), seg('region=north', 0.79)] },
  champion: { version: '1', rocAuc: 0.78, segments: [seg('plan=basic', 0.78), seg('region=north', 0.78)] },
  comparison: { diff: 0.02, low: -0.01, high: 0.05, level: 0.95 },
  behaviour: ok,
  ...over,
});
const policy = { ...DEFAULT_POLICY, maxRegression: 0.02 };

describe('decidePromotion', () => {
  it.each([
    [
      'better on the same holdout, interval within the allowance',
      evidence(),
      true,
      /better by at least the margin 0, no regression beyond 0.02 within the interval/,
    ],
    ['first model, no champion', evidence({ champion: null, comparison: null }), true, /≥ the floor 0.6/],
    [
      'first model below the floor',
      evidence({ champion: null, comparison: null, candidate: { version: '2', rocAuc: 0.55, segments: [] } }),
      false,
      /min_roc_auc: holdout ROC AUC 0.5500 is below the floor/,
    ],
    [
      'no ROC AUC at all',
      evidence({
        champion: null,
        comparison: null,
        candidate: { version: '2', rocAuc: Number.NaN, segments: [] },
      }),
      false,
      /has no holdout ROC AUC/,
    ],
    [
      'worse than the champion',
      evidence({
        candidate: { version: '2', rocAuc: 0.77, segments: [] },
        comparison: { diff: -0.01, low: -0.04, high: 0.02, level: 0.95 },
      }),
      false,
      /beats_champion: ROC AUC 0.7700 < champion v1's 0.7800 \(-0.0100, 95% interval \[-0.0400, 0.0200\]\): not better, a possible regression beyond 0.02/,
    ],
    [
      'better, but the interval allows a large regression',
      evidence({
        candidate: { version: '2', rocAuc: 0.79, segments: [] },
        comparison: { diff: 0.01, low: -0.03, high: 0.05, level: 0.95 },
      }),
      false,
      /better by at least the margin 0, a possible regression beyond 0.02/,
    ],
    [
      'better by less than a required margin',
      evidence(),
      false,
      /better, but by less than the margin 0.03/,
      { margin: 0.03 },
    ],
    [
      'an identical retrain (same data and settings): not better, whatever the margin, with the real figures',
      evidence({
        candidate: { version: '2', rocAuc: 0.8123, segments: [] },
        champion: { version: '1', rocAuc: 0.8123, segments: [] },
        comparison: { diff: 0, low: 0, high: 0, level: 0.95 },
        sameTraining: true,
      }),
      false,
      /^beats_champion: ROC AUC 0.8123 = champion v1's 0.8123 \(same training data and settings\): not better$/,
    ],
    [
      'a model that ranks every holdout row as the champion does, trained otherwise: not better',
      evidence({
        candidate: { version: '2', rocAuc: 0.78, segments: [] },
        comparison: { diff: 0, low: 0, high: 0, level: 0.95 },
        sameTraining: false,
      }),
      false,
      /ROC AUC 0.7800 = champion v1's 0.7800 \(it ranks every holdout row as the champion does\): not better$/,
    ],
    [
      'another model with an equal ROC AUC: not better',
      evidence({
        candidate: { version: '2', rocAuc: 0.78, segments: [] },
        comparison: { diff: 0, low: -0.02, high: 0.02, level: 0.95 },
      }),
      false,
      /ROC AUC 0.7800 = champion v1's 0.7800 \(\+0.0000, 95% interval \[-0.0200, 0.0200\]\): not better, no regression/,
    ],
    [
      'floating-point noise is no improvement',
      evidence({
        candidate: { version: '2', rocAuc: 0.78 + 1e-13, segments: [] },
        comparison: { diff: 1e-13, low: -0.01, high: 0.01, level: 0.95 },
      }),
      false,
      /ROC AUC 0.7800 = champion v1's 0.7800 .*: not better/,
    ],
    [
      'better by less than four decimals shows enough digits to tell the figures apart',
      evidence({
        candidate: { version: '2', rocAuc: 0.78003, segments: [] },
        comparison: { diff: 0.00003, low: -0.01, high: 0.01, level: 0.95 },
      }),
      true,
      /ROC AUC 0.780030 > champion v1's 0.780000/,
    ],
    [
      'the reason states both ROC AUCs and the signed difference',
      evidence(),
      true,
      /ROC AUC 0.8000 > champion v1's 0.7800 \(\+0.0200, 95% interval \[-0.0100, 0.0500\]\)/,
    ],
    [
      'no comparison though a champion exists',
      evidence({ comparison: null }),
      false,
      /no comparison with champion version 1/,
    ],
    [
      'a segment regresses beyond tolerance',
      evidence({
        candidate: {
          version: '2',
          rocAuc: 0.8,
          segments: [seg('plan=basic', 0.7), seg('region=north', 0.79)],
        },
      }),
      false,
      /plan=basic 0.7000 < 0.7800 \(n=100\)/,
    ],
    [
      'a small segment regressing is not judged',
      evidence({ candidate: { version: '2', rocAuc: 0.8, segments: [seg('plan=basic', 0.5, 10)] } }),
      true,
      /no segment of 30\+ rows/,
    ],
    [
      'a segment with one class (NaN AUC) is not judged',
      evidence({ candidate: { version: '2', rocAuc: 0.8, segments: [seg('plan=basic', Number.NaN)] } }),
      true,
      /no segment/,
    ],
    [
      'a behavioural test fails',
      evidence({
        behaviour: [
          ...ok,
          { name: 'more_payment_failures_never_lower_risk', passed: false, detail: '3 scores dropped' },
        ],
      }),
      false,
      /behaviour:more_payment_failures_never_lower_risk: 3 scores dropped/,
    ],
    [
      'already champion',
      evidence({ champion: { version: '2', rocAuc: 0.8, segments: [] } }),
      true,
      /already champion/,
    ],
  ])('%s → promote=%s', (_name, ev, promote, reason, margin?: { margin: number }) => {
    const d = decidePromotion(ev, { ...policy, ...(margin ? { minImprovement: margin.margin } : {}) });
    expect(d.promote).toBe(promote);
    expect(d.reason).toMatch(reason);
    expect(d.checks.every((c) => c.passed)).toBe(promote);
  });

  it('lists every check, not only the first failure', () => {
    const d = decidePromotion(
      evidence({
        candidate: { version: '2', rocAuc: 0.5, segments: [seg('plan=basic', 0.5)] },
        comparison: { diff: -0.28, low: -0.35, high: -0.2, level: 0.95 },
        behaviour: [{ name: 'obvious_cases_classified_right', passed: false, detail: 'wrong' }],
      }),
      policy,
    );
    expect(d.checks.filter((c) => !c.passed).map((c) => c.name)).toEqual([
      'min_roc_auc',
      'beats_champion',
      'no_segment_regression',
      'behaviour:obvious_cases_classified_right',
    ]);
  });
});

describe('the alias audit trail', () => {
  const ev = (
    at: string,
    version: string,
    previous: string | null,
    action: AliasEvent['action'] = 'promote',
  ): AliasEvent => ({
    at,
    alias: 'champion',
    version,
    previous,
    action,
    by: 'ops',
    reason: 'gate passed',
  });
  const trail = [
    ev('2026-11-10T00:00:00.000Z', '1', null),
    ev('2026-11-12T00:00:00.000Z', '3', '1'),
    ev('2026-11-13T06:00:00.000Z', '1', '3', 'rollback'),
  ];

  it.each([
    ['2026-11-09T23:59:59Z', null],
    ['2026-11-10T00:00:00Z', '1'],
    ['2026-11-11T12:00:00Z', '1'],
    ['2026-11-12T00:00:00Z', '3'],
    ['2026-11-13T05:59:59Z', '3'],
    ['2026-11-20T00:00:00Z', '1'],
  ])('at %s production was served by version %s', (t, version) => {
    expect(versionAt(trail, 'champion', t)).toBe(version);
  });

  it('reads the trail back from its one-line tags, in time order, ignoring other tags', () => {
    const tags = [...trail].reverse().map((e) => ({ key: auditTagKey(e), value: auditTagText(e) }));
    tags.push(
      { key: 'owner', value: 'team' },
      { key: 'driftwood.audit.broken', value: 'promoted champion' },
      { key: 'driftwood.audit.2026-11-10T00-00-00-000Z.champion.1', value: 'edited by hand' },
    );
    expect(parseAuditTags(tags)).toEqual(trail);
  });

  it('reads the JSON tags of older trails too', () => {
    const tags = [...trail].reverse().map((e) => ({ key: auditTagKey(e), value: JSON.stringify(e) }));
    tags.push({ key: 'driftwood.audit.broken', value: '{' });
    expect(parseAuditTags(tags)).toEqual(trail);
  });

  it('an event is one short line in MLflow: who moved which alias where, and why in brief', () => {
    const e: AliasEvent = {
      at: '2026-11-12T08:30:05.123Z',
      alias: 'champion',
      version: '4',
      previous: '3',
      action: 'promote',
      by: 'alice',
      reason: `min_roc_auc: holdout ROC AUC 0.8400 ≥ the floor 0.6; ${'every check\n'.repeat(200)}`,
    };
    const text = auditTagText(e, 'ROC AUC 0.8400 vs 0.8100 (+0.0300)');
    expect(text).toBe('promoted champion to v4 from v3 by alice: ROC AUC 0.8400 vs 0.8100 (+0.0300)');
    expect(auditTagText({ ...e, action: 'rollback', previous: null, reason: 'bad canary' })).toBe(
      'rolled back champion to v4 from none by alice: bad canary',
    );
    const long = auditTagText(e);
    expect(long.length).toBeLessThan(200);
    expect(long).not.toContain('\n');
    expect(long.endsWith('…')).toBe(true);
    const back = parseAuditTags([{ key: auditTagKey(e), value: text }]);
    expect(back).toEqual([{ ...e, reason: 'ROC AUC 0.8400 vs 0.8100 (+0.0300)' }]);
    expect(auditArtifactPath(e)).toBe('audit/2026-11-12T08-30-05-123Z.champion.4.json');
    const external: AliasEvent = { ...e, action: 'external', version: 'none', by: 'unknown', reason: 'x' };
    expect(parseAuditTags([{ key: auditTagKey(external), value: auditTagText(external) }])).toEqual([
      external,
    ]);
  });

  it('a promotion line states both ROC AUCs and their difference', () => {
    const evaluation = {
      holdoutRows: 100,
      candidateRocAuc: 0.84,
      championRocAuc: 0.81,
      diff: 0.03,
      interval: null,
    };
    expect(promotionSummary({ previous: '3', evaluation })).toBe('ROC AUC 0.8400 vs 0.8100 (+0.0300)');
    expect(
      promotionSummary({ previous: null, evaluation: { ...evaluation, championRocAuc: null, diff: null } }),
    ).toBe('ROC AUC 0.8400, no champion to compare with');
  });

  it("a version's evaluation tag is a line too: the figures, the interval, the rows and what failed", () => {
    const evaluation = {
      holdoutRows: 187,
      candidateRocAuc: 0.8631,
      championRocAuc: 0.8631,
      diff: 0,
      interval: [0, 0] as [number, number],
    };
    const checks = [
      { name: 'min_roc_auc', passed: true, detail: '' },
      { name: 'beats_champion', passed: false, detail: '' },
    ];
    expect(evaluationText({ previous: '1', evaluation, checks })).toBe(
      'ROC AUC 0.8631 vs 0.8631 (+0.0000), interval [0.0000, 0.0000], 187 holdout rows; failed: beats_champion',
    );
    expect(
      evaluationText({
        previous: null,
        evaluation: { ...evaluation, championRocAuc: null, diff: null, interval: null },
        checks: checks.slice(0, 1),
      }),
    ).toBe('ROC AUC 0.8631, no champion to compare with, 187 holdout rows; all 1 checks passed');
  });

  it.each([
    ['undoes the last promotion', trail.slice(0, 2), '3', { to: '1', from: '3' }],
    ['undoes a rollback when run twice', trail, '1', { to: '3', from: '1' }],
  ])('rollback %s', (_name, events, current, expected) => {
    expect(planRollback(events, 'champion', current)).toEqual(expected);
  });

  it.each([
    ['no move yet', [], null, /no move of 'champion'/],
    ['only the first champion', trail.slice(0, 1), '1', /first 'champion': nothing to roll back to/],
    ['alias moved outside driftwood', trail, '7', /moved outside driftwood; pass --version/],
  ])('refuses to roll back with %s', (_name, events, current, reason) => {
    const plan = planRollback(events, 'champion', current);
    expect(plan.to).toBeNull();
    expect((plan as { reason: string }).reason).toMatch(reason);
  });
});

describe('same training data and settings', () => {
  const run = (tags: Record<string, string>, params: Record<string, string>): Run => ({
    info: { run_id: 'r', experiment_id: '1', status: 'FINISHED', artifact_uri: 'x' },
    data: {
      tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
      params: Object.entries(params).map(([key, value]) => ({ key, value })),
    },
  });
  const base = run(
    { 'driftwood.data_digest': 'd1', 'driftwood.model_kind': 'logistic' },
    { seed: '7', l2: '0.001' },
  );

  it.each([
    [
      'the same digest and parameters, in any order',
      run({ 'driftwood.model_kind': 'logistic', 'driftwood.data_digest': 'd1' }, { l2: '0.001', seed: '7' }),
      true,
    ],
    [
      'another seed',
      run({ 'driftwood.data_digest': 'd1', 'driftwood.model_kind': 'logistic' }, { seed: '8', l2: '0.001' }),
      false,
    ],
    [
      'other data',
      run({ 'driftwood.data_digest': 'd2', 'driftwood.model_kind': 'logistic' }, { seed: '7', l2: '0.001' }),
      false,
    ],
    ['a run that names no data', run({}, { seed: '7', l2: '0.001' }), undefined],
  ])('%s → %s', (_name, other, expected) => {
    expect(sameTraining(base, other)).toBe(expected);
  });

  it('is unknown without both runs', () => {
    expect(sameTraining(base, undefined)).toBeUndefined();
  });
});

describe('tuning plans', () => {
  it('expands a grid in a stable order', () => {
    expect(gridOf({ kind: ['logistic', 'mlp'], learningRate: [0.01, 0.1] })).toEqual([
      { kind: 'logistic', learningRate: 0.01 },
      { kind: 'logistic', learningRate: 0.1 },
      { kind: 'mlp', learningRate: 0.01 },
      { kind: 'mlp', learningRate: 0.1 },
    ]);
  });

  it('draws a random search without repeats, the same for the same seed', () => {
    const space = { learningRate: [0.01, 0.03, 0.1], l2: [0, 0.001, 0.01] };
    const a = planTrials(space, 'random', 4, 9);
    expect(a).toHaveLength(4);
    expect(new Set(a.map((t) => JSON.stringify(t))).size).toBe(4);
    expect(planTrials(space, 'random', 4, 9)).toEqual(a);
    expect(planTrials(space, 'grid', 4, 9)).toEqual(gridOf(space).slice(0, 4));
  });
});

describe('hyper-parameter and policy flags', () => {
  it('reads the flags given and leaves the rest to the defaults', () => {
    expect(
      modelParamsFromFlags({ model: 'mlp', 'hidden-units': '32,16', epochs: '5', 'no-class-weights': true }),
    ).toEqual({ kind: 'mlp', hiddenUnits: [32, 16], epochs: 5, classWeighting: false });
    expect(policyFromFlags({ margin: '0.01' })).toEqual({ ...DEFAULT_POLICY, minImprovement: 0.01 });
  });

  it.each([
    [{ model: 'forest' }, /--model: expected auto or logistic or mlp or gbdt, got 'forest'/],
    [{ epochs: '1.5' }, /--epochs: expected a whole number, got '1.5'/],
    [{ 'hidden-units': '32,a' }, /--hidden-units: expected layer widths like 32 or 32,16/],
  ])('names the bad flag in %j', (values, message) => {
    expect(() => modelParamsFromFlags(values)).toThrow(message);
  });

  it('parses a search space and rejects unknown parameters', () => {
    expect(searchSpaceFromFlag('kind=logistic,mlp;hiddenUnits=16|32x16;learningRate=0.01,0.1')).toEqual({
      kind: ['logistic', 'mlp'],
      hiddenUnits: [[16], [32, 16]],
      learningRate: [0.01, 0.1],
    });
    expect(() => searchSpaceFromFlag('depth=3')).toThrow(/unknown parameter 'depth'/);
  });
});
