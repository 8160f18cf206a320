import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fitTransform, initTf, type MlflowClient, type Row, tf } from '@driftwood/tasks';
import { saveModelFiles } from '../../tasks/src/models/artifact.js';
import { Rng } from '../../tasks/src/random.js';
import { mlmodelYaml } from '../../tasks/src/train/mlmodel.js';
import { ROOT } from './env.js';

/**
 * Registers a small but real TF.js churn model in MLflow the way `driftwood train` does (a run with
 * holdout metrics, a logged model with model.json, weights.bin, transform.json and MLmodel, a
 * registered version with Driftwood's tags), without the minutes a real training run takes.
 * `broken` makes a version the API must refuse (unparsable files, other input fields, NaN weights)
 * or one that fails on some rows only (`overflow`).
 */
export const CHURN_FIELDS = {
  numeric: [
    'tenure_days',
    'monthly_charges',
    'sessions_7d',
    'sessions_30d',
    'minutes_30d',
    'tickets_30d',
    'payment_failures_30d',
    'purchases_30d',
    'hours_since_last_session',
  ],
  categorical: ['plan', 'region'],
};

export const sampleCustomer = {
  customer_id: 'C000042',
  tenure_days: 35,
  monthly_charges: 19.5,
  sessions_7d: 0,
  sessions_30d: 1,
  minutes_30d: 4,
  tickets_30d: 3,
  payment_failures_30d: 2,
  purchases_30d: 0,
  hours_since_last_session: 150,
  plan: 'basic',
  region: 'north',
};

/**
 * `overflow` loads and warms up fine but answers NaN for extreme inputs the API still accepts (two
 * hidden units that overflow to +Infinity and are subtracted): the kind of fault only live traffic
 * finds.
 */
export type Broken = 'corrupt' | 'incompatible' | 'nan' | 'overflow';

export interface RegisteredTestModel {
  version: string;
  runId: string;
  modelId: string;
  rocAuc: number;
}

/** Values of each categorical field the fitted transform knows (churn's own, or made up). */
const KNOWN_VALUES: Record<string, string[]> = {
  plan: ['basic', 'standard', 'premium'],
  region: ['north', 'south', 'east', 'west'],
};

function sampleRows(rng: Rng, numeric: string[], categorical: string[], n = 300): Row[] {
  return Array.from({ length: n }, () => {
    const row: Row = {};
    for (const f of categorical) {
      const values = KNOWN_VALUES[f] ?? ['a', 'b', 'c'];
      row[f] = values[rng.int(0, values.length)];
    }
    for (const f of numeric) row[f] = Math.round(rng.next() * 200 * 100) / 100;
    return row;
  });
}

