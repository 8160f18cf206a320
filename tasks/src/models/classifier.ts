import { Rng } from '../random.js';
import { type ExactLogisticFit, fitLogisticExact } from './logistic-exact.js';
import { rocAuc } from './metrics.js';
import { type ModelParams, validateModelParams } from './params.js';
import { tf } from './tf.js';

export * from './params.js';

/** The least gain in validation ROC AUC that counts as better (early stopping). */
const MIN_DELTA = 1e-4;

export interface EpochMetrics {
  epoch: number;
  loss: number;
  valLoss: number;
  valRocAuc: number;
}

export type ExactFitSummary = Pick<ExactLogisticFit, 'iterations' | 'gradientNorm' | 'loss' | 'converged'>;

export interface TrainedClassifier {
  model: tf.Sequential;
  /** The epoch whose weights the model keeps (the best validation ROC AUC). */
  bestEpoch: number;
  epochsRun: number;
  /** With solver 'exact': iterations, final projected gradient and objective (the epochs are its iterations). */
  exact?: ExactFitSummary;
}

/**
 * Logistic regression (one sigmoid unit) or an MLP (ReLU hidden layers, sigmoid output), every
 * initialiser seeded from `seed` so that the same data and seed give the same weights.
 */
export function buildClassifier(inputs: number, p: ModelParams): tf.Sequential {
  const model = tf.sequential();
  const regularizer = () => (p.l2 > 0 ? tf.regularizers.l2({ l2: p.l2 }) : undefined);
  const hidden = p.kind === 'mlp' ? p.hiddenUnits : [];
  hidden.forEach((units, i) => {
    model.add(
      tf.layers.dense({
        units,
        activation: 'relu',
        ...(i === 0 ? { inputShape: [inputs] } : {}),
        kernelInitializer: tf.initializers.heNormal({ seed: p.seed + i }),
        kernelRegularizer: regularizer(),
      }),
    );
  });
  model.add(
    tf.layers.dense({
      units: 1,
      activation: 'sigmoid',
      ...(hidden.length === 0 ? { inputShape: [inputs] } : {}),
      // Logistic regression is convex: start from zero weights, so an early-stopped model never keeps
      // random signs (a random start can read "more payment failures, less churn" before it learns).
      kernelInitializer:
        hidden.length === 0
          ? tf.initializers.zeros()
          : tf.initializers.glorotUniform({ seed: p.seed + hidden.length }),
      kernelRegularizer: regularizer(),
    }),
  );
  model.compile({ optimizer: tf.train.adam(p.learningRate), loss: 'binaryCrossentropy' });
  return model;
}

/** Inverse-frequency class weights (sklearn's "balanced"), or undefined with one class only. */
export function balancedClassWeights(y: ArrayLike<number>): { 0: number; 1: number } | undefined {
  const n = y.length;
  let positives = 0;
  for (let i = 0; i < n; i++) positives += y[i] as number;
  if (positives === 0 || positives === n) return undefined;
  return { 0: n / (2 * (n - positives)), 1: n / (2 * positives) };
}

/**
 * Trains with class weights, a seeded shuffle done here (TF.js's own shuffle uses Math.random and
 * would make runs differ) and early stopping on validation ROC AUC that keeps the best epoch's
 * weights, not the last one's.
 */
export async function trainClassifier(
  data: { x: Float32Array; y: Float32Array; valX: Float32Array; valY: Float32Array; width: number },
  p: ModelParams,
  onEpoch: (m: EpochMetrics) => void = () => undefined,
  /**
   * Known directions per input column (+1: the weight may not go below 0, −1: not above 0, 0: free),
   * enforced on the logistic regression by projecting after every batch.
   */
  signs?: ArrayLike<number>,
): Promise<TrainedClassifier> {
  validateModelParams(p);
  if (p.solver === 'exact') return trainExactLogistic(data, p, onEpoch, signs);
  const { width } = data;
  const n = data.y.length;
  const model = buildClassifier(width, p);
  const classWeight = p.classWeighting ? balancedClassWeights(data.y) : undefined;
  const order = new Rng(p.seed).shuffle(Array.from({ length: n }, (_, i) => i));
  const sx = new Float32Array(n * width);
  const sy = new Float32Array(n);
  order.forEach((src, dst) => {
    sx.set(data.x.subarray(src * width, (src + 1) * width), dst * width);
    sy[dst] = data.y[src] as number;
  });
  const xs = tf.tensor2d(sx, [n, width]);
  const ys = tf.tensor2d(sy, [n, 1]);
  const vxs = tf.tensor2d(data.valX, [data.valY.length, width]);
  const vys = tf.tensor2d(data.valY, [data.valY.length, 1]);
  const project = p.kind === 'logistic' && p.monotonic && signs ? signProjection(model, signs) : undefined;
  let best: { epoch: number; auc: number; weights: tf.Tensor[] } | undefined;
  let epochsRun = 0;
  try {
    await model.fit(xs, ys, {
      epochs: p.epochs,
      batchSize: p.batchSize,
      shuffle: false,
      validationData: [vxs, vys],
      ...(classWeight ? { classWeight } : {}),
      verbose: 0,
      callbacks: {
        ...(project ? { onBatchEnd: async () => project.apply() } : {}),
        onEpochEnd: async (epoch, logs) => {
          epochsRun = epoch + 1;
          const valScores = tf.tidy(() => (model.predict(vxs) as tf.Tensor).dataSync() as Float32Array);
          const valRocAuc = rocAuc(valScores, data.valY);
          onEpoch({ epoch, loss: Number(logs?.loss), valLoss: Number(logs?.val_loss), valRocAuc });
          // Monitored on validation ROC AUC, not loss: with class weights the unweighted validation
          // loss rises while ranking improves, and ranking is what the gate judges.
          // A validation split with one class has no AUC: then the loss decides.
          const score = Number.isFinite(valRocAuc) ? valRocAuc : -Number(logs?.val_loss);
          if (best === undefined || score > best.auc + MIN_DELTA) {
            if (best) tf.dispose(best.weights);
            best = { epoch, auc: score, weights: model.getWeights().map((w) => w.clone()) };
          } else if (p.patience > 0 && epoch - best.epoch >= p.patience) {
            model.stopTraining = true;
          }
        },
      },
    });
    const kept = best as { epoch: number; weights: tf.Tensor[] } | undefined;
    if (kept) model.setWeights(kept.weights);
    return { model, bestEpoch: kept?.epoch ?? epochsRun - 1, epochsRun };
  } finally {
    tf.dispose([xs, ys, vxs, vys]);
    project?.dispose();
    const kept = best as { weights: tf.Tensor[] } | undefined;
    if (kept) tf.dispose(kept.weights);
  }
}

