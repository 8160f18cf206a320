import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MlflowClient, Warehouse } from '@driftwood/tasks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadContract } from '../../tasks/src/contracts/index.js';
import type { Contract } from '../../tasks/src/contracts/types.js';
import {
  assignVariant,
  findExperiment,
  runExperimentLooks,
  startExperimentRun,
  validateExperiment,
} from '../../tasks/src/experiments/index.js';
import { ensureContractTables } from '../../tasks/src/ingest/schema.js';
import { tokenise } from '../../tasks/src/pii.js';
import { readAuditTrail } from '../../tasks/src/promote/index.js';
import { Rng } from '../../tasks/src/random.js';
import { openWarehouse } from '../../tasks/src/warehouse/db.js';
import { mlflowClient, seededWarehouse, silentLog, tempHome, uniqueName } from '../support/env.js';
import { BEST_PARAMS, promotionSteps } from '../support/promotion.js';

/**
 * Issue 23, item 3, the daily look: a look is counted once per as-of time, and a `promote` decision
 * of an experiment declared with `on_decision: promote` makes the winner champion through evaluate
 * and the promotion gate (real trained versions, the suite's MLflow), while the default records it
 * and a winner the gate refuses leaves champion where it was. Predictions are written to the log
 * as the API writes them and labels drawn from the treatment's own probabilities, so the treatment
 * truly is better on live traffic and the sequential test decides `promote`.
 */
const PII_KEY = 'experiments-daily-key-0123456789';
const H = 3_600_000;
const STARTED = Date.parse('2026-11-10T00:00:00Z');
const AS_OF = STARTED + 150 * H;
const CUSTOMERS = 800;
const BOOTSTRAP = { samples: 100, seed: 17, level: 0.95 };

