/**
 * Training benchmark, one run, same data for every model: Driftwood's logistic regression (TF.js
 * Adam and the exact solver) and MLP against scikit-learn's LogisticRegression and MLPClassifier (ROC
 * AUC on the holdout and fit time), the exact solver's coefficients against scikit-learn's, its fit
 * time on 100,000 × 30 rows against scikit-learn's, then the time to log 1,000 metric points through
 * Driftwood's MLflow client in log-batch requests against one request per point.
 *
 *   MLFLOW_TRACKING_URI=http://127.0.0.1:5000 make bench-train
 *   BENCH_CUSTOMERS=2000 BENCH_HOURS=336 (defaults: the demo data)
 *   BENCH_PYTHON: the Python with scikit-learn (default .venvs/bench/bin/python)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createLogger, initTf, MlflowClient, openObjectStore, openWarehouse, rocAuc } from '@driftwood/tasks';

// Run from the repository root (make bench-train does). The step modules are not part of the
// package's public entry, so they are loaded from the build by path.
const root = process.cwd();
const load = <T>(rel: string): Promise<T> =>
  import(pathToFileURL(path.join(root, 'tasks', 'dist', rel)).href);
const { runIngest } = await load<typeof import('../../tasks/dist/ingest/index.js')>('ingest/index.js');
const { DEFAULT_MODEL_PARAMS, predictScores, trainClassifier } =
  await load<typeof import('../../tasks/dist/models/classifier.js')>('models/classifier.js');
const { fitLogisticExact } =
  await load<typeof import('../../tasks/dist/models/logistic-exact.js')>('models/logistic-exact.js');
const { Rng } = await load<typeof import('../../tasks/dist/random.js')>('random.js');
const { runSimulate } = await load<typeof import('../../tasks/dist/simulate/index.js')>('simulate/index.js');
const { prepareTrainingData } = await load<typeof import('../../tasks/dist/train/data.js')>('train/data.js');
const { churnSigns } = await load<typeof import('../../tasks/dist/datasets/churn/directions.js')>(
  'datasets/churn/directions.js',
);
const customers = Number(process.env.BENCH_CUSTOMERS ?? 2000);
const hours = Number(process.env.BENCH_HOURS ?? 336);
const trackingUri = process.env.MLFLOW_TRACKING_URI ?? 'http://127.0.0.1:5000';
const dir = path.join(root, '.driftwood', 'bench', 'train');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const log = createLogger('warn');
const seconds = (t0: number) => (performance.now() - t0) / 1000;

console.log(`training benchmark: ${customers} simulated customers, ${hours} hours (seed 42)`);
console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`);
const backend = await initTf();
const lake = openObjectStore(`file://${path.join(dir, 'lake')}`);
const db = await openWarehouse(`sqlite://${path.join(dir, 'warehouse.db')}`);
const start = Date.parse('2026-11-01T00:00:00Z');
await runSimulate(
  { dataset: 'churn', start, hours, seed: 42, entities: customers, labelDelayHours: 24 },
  { lake, log },
);
await runIngest({ dataset: 'churn', piiKey: 'bench-key-0123456789', now: Date.now }, { lake, db, log });
const data = await prepareTrainingData(
  {
    dataset: 'churn',
    horizonHours: 48,
    labelDelayHours: 24,
    holdoutFraction: 0.2,
    validationFraction: 0.15,
    splitSeed: DEFAULT_MODEL_PARAMS.seed,
  },
  { db, log },
);
await db.destroy();
console.log(
  `data: ${data.rows.length} customers (train ${data.parts.train.length}, validation ${data.parts.validation.length}, holdout ${data.parts.holdout.length}), ${data.width} columns, backend ${backend}`,
);

// The same matrices for scikit-learn, which fits on the same training rows.
const dump = (name: string, m: { x: Float32Array; y: Float32Array }) =>
  writeFileSync(
    path.join(dir, `${name}.json`),
    JSON.stringify({ width: data.width, x: Array.from(m.x), y: Array.from(m.y) }),
  );
dump('train', data.train);
dump('validation', data.validation);
dump('holdout', data.holdout);

interface Row {
  model: string;
  rocAuc: number;
  fitSeconds: number;
  note: string;
  /** scikit-learn's LogisticRegression only: its coefficients, and those of a fit to tol 1e-12. */
  coef?: number[];
  intercept?: number;
  tight?: { coef: number[]; intercept: number };
}
const rows: Row[] = [];
const train = {
  x: data.train.x,
  y: data.train.y,
  valX: data.validation.x,
  valY: data.validation.y,
  width: data.width,
};
// Selecting epochs on the training rows themselves keeps (about) the last epoch; full-batch Adam run
// to convergence is the like-for-like comparison with scikit-learn's converged fit on the same rows.
const fitted = { ...train, valX: data.train.x, valY: data.train.y };
for (const [model, params, set, note] of [
  [
    'driftwood logistic',
    { ...DEFAULT_MODEL_PARAMS },
    train,
    'as shipped: early stopping on validation, monotone',
  ],
  [
    'driftwood logistic',
    { ...DEFAULT_MODEL_PARAMS, patience: 0, monotonic: false },
    fitted,
    'mini-batch, 40 epochs, unconstrained',
  ],
  [
    'driftwood logistic',
    { ...DEFAULT_MODEL_PARAMS, patience: 0, monotonic: false, batchSize: 100_000, epochs: 1000 },
    fitted,
    'fully fitted (full batch, 1000 epochs), unconstrained',
  ],
  [
    'driftwood mlp(16)',
    { ...DEFAULT_MODEL_PARAMS, kind: 'mlp' as const },
    train,
    'as shipped: early stopping on validation',
  ],
  ['driftwood mlp(16)', { ...DEFAULT_MODEL_PARAMS, kind: 'mlp' as const, patience: 0 }, fitted, '40 epochs'],
  [
    'driftwood logistic exact',
    { ...DEFAULT_MODEL_PARAMS, solver: 'exact' as const },
    train,
    'as shipped but solver exact: monotone',
  ],
  [
    'driftwood logistic exact',
    { ...DEFAULT_MODEL_PARAMS, solver: 'exact' as const, monotonic: false },
    train,
    'unconstrained (the same objective as scikit-learn)',
  ],
] as const) {
  const t0 = performance.now();
  const trained = await trainClassifier(set, params, undefined, churnSigns(data.state.outputs));
  const fitSeconds = seconds(t0);
  const auc = rocAuc(predictScores(trained.model, data.holdout.x, data.width), data.holdout.y);
  trained.model.dispose();
  const how = trained.exact
    ? `projected Newton ${note}, ${trained.exact.iterations} iterations, gradient ${trained.exact.gradientNorm.toExponential(1)}`
    : `TF.js ${note}, ${trained.epochsRun} epochs run`;
  rows.push({ model, rocAuc: auc, fitSeconds, note: how });
}

