// Batch scoring throughput of one registered version, in rows/s, for BENCH_ROWS entities (1,000,000 by
// default), on the same rows:
//   1. the Node engine (`driftwood score`): the champion loaded as the API loads it
//      (loadModelVersion), every row scored and labelled at the version's threshold, the scores
//      written as the lake partition's Parquet file;
//   2. the Spark engine: the rows written as the job's input Parquet, then a real `spark-submit`
//      (BENCH_SPARK_MASTER, default local[2]) of python/driftwood_spark_scoring.py, i.e.
//      mlflow.pyfunc.spark_udf over the version's python_function flavor; the wall time counts the
//      JVM start, the model's load on the executors and the Parquet write;
//   3. the API: POST /v1/predict/batch (100 rows a request, its limit) on a real HTTP port, two
//      clients, the same version as champion;
// then each engine's publish step: the scores loaded into a fresh SQLite warehouse (batch_scores).
// Spark's scores are checked against Node's (largest difference) before any figure is printed.
// The feature build is left out: both engines share it (docs/features.md measures it).
// The rows are the version's serving sample, repeated.
//
// Run: MLFLOW_TRACKING_URI=http://127.0.0.1:5000 BENCH_MODEL=churn make bench-scoring
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inputFields } from '../../tasks/dist/features/transform.js';
import { MlflowClient } from '../../tasks/dist/mlflow/client.js';
import { loadModelVersion } from '../../tasks/dist/models/serving-model.js';
import { inputParquet, readScoresParquet, scoresParquet } from '../../tasks/dist/score/files.js';
import { checkSparkScores } from '../../tasks/dist/score/index.js';
import { labelAt, thresholdOf } from '../../tasks/dist/score/plan.js';
import { replaceScores } from '../../tasks/dist/score/table.js';
import { openWarehouse } from '../../tasks/dist/warehouse/db.js';
import { buildApp } from '../../serving/dist/app.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const env = process.env;
const trackingUri = env.MLFLOW_TRACKING_URI ?? 'http://127.0.0.1:5000';
const modelName = env.BENCH_MODEL ?? 'churn';
const alias = env.BENCH_ALIAS ?? 'champion';
const count = Number(env.BENCH_ROWS ?? 1_000_000);
const apiRows = Number(env.BENCH_API_ROWS ?? count);
const master = env.BENCH_SPARK_MASTER ?? 'local[2]';
const venvPython = path.join(ROOT, '.venvs', 'mlflow', 'bin', 'python');
const AS_OF = Date.parse('2026-11-01T00:00:00Z');

const mlflow = new MlflowClient(trackingUri, { timeoutMs: 120_000, retries: 3, backoffMs: 500 });
const mv = await mlflow.getVersionByAlias(modelName, alias);
if (!mv) {
  console.error(`model '${modelName}' has no '${alias}' version at ${trackingUri}: set BENCH_MODEL / MLFLOW_TRACKING_URI`);
  process.exit(2);
}
const threshold = thresholdOf(mv);
const served = await loadModelVersion(mlflow, mv, alias);
const sample = JSON.parse((await mlflow.downloadArtifact(await mlflow.resolveVersionArtifacts(mv), 'serving-sample.json')).toString('utf8'));
const rows = Array.from({ length: count }, (_, i) => ({
  entityToken: `e${String(i).padStart(8, '0')}`,
  features: sample.rows[i % sample.rows.length],
}));
// The raw fields the version's transform reads: the columns the inputs stage writes.
const { numeric, categorical } = inputFields(served.transform);
const work = mkdtempSync(path.join(os.tmpdir(), 'driftwood-scoring-bench-'));
const seconds = (t0) => (performance.now() - t0) / 1000;
const rate = (n, s) => Math.round(n / s).toLocaleString('en-US');
const step = (what) => console.error(`[${new Date().toISOString()}] ${what}`);

// 1. Node engine.
step(`Node engine: ${count} rows`);
let t0 = performance.now();
const nodeScores = rows.map((r) => {
  const score = served.score(r.features);
  return { entityToken: r.entityToken, score, label: labelAt(score, threshold), modelName: mv.name, modelVersion: mv.version, asOf: AS_OF };
});
const nodeParquet = scoresParquet(nodeScores);
const nodeSeconds = seconds(t0);
served.dispose();

