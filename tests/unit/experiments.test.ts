import { describe, expect, it } from 'vitest';
import { customerBucket } from '../../serving/src/routing/canary.js';
import {
  analyseExperiment,
  assignVariant,
  type ExperimentDeclaration,
  joinOutcomes,
  mixtureSprt,
  moments,
  type Observation,
  validateExperiment,
} from '../../tasks/src/experiments/index.js';
import { Rng } from '../../tasks/src/random.js';

const valid = {
  name: 'gbdt-vs-logistic',
  dataset: 'churn',
  variants: [
    { name: 'control', model: 'champion', allocation: 0.5 },
    { name: 'treatment', model: '7', allocation: 0.5 },
  ],
  primary_metric: 'brier',
  minimum_sample: 200,
  stop_rule: { max_samples_per_variant: 5000 },
  alpha: 0.05,
};

describe('an experiment declaration', () => {
  it('is filled with its defaults when valid', () => {
    const d = validateExperiment(valid);
    expect(d).toMatchObject({ control: 'control', unit: 'customer', mixture_sd: 0.02 });
    expect(validateExperiment({ ...valid, dataset: undefined }, 'churn').dataset).toBe('churn');
  });

  it.each([
    [{ name: 'Bad Name' }, 'experiment name:'],
    [{ dataset: undefined }, 'experiment dataset:'],
    [{ variants: [valid.variants[0]] }, 'experiment variants: expected 2 to 5 variants, got 1'],
    [
      { variants: [valid.variants[0], { ...valid.variants[1], allocation: -0.5 }] },
      'experiment variants[1].allocation:',
    ],
    [
      { variants: [valid.variants[0], { ...valid.variants[1], allocation: 0.4 }] },
      'the allocations add up to 0.9',
    ],
    [
      { variants: [valid.variants[0], { ...valid.variants[1], name: 'control' }] },
      'experiment variants[1].name:',
    ],
    [
      { variants: [valid.variants[0], { ...valid.variants[1], model: 'a b' }] },
      'experiment variants[1].model:',
    ],
    [
      { variants: [valid.variants[0], { ...valid.variants[1], weight: 1 }] },
      'experiment variants[1].weight: unknown field',
    ],
    [{ control: 'nobody' }, 'experiment control:'],
    [{ unit: 'request' }, "experiment unit: only 'customer'"],
    [{ primary_metric: 'roc_auc' }, 'experiment primary_metric: expected one of brier, log_loss, cost'],
    [{ minimum_sample: 0 }, 'experiment minimum_sample:'],
    [{ stop_rule: {} }, 'experiment stop_rule: give max_samples_per_variant or max_days'],
    [
      { stop_rule: { max_samples_per_variant: 10 } },
      'experiment stop_rule.max_samples_per_variant: 10 is below minimum_sample',
    ],
    [{ stop_rule: { max_days: 1.5 } }, 'experiment stop_rule.max_days:'],
    [{ alpha: 0.5 }, 'experiment alpha:'],
    [{ mixture_sd: -1 }, 'experiment mixture_sd:'],
    [{ colour: 'red' }, 'experiment colour: unknown field'],
  ])('refuses %j naming the field', (change, message) => {
    expect(() => validateExperiment({ ...valid, ...change })).toThrow(message);
  });
});

describe('assignment', () => {
  const variants = [
    { name: 'a', allocation: 0.2 },
    { name: 'b', allocation: 0.8 },
  ];
  it('is sticky per customer, follows the allocation and is independent of the canary bucket', () => {
    const counts = { a: 0, b: 0 };
    let bothLow = 0;
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      const id = `C${i}`;
      const v = assignVariant('exp-1', id, variants);
      expect(assignVariant('exp-1', id, variants)).toBe(v);
      counts[v.name as 'a' | 'b']++;
      if (v.name === 'a' && customerBucket(id) < 0.2) bothLow++;
    }
    // Binomial(10 000, 0.2): sd 40, so ±4 sd is 160.
    expect(Math.abs(counts.a - 0.2 * n)).toBeLessThan(160);
    // Independent of the canary's bucket: P(a and canary) = 0.2 · 0.2 (sd 20).
    expect(Math.abs(bothLow - 0.04 * n)).toBeLessThan(80);
    // Another experiment splits the same customers afresh.
    const same = Array.from({ length: 2000 }, (_, i) => `C${i}`).filter(
      (id) => assignVariant('exp-1', id, variants).name === assignVariant('exp-2', id, variants).name,
    ).length;
    expect(Math.abs(same - 2000 * (0.2 * 0.2 + 0.8 * 0.8))).toBeLessThan(100);
  });
});

