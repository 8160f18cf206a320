import { DriftwoodError } from '../errors.js';
import type { ModelParams } from '../models/params.js';
import { Rng } from '../random.js';

/**
 * k-fold cross-validation on the training part, the pure half: which rows go where, what a trial
 * scored, when the time budget stops new trials, and the table the parent run keeps.
 */

/**
 * Each row's fold, 0…k−1, stratified: each class is shuffled (seeded) and dealt round-robin, so
 * every fold holds its share of the rare class — with ~8 % churners an unstratified fold can get
 * few enough for its AUC to be noise.
 */
export function stratifiedFolds(labels: ArrayLike<number>, k: number, seed: number): Int32Array {
  checkFolds(k);
  const fold = new Int32Array(labels.length);
  const rng = new Rng(seed);
  let dealt = 0;
  for (const cls of [1, 0]) {
    const rows: number[] = [];
    for (let i = 0; i < labels.length; i++) if ((labels[i] === 1 ? 1 : 0) === cls) rows.push(i);
    // Carry on dealing where the previous class stopped, so the fold sizes differ by one at most.
    for (const i of rng.shuffle(rows)) fold[i] = dealt++ % k;
  }
  const smallest = Math.min(...Array.from({ length: k }, (_, f) => fold.filter((x) => x === f).length));
  if (smallest === 0)
    throw new DriftwoodError(
      'DATA_MISSING',
      `--folds ${k}: the training part has ${labels.length} rows, too few for ${k} folds`,
    );
  return fold;
}

/** k must leave a fold to score, one to stop early on and at least one to train on. */
export function checkFolds(k: number): number {
  if (!Number.isInteger(k) || k < 3)
    throw new DriftwoodError(
      'USAGE',
      `--folds: expected a whole number ≥ 3 (one fold is scored, one stops training early, the rest train), got ${k}`,
    );
  return k;
}

/** The rows of one fold's fit: `score` measures, `stop` is the early-stopping set, `train` fits. */
export interface FoldRows {
  train: number[];
  stop: number[];
  score: number[];
}

/**
 * Fold f is scored; fold f+1 (mod k) is what early stopping watches, so the scored rows never decide
 * when training stops (LightGBM's `cv` stops on the scored fold, which flatters every trial); the
 * other k−2 folds train.
 */
export function foldRows(fold: Int32Array, k: number, f: number): FoldRows {
  const out: FoldRows = { train: [], stop: [], score: [] };
  const stop = (f + 1) % k;
  fold.forEach((g, i) => {
    (g === f ? out.score : g === stop ? out.stop : out.train).push(i);
  });
  return out;
}

export function pickLabels(y: Float32Array, index: readonly number[]): Float32Array {
  return Float32Array.from(index, (i) => y[i] as number);
}

/** Mean and (population, as scikit-learn's cv_results_) standard deviation. */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
  return { mean, std: Math.sqrt(variance) };
}

/**
 * Whether another trial may start: the first always does (a search that tried nothing chose
 * nothing); after it, none once `budgetSeconds` have passed since the search began. A trial that
 * has started finishes, and counts.
 */
export function budgetAllows(
  startedMs: number,
  nowMs: number,
  budgetSeconds: number | undefined,
  done: number,
): boolean {
  if (done === 0 || budgetSeconds === undefined) return true;
  return nowMs - startedMs < budgetSeconds * 1000;
}

export interface CvTrial {
  trial: number;
  runId: string;
  params: Partial<ModelParams>;
  /** ROC AUC on each fold, fold 0 first. */
  foldRocAuc: number[];
  cvRocAucMean: number;
  cvRocAucStd: number;
  seconds: number;
}

/** The best mean CV ROC AUC; the earlier trial on a tie. */
export function chooseByCv<T extends Pick<CvTrial, 'cvRocAucMean'>>(trials: readonly T[]): T {
  const first = trials[0];
  if (!first) throw new DriftwoodError('USAGE', 'no trial ran: nothing to choose from');
  return trials.reduce((a, b) => (b.cvRocAucMean > a.cvRocAucMean ? b : a), first);
}

export interface CvTable {
  dataset: string;
  metric: 'roc_auc';
  folds: number;
  foldSeed: number;
  trainRows: number;
  planned: number;
  ran: number;
  budgetSeconds: number | null;
  stoppedByBudget: boolean;
  trials: CvTrial[];
  chosen: { trial: number; runId: string; params: Partial<ModelParams> };
  /** The chosen setting refitted on the training part and measured once on the holdout. */
  holdout: { runId: string; rocAuc: number; validationRocAuc: number };
}

const f4 = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : 'n/a');

/** `tune/cv.md`: the same table for a person, the chosen trial marked. */
export function cvMarkdown(t: CvTable): string {
  const lines = [
    `# ${t.dataset}: ${t.folds}-fold cross-validation on the training part`,
    '',
    `${t.trainRows} training rows, folds stratified by the label (seed ${t.foldSeed}). Each fold is scored by a model ` +
      `trained on ${t.folds - 2} of the other folds, the last one deciding when training stops. ` +
      'Validation and holdout rows take no part in the choice.',
    '',
    `Trials: ${t.ran} of ${t.planned} planned ran${
      t.stoppedByBudget ? ` (the time budget of ${t.budgetSeconds} s ran out; no trial started after it)` : ''
    }.`,
    '',
    `| trial | params | ROC AUC per fold | mean | std | s |`,
    '| --- | --- | --- | --- | --- | --- |',
    ...t.trials.map(
      (r) =>
        `| ${r.trial}${r.trial === t.chosen.trial ? ' **chosen**' : ''} | \`${JSON.stringify(r.params)}\` | ${r.foldRocAuc
          .map(f4)
          .join(' ')} | ${f4(r.cvRocAucMean)} | ${f4(r.cvRocAucStd)} | ${r.seconds.toFixed(1)} |`,
    ),
    '',
    `Chosen: trial ${t.chosen.trial}, \`${JSON.stringify(t.chosen.params)}\` (run ${t.chosen.runId}).`,
    `Refitted on the training part (early stopping and calibration on validation), its holdout ROC AUC is ${f4(
      t.holdout.rocAuc,
    )} (validation ${f4(t.holdout.validationRocAuc)}; run ${t.holdout.runId}): the one time the holdout is read.`,
    '',
  ];
  return lines.join('\n');
}
