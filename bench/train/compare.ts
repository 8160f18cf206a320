/**
 * One dataset's comparison: Driftwood's contenders fitted here, the references fitted by one Python
 * process on the very same float32 matrices, and every row's holdout metrics computed by the same
 * code (binaryMetrics) from the holdout probabilities each side wrote.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { binaryMetrics } from '@driftwood/tasks';
import { type Family, writeExchange } from './prepare.js';

const root = process.cwd();
const load = <T>(rel: string): Promise<T> =>
  import(pathToFileURL(path.join(root, 'tasks', 'dist', rel)).href);
const { DEFAULT_MODEL_PARAMS, predictScores, trainClassifier } =
  await load<typeof import('../../tasks/dist/models/classifier.js')>('models/classifier.js');
const { autoCandidates, fitBestCandidate } =
  await load<typeof import('../../tasks/dist/train/select.js')>('train/select.js');
type FitOptions = Parameters<typeof fitBestCandidate>[2];
type FitData = Parameters<typeof fitBestCandidate>[0];

/** Threads the references may use (LightGBM n_jobs, OpenMP for HistGradientBoosting and BLAS). */
export const REFERENCE_THREADS = 2;

export interface Result {
  model: string;
  /** Which inputs: linear (imputed, standardised, one-hot), tree (raw, NaN, one-hot) or native. */
  inputs: string;
  reference: boolean;
  rocAuc: number;
  prAuc: number;
  logLoss: number;
  fitSeconds: number;
  /** CPU seconds of the fit, every thread of the process (user + system). */
  cpuSeconds: number;
  /** Whether the fit weighted the classes ("balanced"): its probabilities lean to the positives. */
  weighted: boolean;
  note: string;
}

interface PythonRow {
  model: string;
  family: string;
  fitSeconds: number;
  cpuSeconds: number;
  weighted: boolean;
  note: string;
  predictions: string;
  coef?: number[];
  intercept?: number;
  tight?: { coef: number[]; intercept: number };
}

export interface DatasetRun {
  name: string;
  linear: Family;
  tree: Family;
  native?: Family;
  /** Known directions per linear input column, for the monotone logistic regression (contract data). */
  signs?: Int8Array;
  /** Ask Python for the logistic regression's coefficients (and a tight refit's) to compare with ours. */
  coefficients?: boolean;
  /** Contract data: its calibration and threshold objective, and its behavioural checks on validation. */
  decision?: FitData['decision'];
  behaviour?: FitOptions['behaviour'];
}

/** What `train` fits when nothing names a kind: `auto`, on the matrix `train` gets (the linear family's). */
async function shippedDefaultRow(run: DatasetRun): Promise<Result> {
  const lin = run.linear;
  const decision = run.decision ?? { calibration: 'platt', threshold: { objective: 'f1' } };
  const {
    out: best,
    fitSeconds,
    cpuSeconds,
  } = await timed(() =>
    fitBestCandidate(
      { train: lin.train, validation: lin.validation, width: lin.width, decision },
      autoCandidates({}),
      {
        ...(run.signs ? { signs: run.signs } : {}),
        ...(run.behaviour ? { behaviour: run.behaviour } : {}),
      },
    ),
  );
  // Scored as served: calibrated on validation, so its log loss is not a class-weighted one.
  const scores = best.fit.model.scores(lin.holdout.x);
  best.fit.model.dispose();
  return {
    model: 'driftwood default as shipped (auto)',
    inputs: 'linear',
    reference: false,
    ...metricsOf(scores, lin.holdout.y),
    fitSeconds,
    cpuSeconds,
    weighted: false,
    note: `kept ${best.selection.reason}; ${decision.calibration}-calibrated on validation, as served`,
  };
}

export interface Comparison {
  results: Result[];
  /** The references' LogisticRegression coefficients, when asked for. */
  sklearnLogistic?: Pick<PythonRow, 'coef' | 'intercept' | 'tight'>;
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;
/** Wall and CPU seconds of one fit. */
async function timed<T>(
  work: () => T | Promise<T>,
): Promise<{ out: T; fitSeconds: number; cpuSeconds: number }> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const out = await work();
  const fitSeconds = seconds(t0);
  const used = process.cpuUsage(cpu);
  return { out, fitSeconds, cpuSeconds: (used.user + used.system) / 1e6 };
}
const metricsOf = (scores: ArrayLike<number>, y: Float32Array) => {
  const m = binaryMetrics(scores, y);
  return { rocAuc: m.roc_auc, prAuc: m.pr_auc, logLoss: m.log_loss };
};

