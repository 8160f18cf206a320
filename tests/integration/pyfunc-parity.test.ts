import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import {
  buildChurnRows,
  type MlflowClient,
  parseTransformState,
  type Row,
  transformRows,
  type Warehouse,
} from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { loadContract } from '../../tasks/src/contracts/index.js';
import { simulateCandles } from '../../tasks/src/datasets/btc/simulate.js';
import { candleRow, newestConsecutiveRun } from '../../tasks/src/forecast/model-folder.js';
import { runForecastTrain } from '../../tasks/src/forecast/train.js';
import { loadCandles } from '../../tasks/src/forecast/windows.js';
import { applyCalibration, fitCalibration } from '../../tasks/src/models/calibration.js';
import type { ModelKind } from '../../tasks/src/models/params.js';
import { runTrain } from '../../tasks/src/train/index.js';
import {
  mlflowClient,
  ROOT,
  runProcess,
  seededWarehouse,
  silentLog,
  tempHome,
  uniqueName,
} from '../support/env.js';

/**
 * A Driftwood version is a portable MLflow model: for each model kind, 1,000 customers' raw fields
 * (the warehouse rows the skew test scores) plus rows with missing numbers and unseen categories get
 * the same probability, within 1e-6, from Driftwood's API, from `mlflow.pyfunc.load_model` and from
 * `mlflow models serve` answering real HTTP for `models:/<name>@champion`. The gbdt version is
 * calibrated by isotonic regression, the others by Platt scaling: both maps are reproduced.
 *
 * A forecast (LSTM) version too: every window of a run of consecutive hourly candles gets the same
 * forecast from `POST /v1/forecast` (one request per window, its 25 candles) as from the pyfunc on the
 * whole run as one DataFrame (one row per window), the same times, and a log return within 1e-6.
 */
const PYTHON = path.join(ROOT, '.venvs', 'mlflow', 'bin', 'python');
const MLFLOW = path.join(ROOT, '.venvs', 'mlflow', 'bin', 'mlflow');
const TOLERANCE = 1e-6;
const KINDS: readonly { kind: ModelKind; params: Record<string, unknown>; calibration: string }[] = [
  { kind: 'logistic', params: { epochs: 12 }, calibration: 'platt' },
  { kind: 'mlp', params: { epochs: 12, hiddenUnits: [16, 8] }, calibration: 'platt' },
  // patience 0 keeps every tree (early stopping keeps as few as one on this small data): 60 to sum.
  { kind: 'gbdt', params: { trees: 60, patience: 0 }, calibration: 'isotonic' },
];

/**
 * Scores a split-orient frame with mlflow.pyfunc.load_model for each URI: {uri: predictions}, a list
 * of probabilities for a classifier, of records (the API's forecast fields) for a forecast.
 */
const PYFUNC_SCRIPT = `
import json, sys
import mlflow.pyfunc, pandas as pd
spec = json.load(open(sys.argv[1]))
out = {}
for job in spec["jobs"]:
    frame = pd.DataFrame(job["data"], columns=job["columns"])
    model = mlflow.pyfunc.load_model(job["uri"])
    got = model.predict(frame)
    predictions = got.to_dict("records") if isinstance(got, pd.DataFrame) else [float(p) for p in got]
    out[job["uri"]] = {"flavors": sorted(model.metadata.flavors), "predictions": predictions}
json.dump(out, open(sys.argv[2], "w"))
`;

/** The package's transform and calibration alone, on the inputs of ODD_INPUTS_SPEC. */
const FUNCTIONS_SCRIPT = `
import json, sys
import pandas as pd
from driftwood_pyfunc.calibration import parse_calibration
from driftwood_pyfunc.transform import parse_transform
spec = json.load(open(sys.argv[1]))
vectors = parse_transform(spec["state"]).apply(pd.DataFrame(spec["rows"]))
scores = pd.Series(spec["scores"], dtype="float64").to_numpy()
calibrated = {k: parse_calibration(c).apply(scores).tolist() for k, c in spec["calibrations"].items()}
json.dump({"vectors": vectors.astype(float).tolist(), "calibrated": calibrated}, open(sys.argv[2], "w"))
`;

