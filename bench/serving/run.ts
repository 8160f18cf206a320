/**
 * Serving benchmark, side by side in one run on the same churn customers and the same request mix:
 *   1. our API: `driftwood serve` with Basic auth on and the prediction log on, POST /v1/predict,
 *      with BENCH_WORKERS processes (DRIFTWOOD_API_WORKERS; default one per core), serving a TF.js
 *      logistic champion
 *   2. the same API serving a gradient-boosted-trees champion (same transform, same customers)
 *   3. our API, POST /v1/predict/batch with 100 rows a request (rows/s = req/s × 100)
 *   4. `mlflow models serve` (2 uvicorn workers) serving the same logistic version through its
 *      `python_function` flavor, and a second one serving the same GBDT version
 *   5. a Fastify route that returns a constant (the ceiling for any Node API here), in one process
 *      and under node:cluster with as many workers as the API (like for like)
 * plus, in process, one-row scoring with the typed-array fast path against tf.predict and against
 * the compiled trees. Before the load, the same rows go to our API and to `mlflow models serve`, and
 * the run stops unless every probability agrees within 1e-6 (the parity the pyfunc flavor promises).
 * Load comes from autocannon in a process of its own (cannon.ts), with the same connections, warm-up
 * and duration for every target; each target's CPU time per request is read from /proc beside it.
 *
 *   make bench-serving       (BENCH_SECONDS, BENCH_WARMUP, BENCH_PRIME, BENCH_ROUNDS, BENCH_CONCURRENCY,
 *                             BENCH_WORKERS, BENCH_PORT_BASE, MLFLOW_TRACKING_URI to reuse a server)
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import {
  CHURN_CATEGORICAL,
  CHURN_NUMERIC,
  fitTransform,
  initTf,
  loadModelFiles,
  loadModelVersion,
  MlflowClient,
  Rng,
  type Row,
  type TransformState,
  tf,
  transformRow,
  transformRows,
} from '@driftwood/tasks';
import { sampleCpu } from './cpu.js';
import { type LoadResult, type LoadTarget, runLoad } from './load.js';
import { countLogLines } from './log-lines.js';

// Run from the repository root (make bench-serving does). The model modules below are not part of
// the package's public entry, so they are loaded from the build by path (as bench/train does).
const root = process.cwd();
const load = <T>(rel: string): Promise<T> =>
  import(pathToFileURL(path.join(root, 'tasks', 'dist', rel)).href);
const { DEFAULT_GBDT_PARAMS, compileGbdt, fitGbdt, parseGbdtModel } =
  await load<typeof import('../../tasks/dist/models/gbdt.js')>('models/gbdt.js');
type GbdtModel = import('../../tasks/dist/models/gbdt.js').GbdtModel;
const { GBDT_FILE, gbdtTrainedModel, tfTrainedModel } =
  await load<typeof import('../../tasks/dist/models/trained-model.js')>('models/trained-model.js');
const { compileDenseChain } =
  await load<typeof import('../../tasks/dist/models/dense-fast-path.js')>('models/dense-fast-path.js');
type TrainedModel = import('../../tasks/dist/models/trained-model.js').TrainedModel;
const { modelFolderFiles } =
  await load<typeof import('../../tasks/dist/train/model-folder.js')>('train/model-folder.js');
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const warmup = Number(process.env.BENCH_WARMUP ?? 2);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
// Targets take turns for several rounds and each reports its median round, so a burst of other
// work on a shared machine does not land on one target only.
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const prime = Number(process.env.BENCH_PRIME ?? 10);
// Processes of our API and of the cluster constant route: by default one per core, as a production
// deployment on this machine would run. 1 runs each in a single process.
const workers = Number(process.env.BENCH_WORKERS ?? availableParallelism());
if (!Number.isInteger(workers) || workers < 1 || workers > 64)
  throw new Error(`BENCH_WORKERS must be an integer from 1 to 64, not ${process.env.BENCH_WORKERS}`);
const workersName = `${workers} worker${workers === 1 ? '' : 's'}`;
// BENCH_PORT_BASE moves all seven ports (API base, mlflow models serve +1, constant route +2, its
// cluster form +3, the API serving the trees +4, mlflow models serve with the trees +5, MLflow +10)
// off ports something else holds.
const portBase = Number(process.env.BENCH_PORT_BASE ?? 7250);
const PORTS = {
  api: portBase,
  mlflowServe: portBase + 1,
  constant: portBase + 2,
  constantCluster: portBase + 3,
  apiGbdt: portBase + 4,
  mlflowServeGbdt: portBase + 5,
  mlflow: portBase + 10,
};
const dir = path.join(root, '.driftwood', 'bench', 'serving');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const children: ChildProcess[] = [];
const log = (msg: string) => process.stderr.write(`▶ ${msg}\n`);

async function waitFor(url: string, child: ChildProcess, timeoutS = 180): Promise<void> {
  const until = Date.now() + timeoutS * 1000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited with ${child.exitCode}`);
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not come up in ${timeoutS} s`);
}

function start(cmd: string, args: string[], env: Record<string, string>, logName: string): ChildProcess {
  const out = path.join(dir, `${logName}.log`);
  const child = spawn('bash', ['-c', `exec "$0" "$@" > "${out}" 2>&1`, cmd, ...args], {
    env: { ...process.env, ...env },
    stdio: 'ignore',
    detached: true,
  });
  children.push(child);
  return child;
}

function stopAll(): void {
  for (const c of children.splice(0)) {
    if (c.exitCode !== null || !c.pid) continue;
    try {
      process.kill(-c.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}
process.on('exit', stopAll);
// The MLflow server this run started, if any: stopped at the end, since the next run deletes its
// folder and would find it answering on a removed database.
let ownMlflowPort: number | undefined;
function stopOwnMlflow(): void {
  if (ownMlflowPort === undefined) return;
  spawnSync(path.join(root, 'scripts', 'mlflow.sh'), ['stop', String(ownMlflowPort)], { stdio: 'inherit' });
  ownMlflowPort = undefined;
}

/** Stops one server with SIGTERM and waits for it to exit (our API writes its log as it closes). */
async function stopAndWait(child: ChildProcess, timeoutS = 60): Promise<void> {
  if (child.exitCode !== null || !child.pid) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(-child.pid, 'SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, timeoutS * 1000))]);
  if (child.exitCode === null) throw new Error(`our API did not exit within ${timeoutS} s of SIGTERM`);
}

/** Customers like the simulator's, with a label that depends on engagement and friction. */
function customers(n: number, seed: number): { rows: Row[]; labels: number[] } {
  const rng = new Rng(seed);
  const plans = ['basic', 'standard', 'premium'];
  const regions = ['north', 'south', 'east', 'west'];
  const rows: Row[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const row: Row = {
      customer_id: `B${seed}-${i}`,
      plan: plans[rng.int(0, 3)],
      region: regions[rng.int(0, 4)],
    };
    for (const f of CHURN_NUMERIC)
      row[f] = rng.next() < 0.03 ? null : Math.round(rng.next() * 100 * 100) / 100;
    const z =
      -0.04 * (row.sessions_30d as number) +
      0.05 * (row.tickets_30d as number) +
      (row.plan === 'basic' ? 0.8 : 0) -
      0.5;
    rows.push(row);
    labels.push(rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0);
  }
  return { rows, labels };
}

/**
 * Registers a fitted model as a new model's version and points `champion` at it, with the folder
 * training registers (modelFolderFiles, tasks/src/train/model-folder.ts). So our API and
 * `mlflow models serve -m models:/<name>@champion` load the very same version.
 */
async function registerChampion(
  mlflow: MlflowClient,
  name: string,
  trained: TrainedModel,
  state: TransformState,
  holdout: Row[],
) {
  const experimentId = await mlflow.ensureExperiment('driftwood-bench-serving');
  const run = await mlflow.createRun({ experimentId, runName: name, tags: { 'mlflow.user': 'bench' } });
  const logged = await mlflow.createLoggedModel({
    experimentId,
    name,
    sourceRunId: run.info.run_id,
    modelType: trained.modelType,
  });
  // The bench does not calibrate: the folder says so (`none`), as a version registered before calibration would.
  const files = await modelFolderFiles({
    model: trained,
    state,
    calibration: { method: 'none' },
    holdout,
    modelId: logged.info.model_id,
    runId: run.info.run_id,
    createdAt: new Date(),
  });
  for (const [file, content] of Object.entries(files))
    await mlflow.uploadArtifact(logged.info.artifact_uri, file, content);
  await mlflow.finalizeLoggedModel(logged.info.model_id, 'LOGGED_MODEL_READY');
  await mlflow.logModelOutput(run.info.run_id, logged.info.model_id);
  await mlflow.finishRun(run.info.run_id, 'FINISHED');
  await mlflow.ensureRegisteredModel(name);
  const mv = await mlflow.createModelVersion({
    name,
    source: `models:/${logged.info.model_id}`,
    modelId: logged.info.model_id,
    runId: run.info.run_id,
    tags: { 'driftwood.model_kind': trained.kind, 'driftwood.calibration': 'none' },
  });
  await mlflow.waitForVersionReady(name, mv.version);
  await mlflow.setAlias(name, 'champion', mv.version);
}

/** The last fifth of the customers: early stopping's validation part, and the versions' holdout rows. */
const holdoutCut = (n: number) => Math.floor(n * 0.8);

async function trainAndRegister(mlflow: MlflowClient, state: TransformState, rows: Row[], labels: number[]) {
  await initTf();
  const width = state.outputs.length;
  const model = tf.sequential({
    layers: [tf.layers.dense({ units: 1, activation: 'sigmoid', inputShape: [width] })],
  });
  model.compile({ optimizer: tf.train.adam(0.05), loss: 'binaryCrossentropy' });
  const x = tf.tensor2d(transformRows(state, rows), [rows.length, width]);
  const y = tf.tensor2d(labels, [labels.length, 1]);
  await model.fit(x, y, { epochs: 10, batchSize: 256, verbose: 0 });
  tf.dispose([x, y]);
  // What training wraps a TF.js model in: its modelType, files, and the dense fast path as scoreOne.
  const trained = tfTrainedModel(model, 'logistic', width, { bestEpoch: 9, epochsRun: 10 });
  const name = `bench-churn-${Date.now().toString(36)}`;
  await registerChampion(mlflow, name, trained, state, rows.slice(holdoutCut(rows.length)));
  trained.dispose();
  return name;
}

/**
 * Gradient-boosted trees with the default parameters on the same customers and transform: the last
 * fifth is the validation part early stopping watches. Registered as training registers a gbdt
 * version (tag driftwood.model_kind=gbdt, gbdt.json, and its sample scored by the compiled trees,
 * the scorer the API rebuilds).
 */
async function trainAndRegisterGbdt(
  mlflow: MlflowClient,
  state: TransformState,
  rows: Row[],
  labels: number[],
) {
  const width = state.outputs.length;
  const cut = holdoutCut(rows.length);
  const x = transformRows(state, rows);
  const y = Float32Array.from(labels);
  const fit = fitGbdt(
    {
      x: x.subarray(0, cut * width),
      y: y.subarray(0, cut),
      valX: x.subarray(cut * width),
      valY: y.subarray(cut),
      width,
    },
    DEFAULT_GBDT_PARAMS,
  );
  const trained = gbdtTrainedModel(fit.model, fit.bestIteration, fit.iterationsRun);
  const name = `bench-churn-gbdt-${Date.now().toString(36)}`;
  await registerChampion(mlflow, name, trained, state, rows.slice(cut));
  return { name, model: fit.model, iterationsRun: fit.iterationsRun };
}

/**
 * The same rows through our API (`/v1/predict/batch`, the batches of the request mix) and through
 * `mlflow models serve` (`/invocations`, one dataframe_split): the largest difference between the
 * two probabilities of a row. Throws above 1e-6, naming the row, so no figure is printed for a
 * server that answers something else.
 */
async function parityOf(
  apiPort: number,
  servePort: number,
  auth: Record<string, string>,
  batches: string[],
  split: { columns: string[]; data: unknown[][] },
): Promise<{ rows: number; maxDiff: number; distinct: number; min: number; max: number }> {
  const post = async (url: string, headers: Record<string, string>, body: string) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
  const ours: number[] = [];
  for (const body of batches) {
    const r = (await post(`http://127.0.0.1:${apiPort}/v1/predict/batch`, auth, body)) as {
      predictions: { probability: number }[];
    };
    ours.push(...r.predictions.map((p) => p.probability));
  }
  const theirs = (
    (await post(
      `http://127.0.0.1:${servePort}/invocations`,
      {},
      JSON.stringify({ dataframe_split: split }),
    )) as {
      predictions: number[];
    }
  ).predictions;
  if (theirs.length !== ours.length)
    throw new Error(`parity: our API answered ${ours.length} rows, mlflow models serve ${theirs.length}`);
  let maxDiff = 0;
  for (const [i, p] of ours.entries()) {
    const d = Math.abs(p - (theirs[i] as number));
    if (!(d <= 1e-6))
      throw new Error(`parity: row ${i} of the request mix: our API ${p}, mlflow models serve ${theirs[i]}`);
    maxDiff = Math.max(maxDiff, d);
  }
  return {
    rows: ours.length,
    maxDiff,
    distinct: new Set(ours).size,
    min: Math.min(...ours),
    max: Math.max(...ours),
  };
}

/** Split nodes a row passes through, summed over the trees, averaged over `vectors`. */
function meanSplitsPerRow(model: GbdtModel, vectors: Float32Array[]): number {
  let splits = 0;
  for (const x of vectors)
    for (const t of model.trees) {
      let node = 0;
      while ((t.feature[node] as number) >= 0) {
        const v = x[t.feature[node] as number] as number;
        const thr = t.threshold[node] as number;
        node = (v <= thr || (!(v > thr) && t.missingLeft[node]) ? t.left[node] : t.right[node]) as number;
        splits++;
      }
    }
  return splits / vectors.length;
}

/**
 * One-row scores per second, in process: what the API's fast path buys over TF.js op dispatch, and
 * what the trees cost beside it, with the transform (as the API scores) and on ready vectors (the
 * model alone).
 */
async function scoringMicrobench(mlflow: MlflowClient, name: string, gbdtName: string, rows: Row[]) {
  const champion = async (n: string) => {
    const mv = await mlflow.getVersionByAlias(n, 'champion');
    if (!mv) throw new Error(`${n} has no champion`);
    return { mv, root: await mlflow.resolveVersionArtifacts(mv) };
  };
  const logistic = await champion(name);
  const trees = await champion(gbdtName);
  const served = await loadModelVersion(mlflow, logistic.mv, 'champion');
  const servedGbdt = await loadModelVersion(mlflow, trees.mv, 'champion');
  const model = await loadModelFiles({
    modelJson: (await mlflow.downloadArtifact(logistic.root, 'model.json')).toString(),
    weights: await mlflow.downloadArtifact(logistic.root, 'weights.bin'),
  });
  const dense = compileDenseChain(model);
  if (!dense) throw new Error('the logistic model has no dense fast path');
  const gbdt = compileGbdt(
    parseGbdtModel(JSON.parse((await mlflow.downloadArtifact(trees.root, GBDT_FILE)).toString())),
  );
  const width = served.transform.outputs.length;
  const vectors = rows.slice(0, 500).map((r) => transformRow(served.transform, r));
  // Summed so that no call's result is dead code.
  let sink = 0;
  const time = (label: string, n: number, f: (i: number) => number) => {
    for (let i = 0; i < Math.min(n, 2000); i++) sink += f(i);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) sink += f(i);
    const s = (performance.now() - t0) / 1000;
    return { label, rowsPerSecond: n / s, microsPerRow: (s * 1e6) / n };
  };
  const fast = time('transform + typed-array fast path', 200_000, (i) =>
    served.score(rows[i % rows.length] as Row),
  );
  const fastTrees = time('transform + compiled trees (gbdt)', 200_000, (i) =>
    servedGbdt.score(rows[i % rows.length] as Row),
  );
  const denseOnly = time('typed-array fast path alone (ready vector)', 1_000_000, (i) => {
    const out = dense(vectors[i % vectors.length] as Float32Array);
    return out[0] as number;
  });
  const treesOnly = time('compileGbdt alone (ready vector)', 1_000_000, (i) =>
    gbdt(vectors[i % vectors.length] as Float32Array),
  );
  const tfOne = time('transform + tf.predict, one row', 5_000, (i) =>
    tf.tidy(
      () =>
        (
          model.predict(
            tf.tensor2d(transformRow(served.transform, rows[i % rows.length] as Row), [1, width]),
          ) as tf.Tensor
        ).dataSync()[0] as number,
    ),
  );
  const batch = rows.slice(0, 100);
  const tfBatch = time('transform + tf.predict, 100-row batch (per row)', 500, () =>
    tf.tidy(
      () =>
        (
          model.predict(tf.tensor2d(transformRows(served.transform, batch), [100, width])) as tf.Tensor
        ).dataSync()[0] as number,
    ),
  );
  tfBatch.rowsPerSecond *= 100;
  tfBatch.microsPerRow /= 100;
  served.dispose();
  servedGbdt.dispose();
  model.dispose();
  if (!Number.isFinite(sink)) throw new Error('a scorer answered a non-finite number');
  return [fast, fastTrees, denseOnly, treesOnly, tfOne, tfBatch];
}