// 2. Spark engine: its input as the inputs stage writes it, then the job.
const input = path.join(work, 'input');
mkdirSync(input);
writeFileSync(path.join(input, 'rows.parquet'), inputParquet(rows, numeric, categorical));
writeFileSync(
  path.join(input, 'manifest.json'),
  JSON.stringify({
    format: 'driftwood.scoring-input/v1',
    dataset: 'bench',
    asOf: AS_OF,
    modelName: mv.name,
    modelVersion: mv.version,
    modelUri: `models:/${mv.name}/${mv.version}`,
    threshold,
    rows: rows.length,
    numeric,
    categorical,
  }),
);
const output = path.join(work, 'scores');
step(`Spark engine: spark-submit --master ${master}`);
t0 = performance.now();
const job = spawnSync(
  path.join(ROOT, '.venvs', 'mlflow', 'bin', 'spark-submit'),
  ['--master', master, '--conf', 'spark.ui.enabled=false', path.join(ROOT, 'python', 'driftwood_spark_scoring.py'),
    '--input', pathToFileURL(input).href, '--output', pathToFileURL(output).href],
  { env: { ...env, MLFLOW_TRACKING_URI: trackingUri, PYSPARK_PYTHON: venvPython, PYSPARK_DRIVER_PYTHON: venvPython, SPARK_LOCAL_IP: '127.0.0.1' }, encoding: 'utf8' },
);
const sparkSeconds = seconds(t0);
if (job.status !== 0) {
  console.error(job.stderr.slice(-4000));
  process.exit(1);
}
step('reading Spark output');
let sparkScores = [];
for (const name of (await readdir(output)).filter((n) => n.endsWith('.parquet') && !n.startsWith('.')).sort())
  sparkScores = sparkScores.concat(await readScoresParquet(name, await readFile(path.join(output, name))));
const problem = checkSparkScores(sparkScores, { modelName: mv.name, modelVersion: mv.version, rows: rows.length }, AS_OF);
if (problem) throw new Error(`Spark output: ${problem}`);
const byToken = new Map(nodeScores.map((s) => [s.entityToken, s]));
let largest = 0;
let labelsDiffer = 0;
for (const s of sparkScores) {
  const n = byToken.get(s.entityToken);
  largest = Math.max(largest, Math.abs(n.score - s.score));
  if (n.label !== s.label) labelsDiffer++;
}

step('publish into SQLite');
// Publish: both engines end by replacing the as-of time's rows in the warehouse.
const db = await openWarehouse(`sqlite://${path.join(work, 'warehouse.db')}`);
t0 = performance.now();
await replaceScores(db, 'bench', AS_OF, nodeScores);
const publishSeconds = seconds(t0);
await db.destroy();

// 3. The API, /v1/predict/batch over HTTP.
step(`API: ${apiRows} rows`);
const app = await buildApp({ mlflow, modelName, alias, openAccess: true, pollMs: 0, rateLimitPerMinute: 100_000_000, bodyLimit: 4 * 1024 * 1024 });
await app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${app.server.address().port}/v1/predict/batch`;
const bodies = [];
for (let i = 0; i < sample.rows.length * 10; i += 100)
  bodies.push(JSON.stringify({ rows: Array.from({ length: 100 }, (_, k) => sample.rows[(i + k) % sample.rows.length]) }));
const requests = Math.ceil(apiRows / 100);
let next = 0;
let answered = 0;
async function client() {
  while (next < requests) {
    const body = bodies[next++ % bodies.length];
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (!res.ok) throw new Error(`POST /v1/predict/batch: HTTP ${res.status} ${await res.text()}`);
    answered += (await res.json()).count;
  }
}
t0 = performance.now();
await Promise.all([client(), client()]);
const apiSeconds = seconds(t0);
await app.close();
rmSync(work, { recursive: true, force: true });

const table = [
  ['Node engine (score + label + Parquet)', count, nodeSeconds],
  [`Spark engine (spark-submit, ${master}, spark_udf)`, count, sparkSeconds],
  ['API POST /v1/predict/batch (100 rows, 2 clients)', answered, apiSeconds],
  ['publish: warehouse load (SQLite, either engine)', count, publishSeconds],
];
console.log(`model ${mv.name} version ${mv.version} (threshold ${threshold}); load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('| path | rows | seconds | rows/s |\n|---|---:|---:|---:|');
for (const [name, n, s] of table) console.log(`| ${name} | ${n.toLocaleString('en-US')} | ${s.toFixed(1)} | ${rate(n, s)} |`);
console.log(`Spark vs Node: largest score difference ${largest.toExponential(2)}, labels differing ${labelsDiffer}`);
