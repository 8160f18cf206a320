import { DriftwoodError } from '../errors.js';

/** Every hyper-parameter of the gradient-boosted trees; all of them are logged as run params. */
export interface GbdtParams {
  /** Most boosting iterations (≥ 1); early stopping may keep fewer. */
  trees: number;
  /** Shrinkage applied to every leaf value, in (0, 1]. */
  learningRate: number;
  /** Leaves per tree, grown best-first (≥ 2). */
  maxLeaves: number;
  /** Deepest leaf; 0 = unlimited (maxLeaves alone bounds the tree). */
  maxDepth: number;
  /** Fewest training rows in a leaf (≥ 1). */
  minLeaf: number;
  /** L2 penalty on leaf values (≥ 0). */
  l2: number;
  /** Histogram bins per feature, 2..255; one more is kept for missing values. */
  maxBins: number;
  /** Fraction of rows each tree sees, (0, 1]. */
  subsample: number;
  /** Fraction of columns each tree may split on, (0, 1]. */
  colsample: number;
  /** Iterations without a better validation loss before stopping; 0 = run all trees. */
  patience: number;
  seed: number;
  /** scikit-learn's "balanced" sample weights, n / (2·n_class). */
  classWeighting: boolean;
}

/**
 * scikit-learn's HistGradientBoostingClassifier and LightGBM defaults (100 iterations, rate 0.1,
 * 31 leaves, 20 rows a leaf, no L2, 255 bins, no subsampling, 10 rounds of patience), except class
 * weighting, which is on as for the project's other models: churners are the rare class.
 */
export const DEFAULT_GBDT_PARAMS: GbdtParams = {
  trees: 100,
  learningRate: 0.1,
  maxLeaves: 31,
  maxDepth: 0,
  minLeaf: 20,
  l2: 0,
  maxBins: 255,
  subsample: 1,
  colsample: 1,
  patience: 10,
  seed: 7,
  classWeighting: true,
};

/** Checks hyper-parameters up front, naming the one that is wrong (as validateModelParams does). */
export function validateGbdtParams(p: GbdtParams): GbdtParams {
  const bad = (name: string, expected: string, got: unknown): never => {
    throw new DriftwoodError('USAGE', `model parameter ${name}: expected ${expected}, got ${String(got)}`);
  };
  const whole = (name: keyof GbdtParams, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    const v = p[name];
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max))
      bad(
        name,
        max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `a whole number in ${min}..${max}`,
        v,
      );
  };
  const fraction = (name: keyof GbdtParams): void => {
    const v = p[name];
    if (!(typeof v === 'number' && v > 0 && v <= 1)) bad(name, 'a number in (0, 1]', v);
  };
  whole('trees', 1);
  fraction('learningRate');
  whole('maxLeaves', 2);
  whole('maxDepth', 0);
  whole('minLeaf', 1);
  if (!(typeof p.l2 === 'number' && p.l2 >= 0 && Number.isFinite(p.l2)))
    bad('l2', 'a finite number ≥ 0', p.l2);
  whole('maxBins', 2, 255);
  fraction('subsample');
  fraction('colsample');
  whole('patience', 0);
  whole('seed', 0);
  if (typeof p.classWeighting !== 'boolean') bad('classWeighting', 'true or false', p.classWeighting);
  return p;
}