export async function registerTestModel(
  mlflow: MlflowClient,
  opts: {
    modelName: string;
    experiment: string;
    seed: number;
    alias?: string;
    broken?: Broken;
    /** Another dataset's input fields (churn's by default). */
    fields?: { numeric: string[]; categorical: string[] };
    /** Rows to fit the transform on (random ones by default), so their ranges are the training ranges. */
    rows?: Row[];
  },
): Promise<RegisteredTestModel> {
  await initTf();
  const rng = new Rng(opts.seed);
  const fields = opts.fields ?? CHURN_FIELDS;
  const numeric = opts.broken === 'incompatible' ? [...fields.numeric, 'age_years'] : fields.numeric;
  const state = fitTransform(opts.rows ?? sampleRows(rng, numeric, fields.categorical), {
    numeric,
    categorical: fields.categorical,
  });
  const width = state.outputs.length;
  let model: tf.Sequential;
  if (opts.broken === 'overflow') {
    model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 2, activation: 'relu', inputShape: [width] }),
        tf.layers.dense({ units: 1, activation: 'sigmoid' }),
      ],
    });
    const hidden = new Float32Array(width * 2);
    // First input (tenure_days) to both hidden units: finite (float32) for training-range rows, +Inf
    // for a row far past them but still inside the API's bounds (tenure_days 20,000 of 0–200).
    hidden[0] = 1e37;
    hidden[1] = 1e37;
    model.setWeights([
      tf.tensor2d(hidden, [width, 2]),
      tf.tensor1d([0, 0]),
      tf.tensor2d([1, -1], [2, 1]),
      tf.tensor1d([0]),
    ]);
  } else {
    model = tf.sequential({
      layers: [tf.layers.dense({ units: 1, activation: 'sigmoid', inputShape: [width] })],
    });
    const kernel = Array.from({ length: width }, () =>
      opts.broken === 'nan' ? Number.NaN : rng.next() - 0.5,
    );
    model.setWeights([tf.tensor2d(kernel, [width, 1]), tf.tensor1d([rng.next() - 0.5])]);
  }
  const files = await saveModelFiles(model);
  model.dispose();

  const experimentId = await mlflow.ensureExperiment(opts.experiment);
  const run = await mlflow.createRun({
    experimentId,
    runName: `serving-test-${opts.seed}`,
    tags: { 'mlflow.user': 'test' },
  });
  const runId = run.info.run_id;
  const rocAuc = 0.7 + rng.next() * 0.2;
  await mlflow.logBatch(runId, {
    metrics: [
      { key: 'holdout_roc_auc', value: rocAuc, timestamp: Date.now(), step: 0 },
      { key: 'holdout_log_loss', value: 0.4, timestamp: Date.now(), step: 0 },
    ],
  });
  await mlflow.finishRun(runId, 'FINISHED');
  const logged = await mlflow.createLoggedModel({
    experimentId,
    name: opts.modelName,
    sourceRunId: runId,
    modelType: 'tfjs-logistic-regression',
  });
  const uri = logged.info.artifact_uri;
  await mlflow.uploadArtifact(
    uri,
    'model.json',
    opts.broken === 'corrupt' ? '{"modelTopology": ' : files.modelJson,
  );
  await mlflow.uploadArtifact(uri, 'weights.bin', files.weights);
  await mlflow.uploadArtifact(uri, 'transform.json', JSON.stringify(state));
  await mlflow.uploadArtifact(
    uri,
    'MLmodel',
    mlmodelYaml(state, 'logistic', logged.info.model_id, runId, new Date()),
  );
  await mlflow.finalizeLoggedModel(logged.info.model_id, 'LOGGED_MODEL_READY');
  await mlflow.ensureRegisteredModel(opts.modelName);
  const mv = await mlflow.createModelVersion({
    name: opts.modelName,
    source: `models:/${logged.info.model_id}`,
    modelId: logged.info.model_id,
    runId,
    tags: {
      'driftwood.holdout_roc_auc': String(rocAuc),
      'driftwood.data_digest': `digest-${opts.seed}`,
      'driftwood.cutoff': '2026-11-01T00:00:00.000Z',
    },
  });
  await mlflow.waitForVersionReady(opts.modelName, mv.version);
  if (opts.alias) await mlflow.setAlias(opts.modelName, opts.alias, mv.version);
  return { version: mv.version, runId, modelId: logged.info.model_id, rocAuc };
}

/** Polls until `check` returns a value (no fixed sleeps: the poller's timing is not asserted). */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The real `driftwood serve` process (the built CLI, as Docker and Kubernetes run it) in `home`,
 * serving `modelName` on `port` from the test MLflow; `extraEnv` adds or overrides settings. Its
 * log lines (stdout and stderr) are collected in `output()`; `exit` resolves with its exit code.
 */
export function spawnServe(opts: {
  home: string;
  port: number;
  modelName: string;
  mlflowUri: string;
  extraEnv?: Record<string, string>;
}): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn('node', [path.join(ROOT, 'tasks', 'dist', 'cli.js'), 'serve'], {
    cwd: opts.home,
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      DRIFTWOOD_HOME: opts.home,
      MLFLOW_TRACKING_URI: opts.mlflowUri,
      DRIFTWOOD_MODEL_NAME: opts.modelName,
      DRIFTWOOD_API_PORT: String(opts.port),
      // Open on purpose unless a test passes credentials (the API fails closed without either).
      DRIFTWOOD_API_AUTH: 'none',
      ...opts.extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const collect = (d: Buffer) => {
    text += d;
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => text, exit };
}