const python = process.env.BENCH_PYTHON ?? path.join(root, '.venvs', 'bench', 'bin', 'python');
const res = spawnSync(
  python,
  [path.join(root, 'bench', 'train', 'sklearn_models.py'), dir, String(DEFAULT_MODEL_PARAMS.l2)],
  {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
if (res.status !== 0) throw new Error(`scikit-learn baseline failed (exit ${res.status})`);
rows.push(...(JSON.parse(res.stdout) as Row[]));

console.log('\nmodel                        holdout ROC AUC   fit s   notes');
for (const r of rows)
  console.log(
    `${r.model.padEnd(28)} ${r.rocAuc.toFixed(4).padStart(15)} ${r.fitSeconds.toFixed(3).padStart(7)}   ${r.note}`,
  );
const ours = rows.find((r) => r.note.includes('fully fitted (full batch')) as Row;
const sk = rows.find((r) => r.model === 'sklearn LogisticRegression') as Row;
const exact = rows.find(
  (r) => r.model === 'driftwood logistic exact' && r.note.includes('unconstrained'),
) as Row;
console.log(
  `logistic regression ROC AUC, ours (fully fitted, full batch) − scikit-learn: ${(ours.rocAuc - sk.rocAuc).toFixed(4)} (target: within ±0.005)`,
);
console.log(
  `logistic regression ROC AUC, ours (exact, unconstrained) − scikit-learn: ${(exact.rocAuc - sk.rocAuc).toFixed(4)}`,
);

// The exact solver's coefficients against scikit-learn's, on the same rows and penalty.
const maxGap = (w: ArrayLike<number>, b: number, ref: { coef?: number[]; intercept?: number }) =>
  Math.max(
    Math.abs(b - (ref.intercept ?? Number.NaN)),
    ...Array.from(w, (v, j) => Math.abs(v - (ref.coef?.[j] ?? Number.NaN))),
  );
const onBench = fitLogisticExact(data.train.x, data.train.y, data.width, {
  l2: DEFAULT_MODEL_PARAMS.l2,
  classWeighting: true,
});
console.log(
  `exact logistic coefficients − scikit-learn's (${data.width} columns): max |gap| ${maxGap(onBench.weights, onBench.intercept, sk.tight ?? {}).toExponential(2)} against lbfgs to tol 1e-12 (target: ≤ 1e-3), ${maxGap(onBench.weights, onBench.intercept, sk).toExponential(2)} against its default tol 1e-4; ${onBench.iterations} Newton iterations`,
);

// Fit time on 100,000 × 30 generated rows (correlated columns, ~20% positives), both solvers.
const bigN = 100_000;
const bigW = 30;
const rng = new Rng(42);
const big = new Float32Array(bigN * bigW + bigN);
for (let i = 0; i < bigN; i++) {
  const shared = rng.normal();
  let z = -1.5;
  for (let j = 0; j < bigW; j++) {
    const v = 0.7 * rng.normal() + 0.3 * shared;
    big[i * bigW + j] = v;
    z += ((j % 2 === 0 ? 1 : -1) * v) / (1 + j / 5);
  }
  big[bigN * bigW + i] = rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
}
const bigFile = path.join(dir, 'large.f32');
writeFileSync(bigFile, big);
let t1 = performance.now();
const bigFit = fitLogisticExact(big.subarray(0, bigN * bigW), big.subarray(bigN * bigW), bigW, {
  l2: DEFAULT_MODEL_PARAMS.l2,
  classWeighting: true,
});
const bigExactS = seconds(t1);
const bigRes = spawnSync(
  python,
  [
    path.join(root, 'bench', 'train', 'sklearn_models.py'),
    '--large',
    bigFile,
    String(bigN),
    String(bigW),
    String(DEFAULT_MODEL_PARAMS.l2),
  ],
  { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
);
if (bigRes.status !== 0) throw new Error(`scikit-learn large fit failed (exit ${bigRes.status})`);
const bigSk = JSON.parse(bigRes.stdout) as {
  fitSeconds: number;
  iterations: number;
  coef: number[];
  intercept: number;
  tight: { coef: number[]; intercept: number };
};
console.log(
  `100,000 × 30 fit: exact ${bigExactS.toFixed(3)} s (${bigFit.iterations} Newton iterations), scikit-learn lbfgs ${bigSk.fitSeconds.toFixed(3)} s (${bigSk.iterations} iterations): ${(bigExactS / bigSk.fitSeconds).toFixed(1)}× (target: ≤ 50×); max |coef gap| ${maxGap(bigFit.weights, bigFit.intercept, bigSk.tight).toExponential(2)} against lbfgs to tol 1e-12, ${maxGap(bigFit.weights, bigFit.intercept, bigSk).toExponential(2)} against its default`,
);

// 1,000 metric points: log-batch (split to MLflow's limits) against one request per point.
const mlflow = new MlflowClient(trackingUri, { timeoutMs: 30_000, retries: 2, backoffMs: 200 });
const experimentId = await mlflow.ensureExperiment(`bench-train-${Date.now().toString(36)}`);
const points = (key: string) =>
  Array.from({ length: 1000 }, (_, i) => ({
    key,
    value: Math.sin(i),
    timestamp: 1_700_000_000_000 + i,
    step: i,
  }));
const batchRun = await mlflow.createRun({ experimentId, runName: 'log-batch', tags: {} });
t1 = performance.now();
await mlflow.logBatch(batchRun.info.run_id, { metrics: points('m') });
const batchS = seconds(t1);
const singleRun = await mlflow.createRun({ experimentId, runName: 'one-per-point', tags: {} });
t1 = performance.now();
for (const p of points('m')) await mlflow.logBatch(singleRun.info.run_id, { metrics: [p] });
const singleS = seconds(t1);
const stored = (await mlflow.getMetricHistory(batchRun.info.run_id, 'm')).length;
console.log(
  `\n1,000 metric points to ${trackingUri}: log-batch ${batchS.toFixed(3)} s (1 request, ${stored} stored), one request per point ${singleS.toFixed(2)} s (${(singleS / batchS).toFixed(0)}× slower)`,
);