async function main() {
  let trackingUri = process.env.MLFLOW_TRACKING_URI;
  if (!trackingUri) {
    log(`starting an MLflow server on :${PORTS.mlflow}`);
    spawnSync(
      path.join(root, 'scripts', 'mlflow.sh'),
      ['start', String(PORTS.mlflow), path.join(dir, 'mlflow')],
      {
        stdio: 'inherit',
      },
    );
    trackingUri = `http://127.0.0.1:${PORTS.mlflow}`;
    ownMlflowPort = PORTS.mlflow;
  }
  const mlflow = new MlflowClient(trackingUri, { timeoutMs: 30_000, retries: 2, backoffMs: 200 });
  const { rows, labels } = customers(5000, 1);
  const state = fitTransform(rows, { numeric: CHURN_NUMERIC, categorical: CHURN_CATEGORICAL });
  log('training the TF.js model and registering it as champion');
  const name = await trainAndRegister(mlflow, state, rows, labels);
  log('fitting the gradient-boosted trees and registering them as champion of a model of their own');
  const gbdtFit = await trainAndRegisterGbdt(mlflow, state, rows, labels);

  log('hashing the benchmark credential');
  const password = 'bench-password-0123';
  const hash = spawnSync('node', [path.join(root, 'serving', 'dist', 'bin', 'hash-password.js')], {
    input: password,
    encoding: 'utf8',
  }).stdout.trim();

  log(`starting the six servers (our APIs and the cluster constant route with ${workersName})`);
  // Two instances of our API, one per champion, with the same settings; the one not being loaded
  // sits idle.
  const startApi = (model: string, port: number, home: string) =>
    start(
      'node',
      [path.join(root, 'tasks', 'dist', 'cli.js'), 'serve'],
      {
        LOG_LEVEL: 'warn',
        DRIFTWOOD_HOME: path.join(dir, home),
        MLFLOW_TRACKING_URI: trackingUri,
        DRIFTWOOD_MODEL_NAME: model,
        DRIFTWOOD_API_PORT: String(port),
        DRIFTWOOD_API_WORKERS: String(workers),
        DRIFTWOOD_API_CREDENTIALS: `bench:predict:${hash}`,
        // The limiter stays on (counted per credential); its ceiling is raised so that the benchmark
        // measures serving rather than 429s: 6000/min, the default, is 100 req/s.
        DRIFTWOOD_API_RATE_LIMIT: '10000000',
        DRIFTWOOD_PII_KEY: 'bench-pii-key-0123456789',
      },
      home === 'home' ? 'api' : 'api-gbdt',
    );
  const api = startApi(name, PORTS.api, 'home');
  const apiGbdt = startApi(gbdtFit.name, PORTS.apiGbdt, 'home-gbdt');
  // MLflow's own server on the same registered versions, through their python_function flavor, in
  // the environment the versions pin (.venvs/mlflow; its bin first: the CLI starts uvicorn from PATH).
  const venv = path.join(root, '.venvs', 'mlflow', 'bin');
  const startMlflowServe = (model: string, port: number, logName: string) =>
    start(
      path.join(venv, 'mlflow'),
      [
        'models',
        'serve',
        '-m',
        `models:/${model}@champion`,
        '--env-manager',
        'local',
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-w',
        '2',
      ],
      { MLFLOW_TRACKING_URI: trackingUri, PATH: `${venv}:${process.env.PATH}` },
      logName,
    );
  const mlflowServe = startMlflowServe(name, PORTS.mlflowServe, 'mlflow-serve');
  const mlflowServeGbdt = startMlflowServe(gbdtFit.name, PORTS.mlflowServeGbdt, 'mlflow-serve-gbdt');
  const constantJs = path.join(root, '.driftwood', 'bench-build', 'serving', 'constant-server.js');
  const constant = start('node', [constantJs, String(PORTS.constant)], {}, 'constant');
  const constantCluster = start(
    'node',
    [constantJs, String(PORTS.constantCluster), String(workers)],
    {},
    'constant-cluster',
  );
  await waitFor(`http://127.0.0.1:${PORTS.api}/health/ready`, api);
  await waitFor(`http://127.0.0.1:${PORTS.apiGbdt}/health/ready`, apiGbdt);
  await waitFor(`http://127.0.0.1:${PORTS.mlflowServe}/ping`, mlflowServe, 600);
  await waitFor(`http://127.0.0.1:${PORTS.mlflowServeGbdt}/ping`, mlflowServeGbdt, 600);
  await waitFor(`http://127.0.0.1:${PORTS.constant}/health`, constant);
  await waitFor(`http://127.0.0.1:${PORTS.constantCluster}/health`, constantCluster);

  // The same 500 customers, in the same order, for every target.
  const mix = rows.slice(0, 500);
  const one = mix.map((r) => JSON.stringify(r));
  // The pyfunc takes the raw fields as a dataframe_split in the signature's columns (numbers, then
  // categories; a missing number as null), the body its serving input example shows.
  const columns = [...state.numeric.map((n) => n.name), ...state.categorical.map((c) => c.name)];
  const split = (rs: Row[]) => ({ columns, data: rs.map((r) => columns.map((c) => r[c] ?? null)) });
  const auth = { authorization: `Basic ${Buffer.from(`bench:${password}`).toString('base64')}` };
  const batches = Array.from({ length: 5 }, (_, b) =>
    JSON.stringify({ rows: mix.slice(b * 100, b * 100 + 100) }),
  );
  log('parity: the request mix through our APIs and through mlflow models serve');
  const parity = {
    logistic: await parityOf(PORTS.api, PORTS.mlflowServe, auth, batches, split(mix)),
    gbdt: await parityOf(PORTS.apiGbdt, PORTS.mlflowServeGbdt, auth, batches, split(mix)),
  };
  // `node`: a Node server, whose main threads' CPU time (its event loops, summed over the processes
  // of a cluster: cpu.ts) is shown apart. `key` names the runs the ratios below compare.
  const targets: (LoadTarget & {
    key: 'constant' | 'constantCluster' | 'ours' | 'gbdt' | 'batch' | 'mlflow' | 'mlflowGbdt';
    pid: number | undefined;
    node: boolean;
  })[] = [
    {
      key: 'constant',
      name: 'constant Fastify route (1 process)',
      origin: `http://127.0.0.1:${PORTS.constant}`,
      path: '/v1/predict',
      headers: {},
      bodies: one,
      pid: constant.pid,
      node: true,
    },
    {
      key: 'constantCluster',
      name: `constant Fastify route (${workersName})`,
      origin: `http://127.0.0.1:${PORTS.constantCluster}`,
      path: '/v1/predict',
      headers: {},
      bodies: one,
      pid: constantCluster.pid,
      node: true,
    },
    {
      key: 'ours',
      name: 'Driftwood /v1/predict (auth + log)',
      origin: `http://127.0.0.1:${PORTS.api}`,
      path: '/v1/predict',
      headers: auth,
      bodies: one,
      pid: api.pid,
      node: true,
    },
    // Right after the logistic champion in every round, so the two are measured back to back.
    {
      key: 'gbdt',
      name: 'Driftwood /v1/predict, GBDT champion',
      origin: `http://127.0.0.1:${PORTS.apiGbdt}`,
      path: '/v1/predict',
      headers: auth,
      bodies: one,
      pid: apiGbdt.pid,
      node: true,
    },
    {
      key: 'batch',
      name: 'Driftwood /v1/predict/batch ×100',
      origin: `http://127.0.0.1:${PORTS.api}`,
      path: '/v1/predict/batch',
      headers: auth,
      bodies: batches,
      pid: api.pid,
      node: true,
    },
    {
      key: 'mlflow',
      name: 'mlflow models serve, logistic (2 workers)',
      origin: `http://127.0.0.1:${PORTS.mlflowServe}`,
      path: '/invocations',
      headers: {},
      bodies: mix.map((r) => JSON.stringify({ dataframe_split: split([r]) })),
      pid: mlflowServe.pid,
      node: false,
    },
    {
      key: 'mlflowGbdt',
      name: 'mlflow models serve, GBDT (2 workers)',
      origin: `http://127.0.0.1:${PORTS.mlflowServeGbdt}`,
      path: '/invocations',
      headers: {},
      bodies: mix.map((r) => JSON.stringify({ dataframe_split: split([r]) })),
      pid: mlflowServeGbdt.pid,
      node: false,
    },
  ];
  // A fresh process is not at its steady state (JIT, heap sizing): each target is loaded once,
  // unmeasured, before the rounds, so round 1 is not a measure of warming up.
  // Predictions our API answered (2xx, warm-up and priming included; a batch answers 100): the
  // prediction log must hold exactly as many lines once the API has shut down. Per API instance.
  // The parity check's rows count too.
  let predictionsAnswered = parity.logistic.rows;
  let gbdtPredictionsAnswered = parity.gbdt.rows;
  const countAnswered = (t: (typeof targets)[number], r: LoadResult) => {
    if (t.key === 'ours') predictionsAnswered += r.answered2xx;
    if (t.key === 'batch') predictionsAnswered += r.answered2xx * 100;
    if (t.key === 'gbdt') gbdtPredictionsAnswered += r.answered2xx;
  };
  for (const t of targets) {
    if (prime <= 0) break;
    log(`priming ${t.name} for ${prime} s (not measured)`);
    countAnswered(t, await runLoad(t, { concurrency, warmupS: 0, durationS: prime, specDir: dir }));
  }
  const perTarget: LoadResult[][] = targets.map(() => []);
  for (let round = 1; round <= rounds; round++) {
    for (const [i, t] of targets.entries()) {
      log(
        `round ${round}/${rounds}: ${t.name} (${concurrency} connections, ${warmup} s warm-up, ${seconds} s measured)`,
      );
      const before = t.pid ? sampleCpu(t.pid) : undefined;
      const r = await runLoad(t, { concurrency, warmupS: warmup, durationS: seconds, specDir: dir });
      countAnswered(t, r);
      const after = t.pid ? sampleCpu(t.pid) : undefined;
      if (before && after && r.answered > 0) {
        r.serverCpuUsPerRequest = ((after.group - before.group) * 1e6) / r.answered;
        if (t.node)
          r.serverMainThreadsCpuUsPerRequest = ((after.mainThreads - before.mainThreads) * 1e6) / r.answered;
      }
      perTarget[i]?.push(r);
    }
  }
  rmSync(path.join(dir, 'load-spec.json'), { force: true });
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const results = perTarget.map(
    (runs) => [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)] as LoadResult,
  );
  // The server's own count of predictions made: it includes the requests answered after the
  // generator stopped counting at the end of a run, so the log must match it exactly.
  const predictionsMadeBy = (port: number) =>
    fetch(`http://127.0.0.1:${port}/metrics`, { headers: auth })
      .then((r) => r.text())
      .then((text) =>
        text
          .split('\n')
          .filter((l) => l.startsWith('driftwood_predictions_total{'))
          .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0),
      );
  const predictionsMade = await predictionsMadeBy(PORTS.api);
  const gbdtPredictionsMade = await predictionsMadeBy(PORTS.apiGbdt);
  log('stopping our APIs (SIGTERM) and counting their prediction log lines');
  await stopAndWait(api);
  await stopAndWait(apiGbdt);
  const linesWritten = await countLogLines(path.join(dir, 'home', 'predictions'));
  const gbdtLinesWritten = await countLogLines(path.join(dir, 'home-gbdt', 'predictions'));
  stopAll();
  log('in-process scoring: fast path against tf.predict and the compiled trees');
  const scoring = await scoringMicrobench(mlflow, name, gbdtFit.name, rows);
  const gbdtModel = gbdtFit.model;
  const splitsPerRow = meanSplitsPerRow(
    gbdtModel,
    rows.slice(0, 500).map((r) => transformRow(state, r)),
  );
  const leaves = gbdtModel.trees.reduce((n, t) => n + t.feature.filter((f) => f === -1).length, 0);

  const pad = (s: string, n: number) => s.padEnd(n);
  const fmt = (n: number | undefined, d = 0, w = 10) => (n === undefined ? '–' : n.toFixed(d)).padStart(w);
  const say = (line = '') => process.stdout.write(`${line}\n`);
  say();
  say(
    `Serving benchmark — autocannon, ${concurrency} connections, ${prime} s priming, ${warmup} s warm-up, median of ${rounds} rounds of ${seconds} s, BENCH_WORKERS=${workers} (node ${process.version}, ${availableParallelism()} cores, load average ${loadavg()[0]?.toFixed(1)})`,
  );
  say();
  say(
    `${pad('target', 44)}${'req/s'.padStart(10)}${'p50 ms'.padStart(10)}${'p99 ms'.padStart(10)}${'errors'.padStart(8)}` +
      `${'server CPU µs/req'.padStart(19)}${'(main threads)'.padStart(16)}${'generator CPU µs/req'.padStart(22)}`,
  );
  for (const r of results)
    say(
      `${pad(r.name, 44)}${fmt(r.rps)}${fmt(r.p50ms, 2)}${fmt(r.p99ms, 2)}${fmt(r.errors, 0, 8)}` +
        `${fmt(r.serverCpuUsPerRequest, 1, 19)}${fmt(r.serverMainThreadsCpuUsPerRequest, 1, 16)}${fmt(r.generatorCpuUsPerRequest, 1, 22)}`,
    );
  const runsOf = (key: (typeof targets)[number]['key']) =>
    perTarget[targets.findIndex((t) => t.key === key)] as LoadResult[];
  const [constantRuns, constantClusterRuns, oursRuns, gbdtRuns, batchRuns, mlflowRuns, mlflowGbdtRuns] = (
    ['constant', 'constantCluster', 'ours', 'gbdt', 'batch', 'mlflow', 'mlflowGbdt'] as const
  ).map(runsOf) as [
    LoadResult[],
    LoadResult[],
    LoadResult[],
    LoadResult[],
    LoadResult[],
    LoadResult[],
    LoadResult[],
  ];
  // Each round loads the targets one after the other, so a round's ratios compare like with like.
  const perRound = oursRuns.map((o, i) => ({
    vsConstant: o.rps / (constantRuns[i] as LoadResult).rps,
    vsConstantCluster: o.rps / (constantClusterRuns[i] as LoadResult).rps,
    vsMlflow: o.rps / (mlflowRuns[i] as LoadResult).rps,
    p99VsMlflow: o.p99ms / (mlflowRuns[i] as LoadResult).p99ms,
    gbdtVsLogistic: (gbdtRuns[i] as LoadResult).rps / o.rps,
    gbdtVsMlflow: (gbdtRuns[i] as LoadResult).rps / (mlflowGbdtRuns[i] as LoadResult).rps,
    gbdtP99VsMlflow: (gbdtRuns[i] as LoadResult).p99ms / (mlflowGbdtRuns[i] as LoadResult).p99ms,
  }));
  const list = (xs: number[], f: (x: number) => string) => xs.map(f).join(' / ');
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  const times = (x: number) => `${x.toFixed(1)}×`;
  say();
  say('per round (req/s):');
  for (const [i, runs] of perTarget.entries())
    say(
      `  ${pad(targets[i]?.name ?? '', 44)}${list(
        runs.map((r) => r.rps),
        (x) => x.toFixed(0),
      )}`,
    );
  say();
  const ratioLabels = {
    constant: 'ours / constant route (1 process):',
    constantCluster: `ours / constant route (${workersName}, like for like):`,
    mlflow: 'ours / mlflow models serve (logistic):',
    mlflowGbdt: 'ours / mlflow models serve (GBDT):',
  };
  const w = Math.max(...Object.values(ratioLabels).map((l) => l.length)) + 1;
  for (const [label, key] of [
    [ratioLabels.constant, 'vsConstant'],
    [ratioLabels.constantCluster, 'vsConstantCluster'],
  ] as const)
    say(
      `${pad(label, w)}${pct(median(perRound.map((r) => r[key])))} of req/s (median of rounds; rounds ${list(
        perRound.map((r) => r[key]),
        pct,
      )})`,
    );
  for (const [label, key, p99Key] of [
    [ratioLabels.mlflow, 'vsMlflow', 'p99VsMlflow'],
    [ratioLabels.mlflowGbdt, 'gbdtVsMlflow', 'gbdtP99VsMlflow'],
  ] as const)
    say(
      `${pad(label, w)}${times(median(perRound.map((r) => r[key])))} req/s, p99 ${median(perRound.map((r) => r[p99Key])).toFixed(2)}× (rounds ${list(
        perRound.map((r) => r[key]),
        times,
      )})`,
    );
  for (const [kind, p] of Object.entries(parity))
    say(
      `parity, ${kind}: ${p.rows} rows of the request mix, our /v1/predict/batch against mlflow models serve /invocations: largest |difference| ${p.maxDiff.toExponential(1)} (limit 1e-6; ${p.distinct} distinct probabilities from ${p.min.toFixed(4)} to ${p.max.toFixed(4)})`,
    );
  say(`batch: ${(median(batchRuns.map((r) => r.rps)) * 100).toFixed(0)} rows/s`);
  const cpuOf = (runs: LoadResult[]) => median(runs.map((r) => r.serverCpuUsPerRequest ?? Number.NaN));
  say(
    `GBDT champion / logistic champion (issue 22: ≥ 80%): ${pct(median(perRound.map((r) => r.gbdtVsLogistic)))} of req/s (median of rounds; rounds ${list(
      perRound.map((r) => r.gbdtVsLogistic),
      pct,
    )}); server CPU ${cpuOf(gbdtRuns).toFixed(1)} against ${cpuOf(oursRuns).toFixed(1)} µs/req`,
  );
  say(
    `GBDT champion: ${gbdtModel.trees.length} trees kept of ${gbdtFit.iterationsRun} run (default parameters, early stopping), ${leaves} leaves, ${splitsPerRow.toFixed(0)} splits passed per row (all trees, mean over the request mix)`,
  );
  // A run's last requests are cut off by the generator at its end: the server answered (and logged)
  // them without the generator counting them, so the server's own count is what the log must equal.
  const lost = Math.max(0, predictionsMade - linesWritten);
  say(
    `prediction log: lines written = ${linesWritten} of ${predictionsMade} predictions made (driftwood_predictions_total: single and batch rows, priming and warm-up included), ${lost} lost; the generator counted ${predictionsAnswered} answered (it stops counting with requests in flight)`,
  );
  const gbdtLost = Math.max(0, gbdtPredictionsMade - gbdtLinesWritten);
  say(
    `prediction log, GBDT champion's API: lines written = ${gbdtLinesWritten} of ${gbdtPredictionsMade} predictions made, ${gbdtLost} lost; the generator counted ${gbdtPredictionsAnswered} answered`,
  );
  say();
  for (const s of scoring)
    say(
      `${pad(s.label, 50)}${fmt(s.rowsPerSecond)} rows/s ${s.microsPerRow.toFixed(2).padStart(8)} µs/row ${(s.microsPerRow * 1000).toFixed(0).padStart(8)} ns/row`,
    );
  writeFileSync(
    path.join(dir, 'results.json'),
    `${JSON.stringify({ concurrency, warmup, seconds, rounds, workers, results, perRound, allRounds: perTarget, parity, scoring, gbdt: { treesKept: gbdtModel.trees.length, iterationsRun: gbdtFit.iterationsRun, leaves, splitsPerRow }, predictionLog: { linesWritten, predictionsMade, predictionsAnswered, lost }, gbdtPredictionLog: { linesWritten: gbdtLinesWritten, predictionsMade: gbdtPredictionsMade, predictionsAnswered: gbdtPredictionsAnswered, lost: gbdtLost } }, null, 2)}\n`,
  );
}

main().then(
  () => {
    stopAll();
    stopOwnMlflow();
    process.exit(0);
  },
  (err) => {
    process.stderr.write(
      `bench-serving: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    stopAll();
    stopOwnMlflow();
    process.exit(1);
  },
);