/**
 * The exact fit (logistic-exact.ts) poured into the very Dense layer the TF.js solver trains, so the
 * model is saved, loaded and scored by the fast path exactly as an Adam-fitted one is (float32 weights).
 * Each Newton iteration is reported as an epoch; the last one is kept (the optimum, not a validation
 * pick).
 */
function trainExactLogistic(
  data: { x: Float32Array; y: Float32Array; valX: Float32Array; valY: Float32Array; width: number },
  p: ModelParams,
  onEpoch: (m: EpochMetrics) => void,
  signs: ArrayLike<number> | undefined,
): TrainedClassifier {
  const { width } = data;
  const nVal = data.valY.length;
  const valScores = new Float64Array(nVal);
  const report = (epoch: number, loss: number, w: Float64Array, b: number) => {
    let valLoss = 0;
    for (let i = 0; i < nVal; i++) {
      let zi = b;
      for (let j = 0; j < width; j++) zi += (data.valX[i * width + j] as number) * (w[j] as number);
      const prob = 1 / (1 + Math.exp(-zi));
      valScores[i] = prob;
      const yi = data.valY[i] as number;
      valLoss -= Math.log(Math.min(Math.max(yi > 0.5 ? prob : 1 - prob, 1e-7), 1));
    }
    onEpoch({
      epoch,
      loss,
      valLoss: nVal > 0 ? valLoss / nVal : Number.NaN,
      valRocAuc: rocAuc(valScores, data.valY),
    });
  };
  const fit = fitLogisticExact(
    data.x,
    data.y,
    width,
    { l2: p.l2, classWeighting: p.classWeighting, ...(p.monotonic && signs ? { signs } : {}) },
    (it) => report(it.iteration - 1, it.loss, it.weights, it.intercept),
  );
  if (fit.iterations === 0) report(0, fit.loss, fit.weights, fit.intercept);
  const model = buildClassifier(width, p);
  const layer = model.layers[model.layers.length - 1] as tf.layers.Layer;
  const kernel = tf.tensor2d(Float32Array.from(fit.weights), [width, 1]);
  const bias = tf.tensor1d([fit.intercept]);
  layer.setWeights([kernel, bias]);
  tf.dispose([kernel, bias]);
  const epochs = Math.max(fit.iterations, 1);
  const { iterations, gradientNorm, loss, converged } = fit;
  return {
    model,
    bestEpoch: epochs - 1,
    epochsRun: epochs,
    exact: { iterations, gradientNorm, loss, converged },
  };
}

/**
 * Projected gradient descent for sign constraints (the monotone constraints of gradient-boosting
 * libraries, for a linear model): after each step a weight that crossed its allowed sign is set to 0.
 * Kept out of the model itself, so the saved model is a plain Dense layer that serving loads as is.
 */
function signProjection(
  model: tf.Sequential,
  signs: ArrayLike<number>,
): { apply: () => void; dispose: () => void } | undefined {
  const layer = model.layers[model.layers.length - 1];
  if (!layer || !Array.from(signs).some((s) => s !== 0)) return undefined;
  const pos = tf.tensor2d(
    Float32Array.from(signs, (s) => (s > 0 ? 1 : 0)),
    [signs.length, 1],
  );
  const neg = tf.tensor2d(
    Float32Array.from(signs, (s) => (s < 0 ? 1 : 0)),
    [signs.length, 1],
  );
  return {
    apply: () => {
      const [kernel, ...rest] = layer.getWeights();
      if (!kernel) return;
      const projected = tf.tidy(() =>
        kernel.sub(tf.relu(kernel).mul(neg)).add(tf.relu(kernel.neg()).mul(pos)),
      );
      layer.setWeights([projected, ...rest]);
      projected.dispose();
    },
    dispose: () => tf.dispose([pos, neg]),
  };
}

export function predictScores(model: tf.LayersModel, x: Float32Array, width: number): Float32Array {
  return tf.tidy(() => {
    const out = model.predict(tf.tensor2d(x, [x.length / width, width])) as tf.Tensor;
    return Float32Array.from(out.dataSync() as Float32Array);
  });
}
