import { DriftwoodError } from '../errors.js';
import { tf } from '../models/tf.js';
import { Rng } from '../random.js';

export interface LstmParams {
  units: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Epochs without a better validation loss before training stops. */
  patience: number;
  seed: number;
}

/** Small on purpose: ~2,000 hours train in seconds on one WebAssembly thread. */
export const DEFAULT_LSTM_PARAMS: LstmParams = {
  units: 16,
  epochs: 40,
  batchSize: 64,
  learningRate: 0.003,
  patience: 6,
  seed: 42,
};

/** The least drop in validation loss that counts as better (early stopping). */
const MIN_DELTA = 1e-5;

export function validateLstmParams(p: LstmParams): LstmParams {
  const whole = (k: keyof LstmParams, min: number) => {
    if (!Number.isInteger(p[k]) || p[k] < min)
      throw new DriftwoodError('USAGE', `${k}: expected a whole number ≥ ${min}, got ${p[k]}`);
  };
  whole('units', 1);
  whole('epochs', 1);
  whole('batchSize', 1);
  whole('patience', 0);
  whole('seed', 0);
  if (!(p.learningRate > 0 && p.learningRate < 1))
    throw new DriftwoodError('USAGE', `learningRate: expected a number in (0, 1), got ${p.learningRate}`);
  return p;
}

/** One LSTM layer over the window, then a linear unit: the (scaled) log return ahead. */
export function buildLstm(windowHours: number, features: number, p: LstmParams): tf.Sequential {
  const model = tf.sequential();
  model.add(
    tf.layers.lstm({
      units: p.units,
      inputShape: [windowHours, features],
      kernelInitializer: tf.initializers.glorotUniform({ seed: p.seed }),
      recurrentInitializer: tf.initializers.orthogonal({ seed: p.seed + 1, gain: 1 }),
    }),
  );
  model.add(
    tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: p.seed + 2 }) }),
  );
  model.compile({ optimizer: tf.train.adam(p.learningRate), loss: 'meanSquaredError' });
  return model;
}

export interface SequenceData {
  /** n × windowHours × features, scaled. */
  x: Float32Array;
  /** n scaled targets. */
  y: Float32Array;
  valX: Float32Array;
  valY: Float32Array;
  windowHours: number;
  features: number;
}

export interface LstmEpoch {
  epoch: number;
  loss: number;
  valLoss: number;
}

export interface TrainedLstm {
  model: tf.Sequential;
  bestEpoch: number;
  epochsRun: number;
}

function mse(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor): number {
  return tf.tidy(() => tf.losses.meanSquaredError(y, model.predict(x) as tf.Tensor).dataSync()[0] as number);
}

/**
 * Trains with a seeded shuffle per epoch (TF.js's own shuffle uses Math.random) and early stopping on
 * the validation loss, keeping the best epoch's weights: the same data and seed give the same model.
 */
export async function trainLstm(
  data: SequenceData,
  params: LstmParams,
  onEpoch: (e: LstmEpoch) => void = () => undefined,
): Promise<TrainedLstm> {
  const p = validateLstmParams(params);
  const { windowHours, features } = data;
  const step = windowHours * features;
  const n = data.y.length;
  if (n === 0 || data.valY.length === 0)
    throw new DriftwoodError('DATA_MISSING', 'lstm: training and validation windows are both needed');
  const model = buildLstm(windowHours, features, p);
  const rng = new Rng(p.seed);
  const vx = tf.tensor3d(data.valX, [data.valY.length, windowHours, features]);
  const vy = tf.tensor2d(data.valY, [data.valY.length, 1]);
  let best: { epoch: number; loss: number; weights: tf.Tensor[] } | undefined;
  let epochsRun = 0;
  try {
    for (let epoch = 0; epoch < p.epochs; epoch++) {
      const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
      const sx = new Float32Array(n * step);
      const sy = new Float32Array(n);
      order.forEach((src, dst) => {
        sx.set(data.x.subarray(src * step, (src + 1) * step), dst * step);
        sy[dst] = data.y[src] as number;
      });
      const xs = tf.tensor3d(sx, [n, windowHours, features]);
      const ys = tf.tensor2d(sy, [n, 1]);
      let loss: number;
      try {
        const h = await model.fit(xs, ys, { epochs: 1, batchSize: p.batchSize, shuffle: false, verbose: 0 });
        loss = Number(h.history.loss?.[0]);
      } finally {
        tf.dispose([xs, ys]);
      }
      const valLoss = mse(model, vx, vy);
      epochsRun = epoch + 1;
      onEpoch({ epoch, loss, valLoss });
      if (!Number.isFinite(valLoss)) break;
      if (best === undefined || valLoss < best.loss - MIN_DELTA) {
        if (best) tf.dispose(best.weights);
        best = { epoch, loss: valLoss, weights: model.getWeights().map((w) => w.clone()) };
      } else if (epoch - best.epoch >= p.patience) break;
    }
    if (best) model.setWeights(best.weights);
    return { model, bestEpoch: best?.epoch ?? epochsRun - 1, epochsRun };
  } finally {
    tf.dispose([vx, vy]);
    if (best) tf.dispose(best.weights);
  }
}

/** The model's raw (scaled) outputs for n scaled windows. */
export function predictScaled(
  model: tf.LayersModel,
  x: Float32Array,
  windowHours: number,
  features: number,
): Float32Array {
  const n = x.length / (windowHours * features);
  return tf.tidy(() => {
    const out = model.predict(tf.tensor3d(x, [n, windowHours, features])) as tf.Tensor;
    return Float32Array.from(out.dataSync() as Float32Array);
  });
}