const { DEFAULT_GBDT_PARAMS, fitGbdt, scoreGbdt } =
  await load<typeof import('../../tasks/dist/models/gbdt.js')>('models/gbdt.js');

async function driftwoodRows(run: DatasetRun): Promise<Result[]> {
  const out: Result[] = [];
  const lin = run.linear;
  const data = {
    x: lin.train.x,
    y: lin.train.y,
    valX: lin.validation.x,
    valY: lin.validation.y,
    width: lin.width,
  };
  const constrained = run.signs?.some((s) => s !== 0) ?? false;
  const logistic: [string, typeof DEFAULT_MODEL_PARAMS, string][] = [
    [
      'driftwood logistic (adam)',
      { ...DEFAULT_MODEL_PARAMS },
      `TF.js as \`train\` ships: Adam, batch ${DEFAULT_MODEL_PARAMS.batchSize}, early stopping on validation${constrained ? ', monotone' : ''}`,
    ],
    [
      'driftwood logistic exact',
      { ...DEFAULT_MODEL_PARAMS, solver: 'exact' },
      `projected Newton, l2 ${DEFAULT_MODEL_PARAMS.l2}${constrained ? ', monotone' : ''}`,
    ],
  ];
  if (constrained)
    logistic.push([
      'driftwood logistic exact',
      { ...DEFAULT_MODEL_PARAMS, solver: 'exact', monotonic: false },
      `projected Newton, l2 ${DEFAULT_MODEL_PARAMS.l2}, unconstrained (scikit-learn's objective)`,
    ]);
  for (const [model, params, note] of logistic) {
    const {
      out: trained,
      fitSeconds,
      cpuSeconds,
    } = await timed(() => trainClassifier(data, params, undefined, run.signs));
    const scores = predictScores(trained.model, lin.holdout.x, lin.width);
    trained.model.dispose();
    const how = trained.exact
      ? `${trained.exact.iterations} iterations`
      : `${trained.epochsRun} epochs (best ${trained.bestEpoch + 1})`;
    out.push({
      model,
      inputs: 'linear',
      reference: false,
      ...metricsOf(scores, lin.holdout.y),
      fitSeconds,
      cpuSeconds,
      weighted: params.classWeighting,
      note: `${note}; ${how}`,
    });
  }
  const t = run.tree;
  const p = DEFAULT_GBDT_PARAMS;
  // Monotone in the dataset's known directions as `train` fits the trees (contract data), and free
  // as the references are.
  for (const signs of constrained ? [run.signs, undefined] : [undefined]) {
    const {
      out: fit,
      fitSeconds,
      cpuSeconds,
    } = await timed(() =>
      fitGbdt(
        { x: t.train.x, y: t.train.y, valX: t.validation.x, valY: t.validation.y, width: t.width },
        p,
        undefined,
        signs,
      ),
    );
    out.push({
      model: 'driftwood gbdt',
      inputs: 'tree',
      reference: false,
      ...metricsOf(scoreGbdt(fit.model, t.holdout.x, t.width), t.holdout.y),
      fitSeconds,
      cpuSeconds,
      weighted: p.classWeighting,
      note: `defaults (${p.trees} trees, rate ${p.learningRate}, ${p.maxLeaves} leaves, patience ${p.patience})${signs ? ', monotone' : constrained ? ', unconstrained' : ''}; ${fit.iterationsRun} run, ${fit.bestIteration} kept`,
    });
  }
  return out;
}

/** The references: one Python process for the whole dataset, reading the matrices written to `dir`. */
function referenceRows(run: DatasetRun, dir: string, python: string): Comparison {
  writeExchange(
    dir,
    {
      dataset: run.name,
      l2: DEFAULT_MODEL_PARAMS.l2,
      threads: REFERENCE_THREADS,
      coefficients: run.coefficients ?? false,
    },
    { linear: run.linear, tree: run.tree, native: run.native },
  );
  const threads = String(REFERENCE_THREADS);
  const res = spawnSync(python, [path.join(root, 'bench', 'train', 'sklearn_models.py'), dir], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      OMP_NUM_THREADS: threads,
      OPENBLAS_NUM_THREADS: threads,
      MKL_NUM_THREADS: threads,
      // On a shared machine an OpenMP thread that spins at a barrier waits for a core another process
      // holds: HistGradientBoosting took 147 s instead of 19 s (LightGBM 70 s instead of 1.8 s) on
      // one-hot inputs like the categorical dataset's at load average 14. Waiting passively changes no
      // result, only the wait.
      OMP_WAIT_POLICY: 'passive',
    },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.error) throw new Error(`${python}: ${res.error.message} (make .venvs/bench/.stamp creates it)`);
  if (res.status !== 0) throw new Error(`the reference models failed on ${run.name} (exit ${res.status})`);
  const rows = JSON.parse(res.stdout) as PythonRow[];
  const results = rows.map((r): Result => {
    const fam = run[r.family as 'linear' | 'tree' | 'native'] as Family;
    const buf = readFileSync(path.join(dir, r.predictions));
    const scores = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    return {
      model: r.model,
      inputs: r.family,
      reference: true,
      ...metricsOf(scores, fam.holdout.y),
      fitSeconds: r.fitSeconds,
      cpuSeconds: r.cpuSeconds,
      weighted: r.weighted,
      note: r.note,
    };
  });
  const lr = rows.find((r) => r.coef !== undefined);
  return { results, ...(lr ? { sklearnLogistic: lr } : {}) };
}