/** The API's forecast fields, as `/v1/forecast` answers them and the pyfunc's output columns. */
interface Forecast {
  last_open_time: string;
  forecast_open_time: string;
  horizon_hours: number;
  last_close: number;
  log_return: number;
  price: number;
}

interface TrainedForecast {
  name: string;
  version: string;
  runId: string;
  /** Consecutive hourly candles, epoch-ms open times: every window of them is forecast. */
  candles: Record<string, number>[];
  api: Forecast[];
}

/** Windows the forecast parity scores (each its own /v1/forecast request). */
const FORECAST_WINDOWS = 100;

/**
 * Forecast parity: times and horizon equal, log returns within TOLERANCE (TF.js sums in float32 in
 * its own order, numpy in float64: about 1e-9 apart), prices within TOLERANCE relative (a price is
 * last_close · exp(log_return), so at 60,000 the same 1e-9 is 6e-5 in absolute terms).
 */
function expectSameForecasts(got: readonly Forecast[], want: readonly Forecast[], where: string): void {
  expect(got, where).toHaveLength(want.length);
  got.forEach((g, i) => {
    const w = want[i] as Forecast;
    const at = `${where} window ${i}`;
    expect([g.last_open_time, g.forecast_open_time, g.horizon_hours, g.last_close], at).toEqual([
      w.last_open_time,
      w.forecast_open_time,
      w.horizon_hours,
      w.last_close,
    ]);
    expect(Math.abs(g.log_return - w.log_return), at).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.abs(g.price / w.price - 1), at).toBeLessThanOrEqual(TOLERANCE);
  });
}

interface Trained {
  kind: ModelKind;
  calibration: string;
  name: string;
  version: string;
  runId: string;
  holdoutRows: number;
  api: number[];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Stops every `mlflow models serve` the file started, whatever the tests' outcome. */
const serving: (() => void)[] = [];

/** `mlflow models serve` in its own process group, ready once /ping answers 200. */
async function serveModel(
  uri: string,
  env: Record<string, string>,
): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    MLFLOW,
    [
      'models',
      'serve',
      '-m',
      uri,
      '--env-manager',
      'local',
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-w',
      '1',
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  // The whole group: uvicorn, which the CLI starts, goes with it.
  const stop = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  };
  serving.push(stop);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`mlflow models serve exited ${child.exitCode}: ${stderr}`);
    const ok = await fetch(`${url}/ping`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { url, stop };
    await new Promise((r) => setTimeout(r, 500));
  }
  stop();
  throw new Error(`mlflow models serve did not answer /ping within 300 s: ${stderr}`);
}

function maxDiff(a: readonly number[], b: readonly number[]): number {
  expect(a).toHaveLength(b.length);
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - (b[i] as number))), 0);
}