describe('the mixture SPRT', () => {
  it('finds no evidence in equal means and strong evidence in a large difference', () => {
    const same = mixtureSprt(
      { n: 500, mean: 0.2, variance: 0.04 },
      { n: 500, mean: 0.2, variance: 0.04 },
      { tau: 0.02, alpha: 0.05 },
    );
    expect(same.pValue).toBe(1);
    expect(same.low).toBeLessThan(0);
    expect(same.high).toBeGreaterThan(0);
    const apart = mixtureSprt(
      { n: 500, mean: 0.25, variance: 0.04 },
      { n: 500, mean: 0.2, variance: 0.04 },
      { tau: 0.02, alpha: 0.05 },
    );
    // By hand: V = 2 · 0.04 / 500 = 1.6e-4, τ² = 4e-4, θ̂ = −0.05:
    // ln Λ = ½ ln(1.6e-4 / 5.6e-4) + 4e-4 · 0.0025 / (2 · 1.6e-4 · 5.6e-4) = −0.6264 + 5.5804.
    expect(apart.logLikelihoodRatio).toBeCloseTo(4.954, 3);
    expect(apart.pValue).toBeCloseTo(Math.exp(-4.954), 5);
    expect(apart.high).toBeLessThan(0);
  });

  it('computes moments like the textbook', () => {
    expect(moments([1, 2, 3, 4])).toEqual({ n: 4, mean: 2.5, variance: 5 / 3 });
  });
});

/**
 * Simulated experiments, each looked at `looks` times ("daily") as customers accrue. Outcomes follow
 * the truth p; the control answers p, the treatment p itself (A/A) or a better-calibrated score.
 */
function simulate(opts: {
  runs: number;
  looks: number;
  perLook: number;
  treatmentBetter: boolean;
  seed: number;
}) {
  const declaration: ExperimentDeclaration = validateExperiment({
    ...valid,
    minimum_sample: 100,
    stop_rule: { max_samples_per_variant: opts.looks * opts.perLook },
  });
  const rng = new Rng(opts.seed);
  const decisions = { promote: 0, keep: 0, inconclusive: 0 };
  let naiveFalse = 0;
  for (let r = 0; r < opts.runs; r++) {
    const obs: Observation[] = [];
    let previous: Record<string, number> = {};
    let naiveRejected = false;
    let last: ReturnType<typeof analyseExperiment> | undefined;
    for (let look = 1; look <= opts.looks; look++) {
      for (let i = 0; i < opts.perLook * 2; i++) {
        const variant = i % 2 === 0 ? 'control' : 'treatment';
        const truth = 0.05 + 0.55 * rng.next();
        const outcome = rng.next() < truth ? 1 : 0;
        // The control's score is off by a shift the treatment does not have (when it is better).
        const off = variant === 'control' || !opts.treatmentBetter ? Math.min(0.99, truth + 0.2) : truth;
        const probability = opts.treatmentBetter ? off : truth;
        obs.push({ variant, probability, predicted: probability >= 0.3 ? 1 : 0, outcome });
      }
      last = analyseExperiment(declaration, obs, {
        now: look * 86_400_000,
        startedAt: 0,
        look,
        costs: { falsePositive: 1, falseNegative: 1 },
        previousPValues: previous,
        resamples: 0,
      });
      previous = Object.fromEntries(last.comparisons.map((c) => [c.variant, c.pValue]));
      // A fixed-sample z-test read at every look: what peeking does to a test not built for it.
      const c = last.comparisons[0];
      if (c) {
        const z = Math.abs(c.difference) / Math.sqrt(zVariance(obs));
        if (z > 1.959963984540054) naiveRejected = true;
      }
      if (last.final) break;
    }
    if (last) decisions[last.decision]++;
    if (naiveRejected) naiveFalse++;
  }
  return { decisions, naiveFalse };
}

function zVariance(obs: Observation[]): number {
  const loss = (v: string) => obs.filter((o) => o.variant === v).map((o) => (o.probability - o.outcome) ** 2);
  const a = moments(loss('control'));
  const b = moments(loss('treatment'));
  return a.variance / a.n + b.variance / b.n;
}

