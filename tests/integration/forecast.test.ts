import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadContract } from '../../tasks/src/contracts/index.js';
import { candleFiles, simulateCandles } from '../../tasks/src/datasets/btc/simulate.js';
import { isDriftwoodError } from '../../tasks/src/errors.js';
import { runForecastPromote } from '../../tasks/src/forecast/evaluate.js';
import { type ForecastTrainResult, runForecastTrain } from '../../tasks/src/forecast/train.js';
import { runIngest } from '../../tasks/src/ingest/index.js';
import { openObjectStore } from '../../tasks/src/lake/object-store.js';
import { readAuditTrail } from '../../tasks/src/promote/index.js';
import { runSimulate } from '../../tasks/src/simulate/index.js';
import { openWarehouse, type Warehouse } from '../../tasks/src/warehouse/db.js';
import { mlflowClient, silentLog, tempHome, uniqueName } from '../support/env.js';

const START = Date.parse('2026-01-01T00:00:00Z');
const HOURS = 2200;

/**
 * The forecast loop against the real MLflow server: candles land in the lake and are ingested, the
 * LSTM trains and is registered as challenger, and the gate promotes it only when it beats the
 * persistence forecast (and the champion) on the test period. A series with short-term momentum
 * can be forecast better than "the next hour is this hour"; a pure random walk cannot.
 */
