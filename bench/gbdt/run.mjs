// Fit time of Driftwood's boosted trees against LightGBM and scikit-learn's
// HistGradientBoostingClassifier on the same rows and parameters (docs/training.md).
// Run: npx tsc -b tasks && node bench/gbdt/run.mjs [rows] [columns]
//   generated dense columns (default 100,000 × 30)
// Or:  npx tsc -b tasks && npx tsc -p bench/train && node bench/gbdt/run.mjs categorical [rows]
//   bench-train's categorical dataset (default 60,000 rows, its split, seed): the 200- and 20-level
//   columns one-hot for every learner, and native (level codes) for LightGBM and scikit-learn too.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fitGbdtDetailed, scoreGbdt } from '../../tasks/dist/models/gbdt.js';
import { rocAuc } from '../../tasks/dist/models/metrics.js';
import { Rng } from '../../tasks/dist/random.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const categorical = process.argv[2] === 'categorical';
const args = categorical ? process.argv.slice(3) : process.argv.slice(2);
const rows = Number(args[0] ?? (categorical ? 60_000 : 100_000));
let width = Number(args[1] ?? 30);

/** Normal columns, 5 % missing in every fifth, a label with interactions and thresholds. */
function generate(n, seed) {
  const rng = new Rng(seed);
  const x = new Float32Array(n * width);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = x.subarray(i * width, (i + 1) * width);
    for (let j = 0; j < width; j++) r[j] = j % 5 === 4 && rng.next() < 0.05 ? Number.NaN : rng.normal();
    const a = r[4] !== r[4] ? 1 : r[4];
    const z = -1 + r[0] * r[1] + (r[2] > 0.5 ? 1.5 : 0) - 0.8 * r[3] + 0.7 * a + 0.5 * Math.sin(2 * r[5]);
    y[i] = rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  }
  return { x, y };
}

/** bench-train's categorical dataset with its seed and split (bench/train/run.ts), training part only. */
async function categoricalRows() {
  const build = path.join(ROOT, '.driftwood', 'bench-build', 'train');
  if (!existsSync(path.join(build, 'generated.js'))) {
    console.error('bench/gbdt: npx tsc -p bench/train first (the categorical dataset is bench-train\'s)');
    process.exit(2);
  }
  const { categoricalDataset, randomSplit } = await import(pathToFileURL(path.join(build, 'generated.js')).href);
  const { families } = await import(pathToFileURL(path.join(build, 'prepare.js')).href);
  const raw = categoricalDataset(rows, 44);
  const { tree, native } = families(raw, randomSplit(raw.rows, 42, 0.2, 0.15));
  width = tree.width;
  return { train: tree.train, holdout: tree.holdout, native };
}

const data = categorical ? await categoricalRows() : { train: generate(rows, 1), holdout: generate(20_000, 2) };
const { train, holdout } = data;
const params = {
  trees: 100, learningRate: 0.1, maxLeaves: 31, maxDepth: 0, minLeaf: 20, l2: 0, maxBins: 255,
  subsample: 1, colsample: 1, patience: 0, seed: 7, classWeighting: false,
};
const empty = new Float32Array(0);
const n = train.y.length;
// Bundled as `train` fits, and with a histogram pass per column (what bundling saves; the same model).
for (const bundle of categorical ? [true, false] : [true]) {
  const times = [];
  const cpu = [];
  let model;
  for (let k = 0; k < 3; k++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    ({ model } = fitGbdtDetailed({ x: train.x, y: train.y, valX: empty, valY: empty, width }, params, undefined, undefined, { bundle }));
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  const auc = rocAuc(scoreGbdt(model, holdout.x, width), holdout.y);
  const name = bundle ? 'driftwood' : 'driftwood, a pass per column';
  console.log(`${name} ${n}x${width}, 100 trees, 31 leaves: fit s ${times.map((t) => t.toFixed(2)).join(' ')} (CPU s ${cpu.map((t) => t.toFixed(2)).join(' ')}), holdout ROC AUC ${auc.toFixed(4)}`);
}

const python = path.join(ROOT, '.venvs', 'bench', 'bin', 'python');
if (!existsSync(python)) {
  console.log(`(no ${python}: make .venvs/bench/.stamp for the LightGBM and scikit-learn figures)`);
  process.exit(0);
}
const dir = mkdtempSync(path.join(os.tmpdir(), 'gbdt-bench-'));
const files = { x: train.x, y: train.y, hx: holdout.x, hy: holdout.y };
if (categorical) Object.assign(files, { nx: data.native.train.x, nhx: data.native.holdout.x });
for (const [name, a] of Object.entries(files)) writeFileSync(path.join(dir, `${name}.f32`), a);
const native = categorical ? [String(data.native.width), data.native.categorical.join(',')] : [];
const res = spawnSync(python, [path.join(ROOT, 'bench', 'gbdt', 'reference.py'), dir, String(width), ...native], {
  encoding: 'utf8',
  env: { ...process.env, OMP_NUM_THREADS: '1' },
  stdio: ['ignore', 'inherit', 'inherit'],
});
rmSync(dir, { recursive: true, force: true });
process.exit(res.status ?? 1);