describe('the daily experiment look and its promote action', () => {
  let mlflow: MlflowClient;
  let trainingDb: Warehouse;
  let labelsDb: Warehouse;
  let churn: Contract;
  let home: string;
  let modelName: string;
  let champion: string;
  let best: string;

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-abd');
    ({ db: trainingDb } = await seededWarehouse({ hours: 168, seed: 13, customers: 700 }));
    const steps = promotionSteps(mlflow, trainingDb, { modelName, experiment: uniqueName('exp-abd') });
    champion = (await steps.train()).modelVersion;
    await steps.promote(champion);
    best = (await steps.train(BEST_PARAMS)).modelVersion;
    home = tempHome('driftwood-abd-');
    churn = await loadContract('churn');
    labelsDb = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    await ensureContractTables(labelsDb, churn);
  }, 600_000);

  afterAll(async () => {
    await trainingDb?.destroy();
    await labelsDb?.destroy();
  });

  const deps = () => ({
    mlflow,
    warehouse: labelsDb,
    loadContract: async () => churn,
    log: silentLog,
    now: Date.now,
  });
  const look = (options: { experiments?: string[]; dataset?: string; asOf?: number }) =>
    runExperimentLooks(
      {
        ...options,
        asOf: options.asOf ?? AS_OF,
        predictionsDir: path.join(home, 'predictions'),
        piiKey: PII_KEY,
        resamples: 0,
        action: { bootstrap: BOOTSTRAP },
      },
      deps(),
    );

  /** Declares an experiment of `champion` against `treatment` as the API records one. */
  async function declare(name: string, treatment: string, extra: Record<string, unknown> = {}) {
    const declaration = validateExperiment({
      name,
      dataset: name,
      variants: [
        { name: 'control', model: 'champion', allocation: 0.5 },
        { name: 'treatment', model: treatment, allocation: 0.5 },
      ],
      primary_metric: 'brier',
      minimum_sample: 100,
      stop_rule: { max_days: 28 },
      alpha: 0.05,
      ...extra,
    });
    const control = (await mlflow.getVersionByAlias(modelName, 'champion'))?.version as string;
    return startExperimentRun(mlflow, {
      declaration,
      model_name: modelName,
      variants: declaration.variants.map((v) => ({
        ...v,
        version: v.name === 'control' ? control : treatment,
      })),
      started_at: new Date(STARTED).toISOString(),
    });
  }

  /**
   * The experiment's customers in the prediction log an hour after it started: the control answers
   * 0.5 to everyone, the treatment the customer's true churn probability, which the labels follow.
   */
  async function trafficAndLabels(name: string, seed: number) {
    const rng = new Rng(seed);
    const ts = STARTED + H;
    const iso = new Date(ts).toISOString();
    const lines: string[] = [];
    const labels: Record<string, unknown>[] = [];
    const variants = [
      { name: 'control', model: 'champion', allocation: 0.5 },
      { name: 'treatment', model: 't', allocation: 0.5 },
    ];
    for (let i = 0; i < CUSTOMERS; i++) {
      const id = `${name}-c${i}`;
      const truth = 0.05 + 0.9 * rng.next();
      const variant = assignVariant(name, id, variants).name;
      const probability = variant === 'treatment' ? truth : 0.5;
      lines.push(
        JSON.stringify({
          ts: iso,
          dataset: 'churn',
          request_id: `r${i}`,
          served: true,
          customer_token: tokenise(id, PII_KEY),
          probability,
          label: probability >= 0.5 ? 1 : 0,
          experiment: name,
          variant,
        }),
      );
      if (rng.next() < truth)
        labels.push({ customer_id: id, churned_at: ts + H, reported_at: ts + 2 * H, source_key: 'test' });
    }
    // The label feed has come 100 h past the predictions: their 48 h horizon and 24 h delay are over.
    labels.push({
      customer_id: `${name}-watermark`,
      churned_at: ts + 90 * H,
      reported_at: ts + 100 * H,
      source_key: 'test',
    });
    const dir = path.join(home, 'predictions', `dt=${iso.slice(0, 10)}`, `hr=${iso.slice(11, 13)}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'predictions.jsonl'), `${lines.join('\n')}\n`, { flag: 'a' });
    for (let i = 0; i < labels.length; i += 200) await labelsDb('labels').insert(labels.slice(i, i + 200));
  }

  const tagsOf = async (name: string) => {
    const found = await findExperiment(mlflow, name);
    return {
      found,
      tags: Object.fromEntries((found?.run.data.tags ?? []).map((t) => [t.key, t.value])),
    };
  };
  const championNow = async () => (await mlflow.getVersionByAlias(modelName, 'champion'))?.version;

  it('refuses an on_decision it does not know, naming the field', () => {
    const declaration = {
      name: 'x',
      variants: [
        { name: 'control', model: 'champion', allocation: 0.5 },
        { name: 'treatment', model: '2', allocation: 0.5 },
      ],
      primary_metric: 'brier',
      minimum_sample: 100,
      stop_rule: { max_days: 28 },
      alpha: 0.05,
    };
    expect(validateExperiment(declaration, 'churn').on_decision).toBe('record');
    expect(() => validateExperiment({ ...declaration, on_decision: 'yes' }, 'churn')).toThrow(
      /^experiment on_decision: expected 'record' .* or 'promote' .*, got 'yes'$/,
    );
  });

  it('counts one look per as-of time: a re-run of the same date adds none, the next day adds one', async () => {
    const name = uniqueName('abd-looks').toLowerCase();
    await declare(name, best);
    const first = await look({ dataset: name });
    expect(first.looks).toMatchObject([{ experiment: name, looked: true, analysis: { look: 1 } }]);
    const again = await look({ dataset: name });
    expect(again.looks).toMatchObject([{ experiment: name, looked: false, analysis: { look: 1 } }]);
    expect(again.looks[0]?.reason).toContain('would count the same labels again');
    const earlier = await look({ experiments: [name], asOf: AS_OF - 24 * H });
    expect(earlier.looks[0]?.looked).toBe(false);
    const next = await look({ dataset: name, asOf: AS_OF + 24 * H });
    expect(next.looks).toMatchObject([{ looked: true, analysis: { look: 2 } }]);
    const { found } = await tagsOf(name);
    const history = await mlflow.getMetricHistory(found?.run.info.run_id as string, 'look');
    expect(history.map((m) => m.value)).toEqual([1, 2]);
  });

  it('by default records a promote decision and leaves champion where it was', async () => {
    const name = uniqueName('abd-record').toLowerCase();
    await declare(name, best);
    await trafficAndLabels(name, 41);
    const [result] = (await look({ dataset: name })).looks;
    expect(result).toMatchObject({ looked: true, analysis: { decision: 'promote', winner: 'treatment' } });
    expect(result?.action).toMatchObject({ state: 'recorded', version: best });
    expect(await championNow()).toBe(champion);
    const { tags } = await tagsOf(name);
    expect(tags['driftwood.ab.action']).toBe('recorded');
    expect(tags['mlflow.note.content']).toContain(`Decision: promote treatment (version ${best}) recorded`);
  });

  it('with on_decision: promote makes the winner champion through the gate and ends the experiment', async () => {
    const name = uniqueName('abd-promote').toLowerCase();
    await declare(name, best, { on_decision: 'promote' });
    await trafficAndLabels(name, 42);
    const [result] = (await look({ dataset: name })).looks;
    expect(result?.analysis?.decision).toBe('promote');
    expect(result?.action).toMatchObject({ state: 'promoted', version: best });
    expect(await championNow()).toBe(best);
    const { found, tags } = await tagsOf(name);
    expect(found?.stored.status).toBe('decided');
    expect(found?.run.info.status).toBe('FINISHED');
    expect(tags['driftwood.ab.action']).toBe('promoted');
    expect(tags['driftwood.ab.action_detail']).toContain(`in place of version ${champion}`);
    expect(tags['mlflow.note.content']).toContain(
      `Decision: treatment (version ${best}) promoted to champion`,
    );
    // The same promotion path as the pipeline's: the gate's verdict on the version, the audit trail.
    const mv = await mlflow.getModelVersion(modelName, best);
    expect(mv.tags?.find((t) => t.key === 'driftwood.gate.champion')?.value).toMatch(/^passed at /);
    const [move] = (await readAuditTrail(mlflow, modelName)).slice(-1);
    expect(move).toMatchObject({ action: 'promote', version: best, previous: champion });
    expect(move?.by).toBe(`experiment ${name}`);
    // A re-run of the same date: the experiment has ended, nothing more happens.
    expect((await look({ dataset: name })).looks).toEqual([]);
  });

  it('leaves champion where it was when the gate refuses the winner, and says so on the run', async () => {
    // The old champion wins on this traffic but ranks the holdout far worse than the new one.
    const name = uniqueName('abd-refused').toLowerCase();
    await declare(name, champion, { on_decision: 'promote' });
    await trafficAndLabels(name, 43);
    const [result] = (await look({ dataset: name })).looks;
    expect(result?.analysis?.decision).toBe('promote');
    expect(result?.action).toMatchObject({ state: 'refused', version: champion });
    expect(await championNow()).toBe(best);
    const { found, tags } = await tagsOf(name);
    expect(found?.stored.status).toBe('decided');
    expect(tags['driftwood.ab.action']).toBe('refused');
    expect(tags['driftwood.ab.action_detail']).toContain(`champion stays version ${best}`);
    const mv = await mlflow.getModelVersion(modelName, champion);
    expect(mv.tags?.find((t) => t.key === 'driftwood.gate.champion')?.value).toMatch(/^failed at /);
  });
});