describe('python_function flavor: the API, mlflow.pyfunc and mlflow models serve agree', () => {
  const home = tempHome('driftwood-pyfunc-');
  // The venv's bin first: `mlflow models serve` runs uvicorn from PATH.
  const env = {
    MLFLOW_TRACKING_URI: inject('mlflowUri'),
    PATH: `${path.dirname(PYTHON)}${path.delimiter}${process.env.PATH ?? ''}`,
  };
  let db: Warehouse;
  let mlflow: MlflowClient;
  let rows: Row[];
  let columns: string[];
  const trained: Trained[] = [];
  let forecast: TrainedForecast;
  let servers: Promise<{ url: string; stop: () => void }[]>;

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    ({ db } = await seededWarehouse({ hours: 120, seed: 11, customers: 1300 }));
    // The gbdt version is calibrated by isotonic regression: the same contract, with that one line.
    const isotonicContracts = path.join(home, 'contracts-isotonic');
    cpSync(path.join(ROOT, 'contracts'), isotonicContracts, { recursive: true });
    const churn = path.join(isotonicContracts, 'churn.yaml');
    writeFileSync(
      churn,
      readFileSync(churn, 'utf8').replace(
        '  label_delay_hours: 24\n',
        '  label_delay_hours: 24\n  calibration: isotonic\n',
      ),
    );
    const experiment = uniqueName('pyfunc');
    let cutoff = 0;
    for (const k of KINDS) {
      const name = uniqueName(`churn-pyfunc-${k.kind}`);
      const result = await runTrain(
        {
          dataset: 'churn',
          experiment,
          modelName: name,
          horizonHours: 48,
          labelDelayHours: 24,
          params: { kind: k.kind, ...k.params },
          holdoutFraction: 0.2,
          validationFraction: 0.15,
          ...(k.calibration === 'isotonic' ? { contractsDir: isotonicContracts } : {}),
        },
        {
          db,
          mlflow,
          log: silentLog,
          now: Date.now,
          source: { commit: 'abc1234', user: 'test', packages: {} },
        },
      );
      await mlflow.setAlias(name, 'champion', result.modelVersion as string);
      cutoff = Date.parse(result.cutoff);
      trained.push({
        kind: k.kind,
        calibration: k.calibration,
        name,
        version: result.modelVersion as string,
        runId: result.runId,
        holdoutRows: result.rows.holdout,
        api: [],
      });
    }

    const warehouse = (await buildChurnRows(db, cutoff, 48)).slice(0, 1000).map((r) => r.features);
    expect(warehouse).toHaveLength(1000);
    // Rows the warehouse rarely holds: every number missing (imputed, missing indicators set) and
    // categories no training row had (the unseen bucket).
    const first = warehouse[0] as Row;
    const numeric = Object.keys(first).filter((k) => typeof first[k] === 'number');
    const categorical = Object.keys(first).filter((k) => typeof first[k] === 'string');
    const edge: Row[] = [
      { ...first, ...Object.fromEntries(numeric.map((k) => [k, null])) },
      { ...first, ...Object.fromEntries(categorical.map((k) => [k, 'never-seen-in-training'])) },
      { ...(warehouse[1] as Row), [numeric[0] as string]: null, [categorical[0] as string]: 'zz' },
    ];
    rows = [...warehouse, ...edge];
    columns = Object.keys(first);

    for (const t of trained) {
      const app: FastifyInstance = await buildApp({
        openAccess: true,
        mlflow,
        modelName: t.name,
        alias: 'champion',
      });
      try {
        await app.ready();
        // In the API's batches (at most 100 rows each), as a client sends them.
        for (let at = 0; at < rows.length; at += 100) {
          const payload = { rows: rows.slice(at, at + 100) };
          const res = await app.inject({ method: 'POST', url: '/v1/predict/batch', payload });
          expect(res.statusCode, res.body).toBe(200);
          const body = res.json() as { predictions: { probability: number; model: { version: string } }[] };
          expect(body.predictions.every((p) => p.model.version === t.version)).toBe(true);
          t.api.push(...body.predictions.map((p) => p.probability));
        }
      } finally {
        await app.close();
      }
    }
    forecast = await trainForecast();
    // Started now and awaited by the serving test: their slow starts overlap the tests before it.
    servers = Promise.all([...trained, forecast].map((t) => serveModel(`models:/${t.name}@champion`, env)));
    servers.catch(() => undefined);
  });

  /**
   * A small LSTM on simulated candles written straight into the warehouse's candles table (the
   * forecast tests cover simulate and ingest), its champion scored through `/v1/forecast`.
   */
  async function trainForecast(): Promise<TrainedForecast> {
    const { candles: simulated } = simulateCandles({
      start: Date.parse('2026-03-01T00:00:00Z'),
      hours: 400,
      seed: 5,
      // No outages: the newest FORECAST_WINDOWS + 24 hours are one consecutive run.
      gapRate: 0,
    });
    await db.schema.createTable('candles', (t) => {
      t.bigInteger('open_time').primary();
      for (const c of ['open', 'high', 'low', 'close', 'volume']) t.double(c);
    });
    await db.batchInsert('candles', simulated.map(candleRow), 200);
    const name = uniqueName('btc-pyfunc-lstm');
    const result = await runForecastTrain(
      {
        contract: await loadContract('btc'),
        experiment: uniqueName('pyfunc-lstm'),
        modelName: name,
        params: { seed: 5, epochs: 2, units: 8 },
      },
      {
        db,
        mlflow,
        log: silentLog,
        now: Date.now,
        source: { commit: undefined, user: 'test', packages: {} },
      },
    );
    await mlflow.setAlias(name, 'champion', result.modelVersion);
    const need = 25;
    const run = newestConsecutiveRun(await loadCandles(db), FORECAST_WINDOWS + need - 1);
    expect(run).toHaveLength(FORECAST_WINDOWS + need - 1);
    const candles = run.map(candleRow);
    const app: FastifyInstance = await buildApp({
      openAccess: true,
      mlflow,
      modelName: uniqueName('no-churn-model'),
      alias: 'champion',
      forecast: { modelName: name, alias: 'champion', refreshMs: 60_000 },
    });
    const api: Forecast[] = [];
    try {
      await app.ready();
      for (let k = 0; k + need <= candles.length; k++) {
        const payload = { candles: candles.slice(k, k + need) };
        const res = await app.inject({ method: 'POST', url: '/v1/forecast', payload });
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json() as { forecast: Forecast; model: { version: string } };
        expect(body.model.version).toBe(result.modelVersion);
        api.push(body.forecast);
      }
    } finally {
      await app.close();
    }
    return { name, version: result.modelVersion, runId: result.runId, candles, api };
  }

  afterAll(async () => {
    for (const stop of serving) stop();
    await db?.destroy();
  });

  const split = () => ({ columns, data: rows.map((r) => columns.map((c) => r[c] ?? null)) });
  const forecastSplit = () => {
    const cols = Object.keys(forecast.candles[0] ?? {});
    return { columns: cols, data: forecast.candles.map((c) => cols.map((k) => c[k])) };
  };

  it('registers every kind with the python_function flavor, its code, environment and input example', async () => {
    for (const t of trained) {
      const mv = await mlflow.getModelVersion(t.name, t.version);
      const root = await mlflow.resolveVersionArtifacts(mv);
      const mlmodel = (await mlflow.downloadArtifact(root, 'MLmodel')).toString();
      expect(mlmodel).toMatch(
        /\n {2}python_function:\n {4}loader_module: driftwood_pyfunc\n {4}code: code\n/,
      );
      const requirements = (await mlflow.downloadArtifact(root, 'requirements.txt')).toString();
      expect(requirements).toMatch(/^mlflow==\S+\nnumpy==\S+\npandas==\S+\n$/);
      const calibration = JSON.parse((await mlflow.downloadArtifact(root, 'calibration.json')).toString());
      expect(calibration.method).toBe(t.calibration);
      if (t.kind === 'gbdt') {
        const trees = JSON.parse((await mlflow.downloadArtifact(root, 'gbdt.json')).toString());
        expect(trees.trees).toHaveLength(60);
      }
    }
    const mv = await mlflow.getModelVersion(forecast.name, forecast.version);
    const root = await mlflow.resolveVersionArtifacts(mv);
    const mlmodel = (await mlflow.downloadArtifact(root, 'MLmodel')).toString();
    expect(mlmodel).toMatch(
      /\n {2}tfjs:\n[\s\S]*\n {2}python_function:\n {4}loader_module: driftwood_pyfunc\n/,
    );
    expect(mlmodel).toContain('{"type":"long","name":"open_time","required":true}');
    const example = JSON.parse((await mlflow.downloadArtifact(root, 'input_example.json')).toString());
    expect(example.columns).toEqual(['open_time', 'open', 'high', 'low', 'close', 'volume']);
    expect(example.data).toHaveLength(25);
    const sample = JSON.parse((await mlflow.downloadArtifact(root, 'forecast-sample.json')).toString());
    expect(sample.log_returns).toHaveLength(24);
    expect(sample.candles).toHaveLength(48);
  });

  it('mlflow.pyfunc.load_model scores the rows as the API does, for every kind', async () => {
    const spec = path.join(home, 'pyfunc-input.json');
    const out = path.join(home, 'pyfunc-output.json');
    const uris = trained.map((t) => `models:/${t.name}/${t.version}`);
    const forecastUri = `models:/${forecast.name}/${forecast.version}`;
    const jobs = [...uris.map((uri) => ({ uri, ...split() })), { uri: forecastUri, ...forecastSplit() }];
    writeFileSync(spec, JSON.stringify({ jobs }));
    const r = await runProcess(PYTHON, ['-c', PYFUNC_SCRIPT, spec, out], env);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(out, 'utf8')) as Record<
      string,
      { flavors: string[]; predictions: number[] | Forecast[] }
    >;
    for (const [i, t] of trained.entries()) {
      const got = result[uris[i] as string];
      expect(got?.flavors).toContain('python_function');
      expect(got?.predictions).toHaveLength(rows.length);
      expect(maxDiff((got?.predictions ?? []) as number[], t.api), `${t.kind}`).toBeLessThanOrEqual(
        TOLERANCE,
      );
    }
    // Not a constant: the probabilities compared differ from row to row.
    for (const t of trained) expect(new Set(t.api).size, t.kind).toBeGreaterThan(2);
    const lstm = result[forecastUri];
    expect(lstm?.flavors).toContain('python_function');
    expect(forecast.api).toHaveLength(FORECAST_WINDOWS);
    expectSameForecasts((lstm?.predictions ?? []) as Forecast[], forecast.api, 'lstm pyfunc');
    expect(new Set(forecast.api.map((f) => f.log_return)).size).toBeGreaterThan(2);
  });

  it('mlflow models serve answers /invocations for models:/<name>@champion as the API does', async () => {
    // One server per version, started together at the end of beforeAll: each start is slow.
    const started = await servers;
    for (const [i, t] of trained.entries()) {
      const res = await fetch(`${started[i]?.url}/invocations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ dataframe_split: split() }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      const body = (await res.json()) as { predictions: number[] };
      expect(body.predictions).toHaveLength(rows.length);
      expect(maxDiff(body.predictions, t.api), `${t.kind}`).toBeLessThanOrEqual(TOLERANCE);
    }
    const res = await fetch(`${started[trained.length]?.url}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dataframe_split: forecastSplit() }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { predictions: Forecast[] };
    expectSameForecasts(body.predictions, forecast.api, 'lstm mlflow models serve');
    // A gap in the candles is refused as the API refuses it, naming the row.
    const gap = forecastSplit();
    gap.data.splice(3, 1);
    const refused = await fetch(`${started[trained.length]?.url}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dataframe_split: gap }),
    });
    expect(refused.ok).toBe(false);
    expect(await refused.text()).toContain('SCHEMA_MISMATCH: row 3, open_time: expected consecutive hours');
  }, 900_000);

  it('mlflow.models.evaluate on the champion, in a child run of its training run, finds the holdout metrics training recorded', async () => {
    // The logistic version: Platt scaling keeps the model's ranking, so the ROC AUC is the model's.
    const t = trained[0] as Trained;
    const out = path.join(home, 'evaluate.json');
    const r = await runProcess(
      PYTHON,
      ['-m', 'driftwood_mlflow.evaluate', '--model', t.name, '--alias', 'champion', '--output', out],
      { ...env, PYTHONPATH: path.join(ROOT, 'python') },
    );
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(out, 'utf8')) as {
      model_version: string;
      training_run_id: string;
      evaluation_run_id: string;
      rows: number;
    };
    expect([result.model_version, result.training_run_id, result.rows]).toEqual([
      t.version,
      t.runId,
      t.holdoutRows,
    ]);
    const [evaluation, training] = await Promise.all([
      mlflow.getRun(result.evaluation_run_id),
      mlflow.getRun(t.runId),
    ]);
    const metric = (run: typeof training, key: string) => run.data.metrics?.find((m) => m.key === key)?.value;
    const tag = (run: typeof training, key: string) => run.data.tags?.find((m) => m.key === key)?.value;
    expect(tag(evaluation, 'mlflow.parentRunId')).toBe(t.runId);
    expect(evaluation.info.experiment_id).toBe(training.info.experiment_id);
    expect(evaluation.info.status).toBe('FINISHED');
    // MLflow's names for a classifier's metrics, beside the ones Driftwood's training logged.
    const pairs = [
      ['roc_auc', 'holdout_roc_auc'],
      ['log_loss', 'holdout_log_loss'],
      ['accuracy_score', 'holdout_accuracy'],
      ['precision_score', 'holdout_precision'],
      ['recall_score', 'holdout_recall'],
      ['f1_score', 'holdout_f1'],
    ] as const;
    for (const [theirs, ours] of pairs) {
      const [a, b] = [metric(evaluation, theirs), metric(training, ours)];
      expect(a, theirs).toBeTypeOf('number');
      expect(Math.abs((a as number) - (b as number)), `${theirs} ${a} vs ${ours} ${b}`).toBeLessThanOrEqual(
        1e-9,
      );
    }
    expect(metric(evaluation, 'example_count')).toBe(t.holdoutRows);
    expect(evaluation.inputs?.dataset_inputs?.map((d) => d.dataset.name)).toContain(
      `${t.name}-v${t.version}-holdout`,
    );
    const artifacts = await mlflow.listArtifacts(evaluation.info.artifact_uri);
    expect(artifacts.map((a) => a.path)).toContain('confusion_matrix.png');
  });

  it('mlflow.models.evaluate (regressor) on the forecast champion finds the test metrics training recorded', async () => {
    const out = path.join(home, 'evaluate-forecast.json');
    const r = await runProcess(
      PYTHON,
      ['-m', 'driftwood_mlflow.evaluate', '--model', forecast.name, '--alias', 'champion', '--output', out],
      { ...env, PYTHONPATH: path.join(ROOT, 'python') },
    );
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(out, 'utf8')) as {
      task: string;
      model_version: string;
      training_run_id: string;
      evaluation_run_id: string;
      rows: number;
    };
    expect([result.task, result.model_version, result.training_run_id]).toEqual([
      'sequence_forecast',
      forecast.version,
      forecast.runId,
    ]);
    const [evaluation, training] = await Promise.all([
      mlflow.getRun(result.evaluation_run_id),
      mlflow.getRun(forecast.runId),
    ]);
    const metric = (run: typeof training, key: string) =>
      run.data.metrics?.find((m) => m.key === key)?.value as number;
    const param = (run: typeof training, key: string) => run.data.params?.find((m) => m.key === key)?.value;
    expect(evaluation.data.tags?.find((t) => t.key === 'mlflow.parentRunId')?.value).toBe(forecast.runId);
    // The very windows training scored its test period on.
    const n = Number(param(training, 'windows_test'));
    expect(n).toBeGreaterThan(10);
    expect([result.rows, metric(evaluation, 'example_count')]).toEqual([n, n]);
    // Each forecast price is within 1e-6 relative of TF.js's (the parity above), so by the triangle
    // inequality RMSE and MAE differ by at most 1e-6 of the largest price (forecasts stay within 10%
    // of the closes), MAPE by 1e-6 x 100 x price/actual percentage points, and the directional
    // accuracy by one window whose forecast move is within 1e-6 of zero.
    const candles = JSON.parse(
      (await mlflow.downloadArtifact(training.info.artifact_uri, 'evaluation/test-candles.json')).toString(),
    ) as { close: number }[];
    const bound = 1e-6 * 1.1 * Math.max(...candles.map((c) => c.close));
    const pairs = [
      ['root_mean_squared_error', 'test_rmse', bound],
      ['mean_absolute_error', 'test_mae', bound],
      ['directional_accuracy', 'test_directional_accuracy', 1 / n],
      ['rmse_vs_persistence', 'test_rmse_vs_persistence', bound / metric(training, 'persistence_rmse')],
    ] as const;
    for (const [theirs, ours, tolerance] of pairs) {
      const [a, b] = [metric(evaluation, theirs), metric(training, ours)];
      expect(a, theirs).toBeTypeOf('number');
      expect(Math.abs(a - b), `${theirs} ${a} vs ${ours} ${b}`).toBeLessThanOrEqual(tolerance);
    }
    // MLflow's MAPE is a fraction, Driftwood's a percentage.
    const mape = metric(evaluation, 'mean_absolute_percentage_error') * 100;
    expect(Math.abs(mape - metric(training, 'test_mape'))).toBeLessThanOrEqual(1.1e-4);
    expect(metric(evaluation, 'r2_score')).toBeTypeOf('number');
  });

  it('the package computes transformRow and applyCalibration on odd inputs as the TypeScript does', async () => {
    const mv = await mlflow.getModelVersion((trained[1] as Trained).name, (trained[1] as Trained).version);
    const root = await mlflow.resolveVersionArtifacts(mv);
    const stateJson = JSON.parse((await mlflow.downloadArtifact(root, 'transform.json')).toString());
    const state = parseTransformState(stateJson);
    // Numbers as JavaScript's Number reads them (numeric strings, hex, blanks, out of range, not
    // finite), categories that are empty, not strings, absent or unseen.
    const numericOdd: unknown[] = [
      '12',
      ' 7.5 ',
      '0x1f',
      '1e3',
      '',
      'abc',
      true,
      'Infinity',
      '-1e400',
      1e15,
      -1e15,
      null,
    ];
    const categoricalOdd: unknown[] = [
      '',
      5,
      null,
      'unseen-value',
      state.categorical[0]?.categories[0] ?? 'x',
    ];
    const odd: Row[] = [{}];
    // Row i gives numeric field k the odd value i + k, so each field meets each value in some row.
    for (let i = 0; i < numericOdd.length; i++)
      odd.push(
        Object.fromEntries(state.numeric.map((n, k) => [n.name, numericOdd[(i + k) % numericOdd.length]])),
      );
    for (const v of categoricalOdd) odd.push(Object.fromEntries(state.categorical.map((c) => [c.name, v])));
    // Scores at, between and beyond the knots of an isotonic map fitted on noisy synthetic labels.
    const train = Array.from({ length: 400 }, (_, i) => (i + 0.5) / 400);
    const labels = train.map((p, i) => (Math.sin(i * 12.9898) * 0.5 + 0.5 < p ? 1 : 0));
    const calibrations = {
      isotonic: fitCalibration(train, labels, 'isotonic'),
      platt: fitCalibration(train, labels, 'platt'),
    };
    const scores = [0, 1e-9, 1, ...train, ...Array.from({ length: 997 }, (_, i) => i / 996)];
    const spec = path.join(home, 'functions-input.json');
    const out = path.join(home, 'functions-output.json');
    writeFileSync(spec, JSON.stringify({ state: stateJson, rows: odd, scores, calibrations }));
    const r = await runProcess(PYTHON, ['-c', FUNCTIONS_SCRIPT, spec, out], {
      PYTHONPATH: path.join(ROOT, 'python'),
    });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(out, 'utf8')) as {
      vectors: number[][];
      calibrated: Record<string, number[]>;
    };
    const width = state.outputs.length;
    const want = transformRows(state, odd);
    for (const [i, v] of result.vectors.entries())
      expect(v, JSON.stringify(odd[i])).toEqual(Array.from(want.subarray(i * width, (i + 1) * width)));
    for (const [method, c] of Object.entries(calibrations)) {
      const got = result.calibrated[method] ?? [];
      expect(
        maxDiff(
          got,
          scores.map((p) => applyCalibration(c, p)),
        ),
        method,
      ).toBeLessThanOrEqual(1e-12);
    }
    expect(calibrations.isotonic.method).toBe('isotonic');
  });
});
