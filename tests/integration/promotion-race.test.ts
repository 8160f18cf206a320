import type { DriftwoodError, MlflowClient, Warehouse } from '@driftwood/tasks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { promoteResponse, runPromoteStep } from '../../serving/src/promote/promote-step.js';
import { lockNameOf, withAliasLock } from '../../tasks/src/promote/lock.js';
import { runRollback } from '../../tasks/src/promote/rollback.js';
import { mlflowClient, seededWarehouse, silentLog, uniqueName } from '../support/env.js';
import { BEST_PARAMS, CHALLENGER_PARAMS, promotionSteps, settleRace } from '../support/promotion.js';

/**
 * Issue 20, problem 5: concurrent promotes shared the `staging` alias ("staging resolved to version
 * X, expected Y", exit 1), each judged against the champion it read at start, the last writer won
 * and every move recorded the same previous version. Now each stages under its own alias and moves
 * champion by compare-and-set under a lock: one wins, the others refuse with CHAMPION_CHANGED (exit
 * 2), and every audited move names the version champion really held before it.
 */
const CANDIDATES = 10;

describe('concurrent promotes of different versions', () => {
  let db: Warehouse;
  let mlflow: MlflowClient;
  let modelName: string;
  let steps: ReturnType<typeof promotionSteps>;
  let champion0: string;
  let candidates: string[];

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-race');
    ({ db } = await seededWarehouse({ hours: 168, seed: 13, customers: 700 }));
    steps = promotionSteps(mlflow, db, { modelName, experiment: uniqueName('exp-race') });
    champion0 = (await steps.train()).modelVersion;
    await steps.promote(champion0);
    candidates = [];
    // Candidates trained alike, each measurably better than the champion: only the race decides.
    for (let i = 0; i < CANDIDATES; i++) candidates.push((await steps.train(CHALLENGER_PARAMS)).modelVersion);
    // Every candidate judged against the same champion, as a DAG run per version would.
    for (const v of candidates) await steps.evaluate(v);
  }, 600_000);

  afterAll(async () => {
    await db?.destroy();
  });

  it(`${CANDIDATES} at once: one champion, the rest refused as champion-changed, a correct audit chain`, async () => {
    const settled = await Promise.allSettled(candidates.map((v) => steps.promote(v)));
    const race = await settleRace(mlflow, modelName, settled);
    expect(race.stagingErrors).toBe(0);
    expect(race.otherErrors).toEqual([]);
    expect(race.promoted).toHaveLength(1);
    expect(race.championChanged).toBe(CANDIDATES - 1);
    expect(race.champion).toBe(race.promoted[0]);
    expect(race.chainBreaks).toEqual([]);
    expect(race.moves.map((m) => [m.previous, m.version])).toEqual([
      [null, champion0],
      [champion0, race.promoted[0]],
    ]);
    expect(race.leftoverAliases).toEqual([]);
    await expect(mlflow.getRegisteredModel(lockNameOf(modelName))).rejects.toThrow(/RESOURCE_DOES_NOT_EXIST/);
    const refusal = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult;
    expect(refusal.reason.message).toBe(
      `champion changed from ${champion0} to ${race.promoted[0]} since evaluation; re-evaluate`,
    );

    // Re-evaluated against the champion of now, a loser is judged again: trained like the winner,
    // it is the same model and is refused as not better. A better version is promoted in sequence,
    // and a rollback goes back to the version champion really held before it.
    const loser = candidates.find((v) => v !== race.promoted[0]) as string;
    await steps.evaluate(loser);
    const same = (await steps.promote(loser).catch((e: unknown) => e)) as DriftwoodError;
    expect(same.code).toBe('GATE_NOT_PASSED');
    expect(same.message).toMatch(
      new RegExp(
        `= champion v${race.promoted[0]}'s [0-9.]+ \\(same training data and settings\\): not better`,
      ),
    );
    const best = (await steps.train(BEST_PARAMS)).modelVersion;
    await steps.evaluate(best);
    expect(await steps.promote(best)).toMatchObject({ promoted: true, previous: race.promoted[0] });
    const back = await runRollback(
      { modelName, alias: 'champion' },
      { mlflow, log: silentLog, now: Date.now, user: 'race-test' },
    );
    expect(back).toMatchObject({ version: race.promoted[0], previous: best });
    expect((await settleRace(mlflow, modelName, [])).chainBreaks).toEqual([]);
  }, 300_000);

  it('the alias lock serialises holders and takes over one abandoned past its lease', async () => {
    const lock = lockNameOf(modelName);
    const order: string[] = [];
    const hold = (name: string) =>
      withAliasLock(mlflow, modelName, async () => {
        order.push(`${name} in`);
        await new Promise((r) => setTimeout(r, 50));
        order.push(`${name} out`);
      });
    await Promise.all([hold('a'), hold('b'), hold('c')]);
    for (let i = 0; i < order.length; i += 2) expect(order[i + 1]).toBe(order[i]?.replace(' in', ' out'));
    // A holder that died: the lock stays until its lease is over, then the next promotion removes it.
    await mlflow.createRegisteredModel(lock, 'driftwood alias lock of a process that died');
    await expect(
      withAliasLock(mlflow, modelName, async () => 'never', { leaseMs: 60_000, waitMs: 300 }),
    ).rejects.toThrow(`another promotion or rollback of ${modelName} holds ${lock}`);
    expect(await withAliasLock(mlflow, modelName, async () => 'taken over', { leaseMs: 0 })).toBe(
      'taken over',
    );
    await expect(mlflow.getRegisteredModel(lock)).rejects.toThrow(/RESOURCE_DOES_NOT_EXIST/);
  });

  it('the API’s promote step answers 404 naming an unknown version, not a retryable fault', async () => {
    const outcome = await runPromoteStep({
      dataset: 'churn',
      modelName,
      version: '999999',
      alias: 'champion',
      trackingUri: mlflow.baseUrl,
      user: 'race-test',
    });
    expect(outcome.code).toBe(2);
    expect(promoteResponse(outcome)).toEqual({
      status: 404,
      body: { error: 'version_not_found', message: `model ${modelName} has no version 999999` },
    });
  }, 120_000);
});
