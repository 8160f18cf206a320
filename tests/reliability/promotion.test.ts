import type { MlflowClient, Warehouse } from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { hashPassword, parseCredentials } from '../../serving/src/auth/credentials.js';
import type { TrainResult } from '../../tasks/src/train/index.js';
import { mlflowClient, seededWarehouse, uniqueName } from '../support/env.js';
import {
  CHALLENGER_PARAMS,
  CORRUPTIONS,
  promotionSteps,
  registerCorruptCopy,
  settleRace,
} from '../support/promotion.js';
import { atScale, recordRow } from '../support/reliability.js';
import { sampleCustomer } from '../support/serving-model.js';

const PREDICTOR = `Basic ${Buffer.from('predictor:predictor-password-1').toString('base64')}`;

/**
 * Reliability (issue 20, problems 5 and 6): concurrent promotes of different versions end with one
 * champion and an audit chain where each move names the version champion held just before it; and
 * corrupt versions moved straight to champion are never served (0 predictions answer 5xx).
 */
describe('reliability: promotion races and corrupt versions', () => {
  const concurrent = atScale({ ci: 3, full: 10 });
  const kinds = atScale({ ci: ['inf_onehot_weight', 'constant_one'] as const, full: CORRUPTIONS });
  let db: Warehouse;
  let mlflow: MlflowClient;
  let modelName: string;
  let steps: ReturnType<typeof promotionSteps>;
  let champion0: TrainResult;
  let candidates: string[];

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-rel-promote');
    ({ db } = await seededWarehouse({ hours: 168, seed: 13, customers: 700 }));
    steps = promotionSteps(mlflow, db, { modelName, experiment: uniqueName('exp-rel-promote') });
    champion0 = await steps.train();
    await steps.promote(champion0.modelVersion);
    candidates = [];
    // Each candidate measurably better than the champion (other settings), alike among themselves.
    for (let i = 0; i < concurrent; i++) candidates.push((await steps.train(CHALLENGER_PARAMS)).modelVersion);
    for (const v of candidates) await steps.evaluate(v);
  }, 900_000);

  afterAll(async () => {
    await db?.destroy();
  });

  it(`${concurrent} concurrent promotes: one champion, correct audit`, async () => {
    const settled = await Promise.allSettled(candidates.map((v) => steps.promote(v)));
    const race = await settleRace(mlflow, modelName, settled);
    const ok =
      race.promoted.length === 1 &&
      race.champion === race.promoted[0] &&
      race.championChanged === concurrent - 1 &&
      race.stagingErrors === 0 &&
      race.otherErrors.length === 0 &&
      race.chainBreaks.length === 0 &&
      race.leftoverAliases.length === 0;
    recordRow({
      check: `${concurrent} concurrent promotes`,
      goal: 'one champion, correct audit',
      measured: `${race.promoted.length} promoted, ${race.championChanged} refused as champion-changed, ${race.stagingErrors} staging errors, ${race.otherErrors.length} other errors, ${race.chainBreaks.length} audit chain breaks over ${race.moves.length} moves`,
      ok,
    });
    expect(race.otherErrors).toEqual([]);
    expect(race.chainBreaks).toEqual([]);
    expect(ok).toBe(true);
  }, 600_000);

  describe('corrupt versions moved straight to champion', () => {
    let app: FastifyInstance;
    beforeAll(async () => {
      const credentials = parseCredentials(`predictor:predict:${await hashPassword('predictor-password-1')}`);
      app = await buildApp({ mlflow, modelName, alias: 'champion', credentials, pollMs: 0 });
      await app.ready();
    });
    afterAll(async () => {
      await app?.close();
    });

    it(`0 of ${kinds.length} corrupt versions served`, async () => {
      const served = app.models.champion()?.info.version as string;
      const t = app.models.champion()?.model.transform;
      const rows = (t?.categorical.find((c) => c.name === 'plan')?.categories ?? []).flatMap((plan) =>
        (t?.categorical.find((c) => c.name === 'region')?.categories ?? []).map((region) => ({
          ...sampleCustomer,
          plan,
          region,
        })),
      );
      let servedCorrupt = 0;
      let failedPredictions = 0;
      let predictions = 0;
      const reasons: string[] = [];
      for (const kind of kinds) {
        const bad = await registerCorruptCopy(
          mlflow,
          { modelName, version: served, experimentId: champion0.experimentId, runId: champion0.runId },
          kind,
        );
        await mlflow.setAlias(modelName, 'champion', bad);
        const [outcome] = await app.models.refresh();
        reasons.push(`${kind}: ${outcome?.error ?? 'accepted'}`);
        if (app.models.champion()?.info.version === bad) servedCorrupt++;
        for (const row of rows) {
          const res = await app.inject({
            method: 'POST',
            url: '/v1/predict',
            payload: row,
            headers: { authorization: PREDICTOR },
          });
          predictions++;
          if (res.statusCode !== 200) failedPredictions++;
        }
      }
      await mlflow.setAlias(modelName, 'champion', served);
      const ok = servedCorrupt === 0 && failedPredictions === 0;
      recordRow({
        check: `corrupt versions (${kinds.join(', ')})`,
        goal: `0 of ${kinds.length} corrupt versions served`,
        measured: `${servedCorrupt} of ${kinds.length} served; ${failedPredictions} of ${predictions} predictions failed`,
        ok,
      });
      expect(reasons.filter((r) => r.endsWith('accepted'))).toEqual([]);
      expect(ok).toBe(true);
    }, 300_000);
  });
});
