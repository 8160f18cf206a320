/**
 * Calibration on the simulated churn data: the log loss, Brier score and ROC AUC of each model kind's
 * holdout scores, raw and through each calibration (fitted on the validation split, as `train` fits
 * it). Class-weighted training over-predicts the rare class; this shows by how much calibration
 * corrects it, and that Platt leaves the ranking (ROC AUC) as it was.
 *
 *   npx tsc -b tasks && npx tsc -p bench/calibration && node .driftwood/bench-build/calibration/run.js
 *   BENCH_CUSTOMERS=2000 BENCH_HOURS=336 BENCH_SEED=42 (make demo's data: seed 42, 2,000 customers, two weeks)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// Run from the repository root. The step modules are not part of the package's public entry, so
// they are loaded from the build by path.
const root = process.cwd();
const load = <T>(rel: string): Promise<T> =>
  import(pathToFileURL(path.join(root, 'tasks', 'dist', rel)).href);
const { runSimulate } = await load<typeof import('../../tasks/dist/simulate/index.js')>('simulate/index.js');
const { runIngest } = await load<typeof import('../../tasks/dist/ingest/index.js')>('ingest/index.js');
const { openObjectStore } =
  await load<typeof import('../../tasks/dist/lake/object-store.js')>('lake/object-store.js');
const { openWarehouse } = await load<typeof import('../../tasks/dist/warehouse/db.js')>('warehouse/db.js');
const { createLogger } = await load<typeof import('../../tasks/dist/log.js')>('log.js');
const { initTf } = await load<typeof import('../../tasks/dist/models/tf.js')>('models/tf.js');
const { prepareTrainingData } = await load<typeof import('../../tasks/dist/train/data.js')>('train/data.js');
const { resolveParams } = await load<typeof import('../../tasks/dist/train/index.js')>('train/index.js');
const { trainModel } =
  await load<typeof import('../../tasks/dist/models/trained-model.js')>('models/trained-model.js');
const { fitCalibration, applyCalibrationAll } =
  await load<typeof import('../../tasks/dist/models/calibration.js')>('models/calibration.js');
const { binaryMetrics, rocAuc } =
  await load<typeof import('../../tasks/dist/models/metrics.js')>('models/metrics.js');

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const customers = env('BENCH_CUSTOMERS', 2000);
const hours = env('BENCH_HOURS', 336);
const seed = env('BENCH_SEED', 42);

const home = mkdtempSync(path.join(os.tmpdir(), 'driftwood-bench-calibration-'));
const log = createLogger('warn');
const lake = openObjectStore(`file://${path.join(home, 'lake')}`);
const db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
try {
  await runSimulate(
    {
      dataset: 'churn',
      start: Date.parse('2026-11-01T00:00:00Z'),
      labelDelayHours: 24,
      hours,
      seed,
      entities: customers,
    },
    { lake, log },
  );
  await runIngest({ dataset: 'churn', piiKey: 'k-0123456789abcdef', now: Date.now }, { lake, db, log });
  await initTf(log);
  const data = await prepareTrainingData(
    {
      dataset: 'churn',
      horizonHours: 48,
      labelDelayHours: 24,
      holdoutFraction: 0.2,
      validationFraction: 0.15,
      splitSeed: 7,
    },
    { db, log },
  );
  const rate = (y: Float32Array) => y.reduce((a, b) => a + b, 0) / y.length;
  const mean = (x: Float64Array) => x.reduce((a, b) => a + b, 0) / x.length;
  console.log(
    `churn, seed ${seed}, ${customers} customers, ${hours} h: train ${data.train.y.length}, validation ${data.validation.y.length}, holdout ${data.holdout.y.length} (churn rate ${rate(data.holdout.y).toFixed(4)} on the holdout)`,
  );
  console.log(
    '| model | calibration | validation log loss | holdout log loss | holdout Brier | holdout ROC AUC | mean p (holdout) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  const kinds = [
    { label: 'logistic (adam, default)', params: {} },
    { label: 'logistic (exact)', params: { solver: 'exact' as const } },
    { label: 'mlp', params: { kind: 'mlp' as const } },
    { label: 'gbdt', params: { kind: 'gbdt' as const } },
  ];
  for (const k of kinds) {
    const params = resolveParams(k.params);
    const model = await trainModel(
      {
        x: data.train.x,
        y: data.train.y,
        valX: data.validation.x,
        valY: data.validation.y,
        width: data.width,
      },
      params,
      undefined,
      data.profile.signs(data.state.outputs),
    );
    const rawVal = model.scores(data.validation.x);
    const rawHold = model.scores(data.holdout.x);
    model.dispose();
    for (const method of ['none', 'platt', 'isotonic'] as const) {
      const c = fitCalibration(rawVal, data.validation.y, method);
      const val = applyCalibrationAll(c, rawVal);
      const hold = applyCalibrationAll(c, rawHold);
      const v = binaryMetrics(val, data.validation.y);
      const h = binaryMetrics(hold, data.holdout.y);
      console.log(
        `| ${k.label} | ${method} | ${v.log_loss.toFixed(4)} | ${h.log_loss.toFixed(4)} | ${h.brier.toFixed(4)} | ${rocAuc(hold, data.holdout.y).toFixed(6)} | ${mean(hold).toFixed(4)} |`,
      );
    }
  }
} finally {
  await db.destroy();
  rmSync(home, { recursive: true, force: true });
}