export async function compare(run: DatasetRun, workDir: string, python: string): Promise<Comparison> {
  const dir = path.join(workDir, run.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const ours = [await shippedDefaultRow(run), ...(await driftwoodRows(run))];
  const refs = referenceRows(run, dir, python);
  rmSync(dir, { recursive: true, force: true });
  return { ...refs, results: [...ours, ...refs.results] };
}

const pct = (n: number, of: number) => `${((100 * n) / of).toFixed(1)}%`;
const fmt = (v: number, digits = 4) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const signed = (v: number) => {
  const s = fmt(Math.abs(v) < 5e-5 ? 0 : v);
  return v >= 5e-5 || s === '0.0000' ? `+${s}` : s;
};

/** The dataset's table: one line per model, ROC AUC's gap to the best reference's. */
export function formatTable(run: DatasetRun, results: Result[], description: string): string {
  const n = run.linear.train.y.length + run.linear.validation.y.length + run.linear.holdout.y.length;
  const positives = [run.linear.train, run.linear.validation, run.linear.holdout].reduce(
    (a, m) => a + m.y.reduce((s, v) => s + v, 0),
    0,
  );
  const best = results
    .filter((r) => r.reference)
    .reduce<Result | undefined>((b, r) => (b === undefined || r.rocAuc > b.rocAuc ? r : b), undefined);
  const lines = [
    `\n== ${run.name}: ${description}`,
    `${n.toLocaleString('en')} rows (train ${run.linear.train.y.length.toLocaleString('en')}, validation ${run.linear.validation.y.length.toLocaleString('en')}, holdout ${run.linear.holdout.y.length.toLocaleString('en')}), ${pct(positives, n)} positive; inputs: linear ${run.linear.width} columns, tree ${run.tree.width}${run.native ? `, native ${run.native.width}` : ''}`,
    `metrics on the holdout. fit s: wall seconds of the fit alone; cpu s: its CPU seconds over all threads; load average ${os.loadavg()[0]?.toFixed(1)} on ${os.cpus().length} cores`,
    `threads: Driftwood's exact logistic and gbdt 1 (plain JS), TF.js its wasm backend's; references ${REFERENCE_THREADS} (LightGBM n_jobs, OpenMP, BLAS; OMP_WAIT_POLICY=passive)`,
    "(w): class-weighted ('balanced'), so its probabilities lean to the positives and its log loss is not comparable with unweighted rows'",
    `${'model'.padEnd(38)} ${'inputs'.padEnd(7)} ${'ROC AUC'.padStart(7)} ${'Δ best'.padStart(7)} ${'PR AUC'.padStart(7)} ${'logloss'.padStart(7)} ${'fit s'.padStart(7)} ${'cpu s'.padStart(7)}   notes`,
  ];
  for (const r of results)
    lines.push(
      `${`${r.model}${r.weighted ? ' (w)' : ''}`.padEnd(38)} ${r.inputs.padEnd(7)} ${fmt(r.rocAuc).padStart(7)} ${(best ? signed(r.rocAuc - best.rocAuc) : 'n/a').padStart(7)} ${fmt(r.prAuc).padStart(7)} ${fmt(r.logLoss).padStart(7)} ${fmt(r.fitSeconds, 2).padStart(7)} ${fmt(r.cpuSeconds, 2).padStart(7)}   ${r.note}`,
    );
  if (best) lines.push(`best reference: ${best.model} (${best.inputs}), ROC AUC ${fmt(best.rocAuc)}`);
  return lines.join('\n');
}
