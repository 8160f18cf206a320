// Fit time of Driftwood's boosted trees against LightGBM and scikit-learn's
// HistGradientBoostingClassifier on the same generated rows and parameters (docs/training.md).
// Run: npx tsc -b tasks && node bench/gbdt/run.mjs [rows] [columns]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fitGbdt, scoreGbdt } from '../../tasks/dist/models/gbdt.js';
import { rocAuc } from '../../tasks/dist/models/metrics.js';
import { Rng } from '../../tasks/dist/random.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const rows = Number(process.argv[2] ?? 100_000);
const width = Number(process.argv[3] ?? 30);

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

const train = generate(rows, 1);
const holdout = generate(20_000, 2);
const params = {
  trees: 100, learningRate: 0.1, maxLeaves: 31, maxDepth: 0, minLeaf: 20, l2: 0, maxBins: 255,
  subsample: 1, colsample: 1, patience: 0, seed: 7, classWeighting: false,
};
const empty = new Float32Array(0);
const times = [];
const cpu = [];
let model;
for (let k = 0; k < 3; k++) {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  ({ model } = fitGbdt({ x: train.x, y: train.y, valX: empty, valY: empty, width }, params));
  times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1e6);
}
const auc = rocAuc(scoreGbdt(model, holdout.x, width), holdout.y);
console.log(`driftwood  ${rows}x${width}, 100 trees, 31 leaves: fit s ${times.map((t) => t.toFixed(2)).join(' ')} (CPU s ${cpu.map((t) => t.toFixed(2)).join(' ')}), holdout ROC AUC ${auc.toFixed(4)}`);

const python = path.join(ROOT, '.venvs', 'bench', 'bin', 'python');
if (!existsSync(python)) {
  console.log(`(no ${python}: make .venvs/bench/.stamp for the LightGBM and scikit-learn figures)`);
  process.exit(0);
}
const dir = mkdtempSync(path.join(os.tmpdir(), 'gbdt-bench-'));
for (const [name, a] of Object.entries({ x: train.x, y: train.y, hx: holdout.x, hy: holdout.y }))
  writeFileSync(path.join(dir, `${name}.f32`), a);
const res = spawnSync(python, [path.join(ROOT, 'bench', 'gbdt', 'reference.py'), dir, String(width)], {
  encoding: 'utf8',
  env: { ...process.env, OMP_NUM_THREADS: '1' },
  stdio: ['ignore', 'inherit', 'inherit'],
});
rmSync(dir, { recursive: true, force: true });
process.exit(res.status ?? 1);