describe('forecast training and gate', () => {
  const mlflow = mlflowClient(inject('mlflowUri'));
  const source = { commit: undefined, user: 'forecast-test', packages: {} };
  const dbs: Warehouse[] = [];

  /** A warehouse holding the given candles, loaded through the lake and ingest as in production. */
  async function warehouseWith(land: (lake: ReturnType<typeof openObjectStore>) => Promise<void>) {
    const home = tempHome('driftwood-forecast-');
    const lake = openObjectStore(`file://${path.join(home, 'lake')}`);
    const db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    dbs.push(db);
    await land(lake);
    const ingest = await runIngest(
      { dataset: 'btc', piiKey: undefined, now: Date.now },
      { lake, db, log: silentLog },
    );
    expect(ingest.quarantined).toBe(0);
    return { db, ingest };
  }

  const train = async (db: Warehouse, modelName: string, experiment: string): Promise<ForecastTrainResult> =>
    runForecastTrain(
      { contract: await loadContract('btc'), experiment, modelName, params: { seed: 42 } },
      { db, mlflow, log: silentLog, now: Date.now, source },
    );
  const promote = (modelName: string) =>
    runForecastPromote(
      { modelName, alias: 'champion' },
      { mlflow, log: silentLog, now: Date.now, user: 'forecast-test' },
    );

  let momentum: Warehouse;
  let walk: Warehouse;

  beforeAll(async () => {
    const m = await warehouseWith(async (lake) => {
      await runSimulate(
        { dataset: 'btc', start: START, hours: HOURS, seed: 42, entities: 0, labelDelayHours: 0 },
        { lake, log: silentLog },
      );
    });
    momentum = m.db;
    expect(m.ingest.rowsLoaded).toBe(
      simulateCandles({ start: START, hours: HOURS, seed: 42 }).candles.length,
    );
    walk = (
      await warehouseWith(async (lake) => {
        const { candles } = simulateCandles({
          start: START,
          hours: HOURS,
          seed: 42,
          autocorrelation: 0,
          drift: 0,
        });
        for (const [key, body] of candleFiles(candles, 'btc')) await lake.put(key, body);
      })
    ).db;
  });

  afterAll(async () => {
    await Promise.all(dbs.map((db) => db.destroy()));
  });

  it('trains, records everything and promotes an LSTM that beats persistence; the same model again is refused', async () => {
    const modelName = uniqueName('btc-momentum');
    const experiment = uniqueName('forecast');
    const a = await train(momentum, modelName, experiment);
    expect(a.windows.droppedForGaps).toBeGreaterThan(0);
    expect(a.metrics.model.rmse).toBeLessThan(a.metrics.persistence.rmse);

    const run = await mlflow.getRun(a.runId);
    const metricKeys = new Set(run.data.metrics?.map((m) => m.key));
    for (const key of [
      'test_rmse',
      'test_mae',
      'test_mape',
      'test_directional_accuracy',
      'persistence_rmse',
      'moving_average_rmse',
      'train_seconds',
    ])
      expect(metricKeys).toContain(key);
    const valLoss = await mlflow.getMetricHistory(a.runId, 'val_loss');
    expect(valLoss.length).toBe(a.epochsRun);
    expect(run.data.params?.find((p) => p.key === 'window_hours')?.value).toBe('24');
    const runFiles = (await mlflow.listArtifacts(run.info.artifact_uri, 'plots')).map((f) => f.path);
    expect(runFiles).toContain('forecast.png');
    const png = await mlflow.downloadArtifact(run.info.artifact_uri, 'plots/forecast.png');
    expect(png.subarray(1, 4).toString()).toBe('PNG');

    const mv = await mlflow.getVersionByAlias(modelName, 'challenger');
    expect(mv?.version).toBe(a.modelVersion);
    const root = await mlflow.resolveVersionArtifacts(mv as NonNullable<typeof mv>);
    const modelFiles = (await mlflow.listArtifacts(root)).map((f) => f.path).sort();
    // TF.js's files and the state the API serves, beside the python_function flavor's (issue 24).
    expect(modelFiles).toEqual([
      'MLmodel',
      'code',
      'conda.yaml',
      'forecast-sample.json',
      'forecast_state.json',
      'input_example.json',
      'model.json',
      'python_env.yaml',
      'requirements.txt',
      'serving_input_example.json',
      'weights.bin',
    ]);

    const promoted = await promote(modelName);
    expect(promoted.promoted).toBe(true);
    expect(promoted.evaluation.challenger.rmse).toBeCloseTo(a.metrics.model.rmse, 6);
    expect(promoted.evaluation.persistence.rmse).toBeCloseTo(a.metrics.persistence.rmse, 6);
    expect((await mlflow.getVersionByAlias(modelName, 'champion'))?.version).toBe(a.modelVersion);
    // Staged under its own alias (loaded by it and asked for a forecast before champion moved), which
    // is gone once champion moved; the audit trail records the move against the holder it judged.
    expect(await mlflow.getVersionByAlias(modelName, `staging-${a.modelVersion}`)).toBeUndefined();
    expect(await mlflow.getVersionByAlias(modelName, 'staging')).toBeUndefined();
    expect(promoted.previous).toBeNull();
    const audit = await readAuditTrail(mlflow, modelName);
    expect(audit.map((e) => [e.alias, e.version, e.previous, e.action])).toEqual([
      ['champion', a.modelVersion, null, 'promote'],
    ]);
    const tags = (await mlflow.getModelVersion(modelName, a.modelVersion)).tags ?? [];
    expect(tags.find((t) => t.key === 'driftwood.gate_reason')?.value).toMatch(
      /^promoted: challenger RMSE .* < persistence RMSE/,
    );

    // The same data and seed give the same model: it does not beat the champion it equals.
    const b = await train(momentum, modelName, experiment);
    expect(b.metrics).toEqual(a.metrics);
    const refused = await promote(modelName).catch((err: unknown) => err);
    expect(isDriftwoodError(refused, 'GATE_NOT_PASSED')).toBe(true);
    expect(isDriftwoodError(refused) && refused.exitCode).toBe(99);
    expect((await mlflow.getVersionByAlias(modelName, 'champion'))?.version).toBe(a.modelVersion);
    expect(await mlflow.getVersionByAlias(modelName, `staging-${b.modelVersion}`)).toBeUndefined();
    const bTags = (await mlflow.getModelVersion(modelName, b.modelVersion)).tags ?? [];
    expect(bTags.find((t) => t.key === 'driftwood.gate_reason')?.value).toMatch(
      new RegExp(`beats_champion failed .* >= champion v${a.modelVersion} RMSE`),
    );
  });

  it('refuses an LSTM trained on a random walk, where persistence is the best forecast, and says why', async () => {
    const modelName = uniqueName('btc-walk');
    const t = await train(walk, modelName, uniqueName('forecast'));
    const refused = await promote(modelName).catch((err: unknown) => err);
    expect(isDriftwoodError(refused, 'GATE_NOT_PASSED')).toBe(true);
    expect(await mlflow.getVersionByAlias(modelName, 'champion')).toBeUndefined();
    const reason = (await mlflow.getModelVersion(modelName, t.modelVersion)).tags?.find(
      (x) => x.key === 'driftwood.gate_reason',
    );
    expect(reason?.value).toMatch(
      /^not promoted: beats_persistence failed \(challenger RMSE .* >= persistence RMSE/,
    );
    expect(isDriftwoodError(refused) && (refused.details.result as { promoted: boolean }).promoted).toBe(
      false,
    );
  });
});
