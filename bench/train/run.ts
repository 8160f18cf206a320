/**
 * Training benchmark: is Driftwood's model as good as the classical baselines? On the same split and
 * the same rows, Driftwood's logistic regression (TF.js Adam as `train` ships it, and the exact
 * solver), and its gradient-boosted trees, against scikit-learn's LogisticRegression,
 * HistGradientBoostingClassifier and LightGBM: holdout ROC AUC, PR AUC, log loss and fit time, one
 * table per dataset.
 *
 *   MLFLOW_TRACKING_URI=http://127.0.0.1:5000 make bench-train
 *     four generated datasets (generated.ts) and the simulated churn data, the exact solver's
 *     coefficients against scikit-learn's, then 1,000 metric points through Driftwood's MLflow client
 *     in log-batch requests against one request per point
 *   node .driftwood/bench-build/train/run.js --dataset churn   (make bench-train BENCH_DATASET=churn)
 *     a contract's dataset (contracts/<name>.yaml): its latest data snapshot in the lake of
 *     DRIFTWOOD_HOME / DRIFTWOOD_LAKE_URI, through the features step as `train --snapshot latest` reads it
 *
 *   --generated linear,missing   the generated datasets to run (default all four; none: skip them)
 *   BENCH_ROWS=60000 (rows of each generated dataset), BENCH_CUSTOMERS=2000 BENCH_HOURS=336 (churn)
 *   BENCH_PYTHON: the Python with scikit-learn and LightGBM (default .venvs/bench/bin/python)
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  createLogger,
  DriftwoodError,
  datasetSettings,
  ensureContractTables,
  environmentWithDotenv,
  initTf,
  listSnapshots,
  loadConfig,
  loadContract,
  MlflowClient,
  openObjectStore,
  openWarehouse,
  readSnapshotRows,
  resolveSnapshot,
} from '@driftwood/tasks';
import { type Comparison, compare, type DatasetRun, formatTable, REFERENCE_THREADS } from './compare.js';
import { GENERATED, type GeneratedName, generate, randomSplit } from './generated.js';
import { type Family, families } from './prepare.js';

// Run from the repository root (make bench-train does). The step modules are not part of the
// package's public entry, so they are loaded from the build by path.
const root = process.cwd();
const load = <T>(rel: string): Promise<T> =>
  import(pathToFileURL(path.join(root, 'tasks', 'dist', rel)).href);
const { runIngest } = await load<typeof import('../../tasks/dist/ingest/index.js')>('ingest/index.js');
const { DEFAULT_MODEL_PARAMS } =
  await load<typeof import('../../tasks/dist/models/classifier.js')>('models/classifier.js');
const { fitLogisticExact } =
  await load<typeof import('../../tasks/dist/models/logistic-exact.js')>('models/logistic-exact.js');
const { runSimulate } = await load<typeof import('../../tasks/dist/simulate/index.js')>('simulate/index.js');
const { prepareTrainingData } = await load<typeof import('../../tasks/dist/train/data.js')>('train/data.js');
const { validationBehaviour } =
  await load<typeof import('../../tasks/dist/train/select.js')>('train/select.js');
type PreparedData = Awaited<ReturnType<typeof prepareTrainingData>>;

const { values } = parseArgs({
  options: { dataset: { type: 'string' }, generated: { type: 'string' } },
});
const rowsPerDataset = Number(process.env.BENCH_ROWS ?? 60_000);
const customers = Number(process.env.BENCH_CUSTOMERS ?? 2000);
const hours = Number(process.env.BENCH_HOURS ?? 336);
const python = process.env.BENCH_PYTHON ?? path.join(root, '.venvs', 'bench', 'bin', 'python');
const dir = path.join(root, '.driftwood', 'bench', 'train');
const log = createLogger('warn');
const seconds = (t0: number) => (performance.now() - t0) / 1000;
const SEED = 42;

/** Ends the run with one line naming what to do (the only exit besides success). */
function fail(message: string): never {
  console.error(`bench-train: ${message}`);
  process.exit(2);
}

/** The features step's matrices, the same for both families: what `train` itself fits on. */
function fromPrepared(name: string, data: PreparedData): DatasetRun {
  const fam: Family = {
    width: data.width,
    columns: data.state.outputs.map(String),
    train: data.train,
    validation: data.validation,
    holdout: data.holdout,
  };
  return {
    name,
    linear: fam,
    tree: fam,
    signs: Int8Array.from(data.profile.signs(data.state.outputs)),
    coefficients: true,
    decision: data.decision,
    behaviour: (fit) => validationBehaviour(data, fit),
  };
}