describe('the decision over repeated simulated experiments', () => {
  it('with identical variants stays inconclusive at the declared error rate, however often it looks', () => {
    const runs = 300;
    const { decisions, naiveFalse } = simulate({
      runs,
      looks: 8,
      perLook: 100,
      treatmentBetter: false,
      seed: 11,
    });
    const wrong = decisions.promote + decisions.keep;
    // α = 0.05: the mSPRT's false decisions over 8 looks stay under it ...
    expect(wrong / runs).toBeLessThanOrEqual(0.05);
    // ... where a fixed-sample test read at the same 8 looks is fooled far more often.
    expect(naiveFalse / runs).toBeGreaterThan(0.1);
    console.log(
      `A/A, ${runs} runs × 8 looks: mSPRT decided wrongly ${wrong} times, the peeking z-test ${naiveFalse}`,
    );
  });

  it('promotes the variant that is truly better', () => {
    const runs = 100;
    const { decisions } = simulate({ runs, looks: 8, perLook: 100, treatmentBetter: true, seed: 12 });
    expect(decisions.keep).toBe(0);
    expect(decisions.promote / runs).toBeGreaterThanOrEqual(0.9);
    console.log(
      `A/B (Brier 0.04 apart), ${runs} runs × 8 looks: promoted ${decisions.promote}, inconclusive ${decisions.inconclusive}`,
    );
  });

  it('keeps the control when it is the better one', () => {
    const d = validateExperiment({ ...valid, minimum_sample: 100 });
    const rng = new Rng(5);
    const obs: Observation[] = [];
    for (let i = 0; i < 3000; i++) {
      const truth = 0.05 + 0.55 * rng.next();
      const variant = i % 2 === 0 ? 'control' : 'treatment';
      const probability = variant === 'control' ? truth : Math.min(0.99, truth + 0.2);
      obs.push({
        variant,
        probability,
        predicted: probability >= 0.3 ? 1 : 0,
        outcome: rng.next() < truth ? 1 : 0,
      });
    }
    const a = analyseExperiment(d, obs, {
      now: 1,
      startedAt: 0,
      look: 1,
      costs: { falsePositive: 1, falseNegative: 5 },
    });
    expect(a.decision).toBe('keep');
    expect(a.winner).toBe('control');
    const control = a.variants[0];
    expect(control?.roc_auc.low).toBeLessThan(control?.roc_auc.value as number);
    expect(control?.calibration_error.value).toBeLessThan(a.variants[1]?.calibration_error.value as number);
    expect(control?.calibration_error.low).toBeLessThanOrEqual(control?.calibration_error.value as number);
  });

  it('takes no decision before the minimum sample', () => {
    const d = validateExperiment({ ...valid, minimum_sample: 5000, stop_rule: { max_days: 30 } });
    const obs: Observation[] = Array.from({ length: 400 }, (_, i) => ({
      variant: i % 2 ? 'treatment' : 'control',
      probability: i % 2 ? 0.1 : 0.9,
      predicted: 0,
      outcome: 0,
    }));
    const a = analyseExperiment(d, obs, {
      now: 86_400_000,
      startedAt: 0,
      look: 1,
      costs: { falsePositive: 1, falseNegative: 1 },
    });
    expect(a).toMatchObject({ decision: 'inconclusive', final: false });
    expect(a.reason).toMatch(/^collecting: 200 labelled customers/);
    const late = analyseExperiment(d, obs, {
      now: 31 * 86_400_000,
      startedAt: 0,
      look: 2,
      costs: { falsePositive: 1, falseNegative: 1 },
    });
    expect(late.final).toBe(false);
  });
});

describe('joining outcomes', () => {
  const source = {
    table: 'labels',
    idColumn: 'customer_id',
    eventColumn: 'churned_at',
    reportedColumn: 'reported_at',
    horizonHours: 48,
    labelDelayHours: 24,
  };
  const H = 3_600_000;
  it('counts an event inside the horizon, leaves out earlier events and predictions whose labels are not all in', () => {
    const exposures = [
      { token: 'a', variant: 'x', ts: 0, probability: 0.5, predicted: 1 as const },
      { token: 'b', variant: 'x', ts: 0, probability: 0.5, predicted: 1 as const },
      { token: 'c', variant: 'x', ts: 10 * H, probability: 0.5, predicted: 1 as const },
      { token: 'd', variant: 'x', ts: 0, probability: 0.5, predicted: 1 as const },
      { token: 'e', variant: 'x', ts: 30 * H, probability: 0.5, predicted: 1 as const },
    ];
    const labels = {
      eventAt: new Map([
        ['a', 5 * H],
        ['b', 60 * H],
        ['c', 1 * H],
      ]),
      watermark: 100 * H,
    };
    const got = joinOutcomes(exposures, labels, source);
    // a: inside [0, 48 h); b: after it; c: churned before its prediction (out); d: no event; e: too recent.
    expect(got.map((o) => o.outcome)).toEqual([1, 0, 0]);
    expect(joinOutcomes(exposures, { eventAt: new Map(), watermark: undefined }, source)).toEqual([]);
  });
});
