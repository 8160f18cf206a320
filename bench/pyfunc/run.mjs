// Batch scoring throughput of one Driftwood version, in rows/s, on the same rows through
//   1. the API's scorer (serving-model.ts `loadModelVersion`, the per-row path /v1/predict and
//      /v1/predict/batch run), in process, without HTTP;
//   2. mlflow.pyfunc.load_model(folder).predict(frame) (driftwood_pyfunc, numpy), with MLflow's
//      schema enforcement, on the whole frame at once;
// best of three runs each, plus the largest difference between the two answers.
// The rows are the version's serving sample, repeated to the count asked for.
// Run: npx tsc -b tasks && node bench/pyfunc/run.mjs <model folder> [rows]
//   (a folder: mlflow artifacts download --artifact-uri models:/churn@champion --dst-path <folder>)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModelVersion } from '../../tasks/dist/models/serving-model.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const folder = path.resolve(process.argv[2] ?? '');
const count = Number(process.argv[3] ?? 100_000);
if (!existsSync(path.join(folder, 'MLmodel'))) {
  console.error('usage: node bench/pyfunc/run.mjs <model folder with MLmodel> [rows]');
  process.exit(2);
}
const trees = existsSync(path.join(folder, 'gbdt.json'));
const layers = trees ? 0 : JSON.parse(readFileSync(path.join(folder, 'model.json'), 'utf8')).modelTopology.config.layers.length;
const kind = trees ? 'gbdt' : layers > 1 ? 'mlp' : 'logistic';

const sample = JSON.parse(readFileSync(path.join(folder, 'serving-sample.json'), 'utf8'));
const rows = Array.from({ length: count }, (_, i) => sample.rows[i % sample.rows.length]);
const columns = [...new Set(sample.rows.flatMap((r) => Object.keys(r)))];

// The API's own loader, reading the folder instead of MLflow's artifact proxy.
const local = {
  resolveVersionArtifacts: async () => folder,
  downloadArtifact: (root, file) => readFile(path.join(root, file)),
};
const mv = { name: 'bench', version: '1', tags: [{ key: 'driftwood.model_kind', value: trees ? 'gbdt' : 'logistic' }] };
const model = await loadModelVersion(local, mv, 'bench');
let api = new Float64Array(count);
let apiBest = Number.POSITIVE_INFINITY;
for (let run = 0; run < 3; run++) {
  const out = new Float64Array(count);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) out[i] = model.score(rows[i]);
  apiBest = Math.min(apiBest, (performance.now() - t0) / 1000);
  api = out;
}
model.dispose();

const work = mkdtempSync(path.join(os.tmpdir(), 'driftwood-pyfunc-bench-'));
const script = `
import json, sys, time
import mlflow.pyfunc, pandas as pd
spec = json.load(open(sys.argv[1]))
frame = pd.DataFrame(spec["data"], columns=spec["columns"])
# The signature's numbers are doubles, and MLflow refuses an int64 column for a double: cast them.
frame = frame.astype({c: "float64" for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])})
t0 = time.perf_counter()
model = mlflow.pyfunc.load_model(spec["folder"])
load = time.perf_counter() - t0
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    out = model.predict(frame)
    best = min(best, time.perf_counter() - t0)
json.dump({"seconds": best, "load": load, "predictions": [float(p) for p in out]}, open(sys.argv[2], "w"))
`;
try {
  const input = path.join(work, 'input.json');
  const output = path.join(work, 'output.json');
  writeFileSync(input, JSON.stringify({ folder, columns, data: rows.map((r) => columns.map((c) => r[c] ?? null)) }));
  const py = spawnSync(path.join(ROOT, '.venvs', 'mlflow', 'bin', 'python'), ['-c', script, input, output], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (py.status !== 0) process.exit(1);
  const result = JSON.parse(readFileSync(output, 'utf8'));
  let diff = 0;
  for (let i = 0; i < count; i++) diff = Math.max(diff, Math.abs(result.predictions[i] - api[i]));
  const rate = (rows, s) => Math.round(rows / s).toLocaleString('en-US');
  console.log(`| kind | rows | API scorer (in process) rows/s | mlflow.pyfunc rows/s | pyfunc load s | max abs diff |`);
  console.log(`|---|---:|---:|---:|---:|---:|`);
  console.log(
    `| ${kind} | ${count.toLocaleString('en-US')} | ${rate(count, apiBest)} | ${rate(count, result.seconds)} | ${result.load.toFixed(2)} | ${diff.toExponential(1)} |`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