/** A contract dataset's latest snapshot, read and split as `train --snapshot latest` does. */
async function contractDataset(dataset: string): Promise<{ run: DatasetRun; description: string }> {
  const config = loadConfig(environmentWithDotenv(root));
  const contract = await loadContract(dataset, config.contractsDir).catch((e: unknown) =>
    fail(e instanceof Error ? e.message : String(e)),
  );
  if (contract.task !== 'binary_classification')
    fail(`${dataset} is a ${contract.task} dataset; this benchmark compares binary classifiers`);
  const settings = datasetSettings(contract);
  const lake = openObjectStore(config.lakeUri, config.s3);
  if ((await listSnapshots(lake, dataset)).length === 0)
    fail(
      `no snapshot of ${dataset} in ${config.lakeUri}: take one with 'node tasks/dist/cli.js snapshot --dataset ${dataset} --as-of latest' (same DRIFTWOOD_HOME)`,
    );
  const manifest = await resolveSnapshot(lake, dataset, 'latest').catch((e: unknown) =>
    fail(e instanceof DriftwoodError ? e.message : String(e)),
  );
  const db = await openWarehouse(config.warehouseUrl);
  try {
    await ensureContractTables(db, contract);
    const data = await prepareTrainingData(
      {
        dataset,
        contract,
        ...(config.contractsDir ? { contractsDir: config.contractsDir } : {}),
        horizonHours: settings.horizonHours,
        labelDelayHours: settings.labelDelayHours,
        holdoutFraction: settings.split.test,
        validationFraction: settings.split.validation,
        splitSeed: DEFAULT_MODEL_PARAMS.seed,
        snapshot: { manifest, rows: await readSnapshotRows(lake, manifest), lakeUri: config.lakeUri },
      },
      { db, log, lake },
    );
    return {
      run: fromPrepared(dataset, data),
      description: `contract ${dataset}, snapshot ${manifest.id} (as of ${manifest.asOf}), the features step's matrix for every learner (imputed, scaled, one-hot: no NaN for the trees)`,
    };
  } finally {
    await db.destroy();
  }
}

/** The demo's churn data, simulated and ingested into a scratch home, then prepared as `train` does. */
async function simulatedChurn(): Promise<{ run: DatasetRun; description: string }> {
  const home = path.join(dir, 'churn');
  mkdirSync(home, { recursive: true });
  const lake = openObjectStore(`file://${path.join(home, 'lake')}`);
  const db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
  try {
    await runSimulate(
      {
        dataset: 'churn',
        start: Date.parse('2026-11-01T00:00:00Z'),
        hours,
        seed: SEED,
        entities: customers,
        labelDelayHours: 24,
      },
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
    return {
      run: fromPrepared('churn (simulated)', data),
      description: `the demo data: ${customers} simulated customers, ${hours} hours (seed ${SEED}), the features step's matrix for every learner`,
    };
  } finally {
    await db.destroy();
  }
}

/** The exact solver's coefficients against scikit-learn's, on the same rows and penalty, unconstrained. */
function coefficientGap(run: DatasetRun, sk: Comparison['sklearnLogistic']): string {
  if (!sk?.coef || !sk.tight) return '';
  const fit = fitLogisticExact(run.linear.train.x, run.linear.train.y, run.linear.width, {
    l2: DEFAULT_MODEL_PARAMS.l2,
    classWeighting: true,
  });
  const gap = (ref: { coef: number[]; intercept: number }) =>
    Math.max(
      Math.abs(fit.intercept - ref.intercept),
      ...Array.from(fit.weights, (v, j) => Math.abs(v - (ref.coef[j] ?? Number.NaN))),
    );
  return `exact logistic (unconstrained) coefficients − scikit-learn's, ${run.linear.width} columns: max |gap| ${gap(sk.tight).toExponential(2)} against lbfgs to tol 1e-12, ${gap({ coef: sk.coef, intercept: sk.intercept ?? Number.NaN }).toExponential(2)} against its default tol 1e-4; ${fit.iterations} Newton iterations`;
}

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const backend = await initTf();
console.log(
  `training benchmark: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, TF.js backend ${backend}, references ${REFERENCE_THREADS} threads (${python})`,
);
const tables: { dataset: string; description: string; results: Comparison['results'] }[] = [];
const report = async (run: DatasetRun, description: string) => {
  const t0 = performance.now();
  const out = await compare(run, dir, python);
  console.log(formatTable(run, out.results, description));
  const gap = coefficientGap(run, out.sklearnLogistic);
  if (gap) console.log(gap);
  console.log(`(${seconds(t0).toFixed(0)} s for this dataset)`);
  tables.push({ dataset: run.name, description, results: out.results });
};

if (values.dataset !== undefined) {
  const { run, description } = await contractDataset(values.dataset);
  await report(run, description);
} else {
  const names =
    values.generated === 'none' ? [] : ((values.generated?.split(',') ?? [...GENERATED]) as GeneratedName[]);
  const unknown = names.filter((n) => !GENERATED.includes(n));
  if (unknown.length > 0)
    fail(`--generated: unknown ${unknown.join(', ')}; expected some of ${GENERATED.join(', ')} or none`);
  for (const [k, name] of names.entries()) {
    const raw = generate(name, rowsPerDataset, SEED + k);
    const split = randomSplit(raw.rows, SEED, 0.2, 0.15);
    await report({ name, ...families(raw, split) }, `${raw.description} (seed ${SEED + k})`);
  }
  const churn = await simulatedChurn();
  await report(churn.run, churn.description);
}
writeFileSync(path.join(dir, 'results.json'), JSON.stringify(tables, null, 1));
console.log(`\nfigures: ${path.join(dir, 'results.json')}`);

if (values.dataset === undefined) {
  // 1,000 metric points: log-batch (split to MLflow's limits) against one request per point.
  const trackingUri = process.env.MLFLOW_TRACKING_URI ?? 'http://127.0.0.1:5000';
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
  let t1 = performance.now();
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
}
