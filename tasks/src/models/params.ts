import { DriftwoodError } from '../errors.js';
import { DEFAULT_GBDT_PARAMS, type GbdtParams, validateGbdtParams } from './gbdt-params.js';

export const MODEL_KINDS = ['logistic', 'mlp', 'gbdt'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

/**
 * What `train` may be asked for: a kind, or `auto` (the default when neither a flag nor the
 * contract names one): fit the candidates of train/select.ts and keep the best on validation. A
 * registered version always holds one of MODEL_KINDS.
 */
export const KIND_CHOICES = ['auto', ...MODEL_KINDS] as const;
export type KindChoice = (typeof KIND_CHOICES)[number];

/**
 * How the logistic regression is fitted: 'adam' (TF.js, mini-batch, early stopping on validation) or
 * 'exact' (projected Newton to the optimum of the same penalised objective, logistic-exact.ts).
 */
export const SOLVERS = ['adam', 'exact'] as const;
export type Solver = (typeof SOLVERS)[number];

/** Every hyper-parameter that decides a model's numbers; all of them are logged as run params. */
export interface ModelParams {
  kind: ModelKind;
  /** 'exact' fits the logistic regression to its optimum and ignores epochs, batches and patience. */
  solver: Solver;
  epochs: number;
  learningRate: number;
  batchSize: number;
  l2: number;
  seed: number;
  /** Hidden layer widths of the MLP (ignored by the logistic regression). */
  hiddenUnits: number[];
  /** Epochs without a better validation loss before training stops; 0 trains every epoch. */
  patience: number;
  /** Weight the classes inversely to their frequency (churn is the rare class). */
  classWeighting: boolean;
  /** Hold the logistic regression to the dataset's known directions (e.g. datasets/churn/directions.ts). */
  monotonic: boolean;
  /** Gradient-boosted trees (kind 'gbdt', gbdt.ts): the most trees; early stopping uses `patience`. */
  trees: number;
  maxLeaves: number;
  /** 0: no depth limit (leaves bound the tree). */
  maxDepth: number;
  minLeaf: number;
  maxBins: number;
  /** Row and column fractions drawn per tree. */
  subsample: number;
  colsample: number;
}

/** The hyper-parameters a user gives (flags, the contract's `training.model`): any, and the kind or `auto`. */
export type ModelRequest = Partial<Omit<ModelParams, 'kind'>> & { kind?: KindChoice };

/** The defaults of a model whose kind is named; `auto` picks among kinds (train/select.ts). */
export const DEFAULT_MODEL_PARAMS: ModelParams = {
  kind: 'logistic',
  solver: 'adam',
  epochs: 40,
  learningRate: 0.05,
  batchSize: 64,
  l2: 0.001,
  seed: 7,
  hiddenUnits: [16],
  patience: 5,
  classWeighting: true,
  monotonic: true,
  trees: DEFAULT_GBDT_PARAMS.trees,
  maxLeaves: DEFAULT_GBDT_PARAMS.maxLeaves,
  maxDepth: DEFAULT_GBDT_PARAMS.maxDepth,
  minLeaf: DEFAULT_GBDT_PARAMS.minLeaf,
  maxBins: DEFAULT_GBDT_PARAMS.maxBins,
  subsample: DEFAULT_GBDT_PARAMS.subsample,
  colsample: DEFAULT_GBDT_PARAMS.colsample,
};

/**
 * What differs for the trees when the user leaves it out (gbdt-params.ts): their learning rate is a
 * shrinkage, `l2` penalises leaf values rather than weights, and early stopping counts trees.
 */
export const GBDT_DEFAULT_OVERRIDES: Partial<ModelParams> = {
  learningRate: DEFAULT_GBDT_PARAMS.learningRate,
  l2: DEFAULT_GBDT_PARAMS.l2,
  patience: DEFAULT_GBDT_PARAMS.patience,
};

/** The defaults with the given values on top, each kind's own defaults first. */
export function withDefaults(p: Partial<ModelParams>): ModelParams {
  return {
    ...DEFAULT_MODEL_PARAMS,
    ...(p.kind === 'gbdt' ? GBDT_DEFAULT_OVERRIDES : {}),
    ...p,
  };
}

/** Checks hyper-parameters up front, naming the one that is wrong. */
export function validateModelParams(p: ModelParams): ModelParams {
  const bad = (name: string, expected: string, got: unknown): never => {
    throw new DriftwoodError('USAGE', `model parameter ${name}: expected ${expected}, got ${String(got)}`);
  };
  if (!MODEL_KINDS.includes(p.kind)) bad('kind', MODEL_KINDS.join(' or '), p.kind);
  if (!SOLVERS.includes(p.solver)) bad('solver', SOLVERS.join(' or '), p.solver);
  if (p.solver === 'exact' && p.kind !== 'logistic')
    bad('solver', `'adam' for ${p.kind} ('exact' fits the logistic regression only)`, p.solver);
  if (!Number.isInteger(p.epochs) || p.epochs < 1) bad('epochs', 'a whole number ≥ 1', p.epochs);
  if (!(p.learningRate > 0 && p.learningRate < 10))
    bad('learningRate', 'a number in (0, 10)', p.learningRate);
  if (!Number.isInteger(p.batchSize) || p.batchSize < 1) bad('batchSize', 'a whole number ≥ 1', p.batchSize);
  if (!(p.l2 >= 0)) bad('l2', 'a number ≥ 0', p.l2);
  if (!Number.isInteger(p.seed) || p.seed < 0) bad('seed', 'a whole number ≥ 0', p.seed);
  if (!Number.isInteger(p.patience) || p.patience < 0) bad('patience', 'a whole number ≥ 0', p.patience);
  if (
    p.kind === 'mlp' &&
    (p.hiddenUnits.length === 0 || p.hiddenUnits.some((u) => !Number.isInteger(u) || u < 1))
  )
    bad('hiddenUnits', 'one or more whole numbers ≥ 1 (e.g. 32,16)', p.hiddenUnits.join(','));
  // The trees' own parameters are checked with the trees' rules; other kinds ignore them.
  if (p.kind === 'gbdt') validateGbdtParams(gbdtParamsOf(p));
  return p;
}

/** The parameters the gradient-boosted trees take, from the model's. */
export function gbdtParamsOf(p: ModelParams): GbdtParams {
  return {
    trees: p.trees,
    learningRate: p.learningRate,
    maxLeaves: p.maxLeaves,
    maxDepth: p.maxDepth,
    minLeaf: p.minLeaf,
    l2: p.l2,
    maxBins: p.maxBins,
    subsample: p.subsample,
    colsample: p.colsample,
    patience: p.patience,
    seed: p.seed,
    classWeighting: p.classWeighting,
  };
}
