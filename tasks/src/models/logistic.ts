import { Rng } from '../random.js';
import { tf } from './tf.js';

export interface LogisticParams {
  epochs: number;
  learningRate: number;
  batchSize: number;
  l2: number;
  seed: number;
}

export interface EpochMetrics {
  epoch: number;
  loss: number;
  valLoss: number;
}

/** A TF.js logistic regression: one sigmoid unit, L2-regularised, seeded initialisation. */
export function buildLogistic(inputs: number, p: LogisticParams): tf.Sequential {
  const model = tf.sequential();
  model.add(
    tf.layers.dense({
      units: 1,
      activation: 'sigmoid',
      inputShape: [inputs],
      kernelInitializer: tf.initializers.glorotUniform({ seed: p.seed }),
      kernelRegularizer: p.l2 > 0 ? tf.regularizers.l2({ l2: p.l2 }) : undefined,
    }),
  );
  model.compile({ optimizer: tf.train.adam(p.learningRate), loss: 'binaryCrossentropy' });
  return model;
}

/**
 * Trains with class weights (churn is the rare class) and a seeded shuffle done here, since
 * TF.js's own shuffle uses Math.random and would make runs differ.
 */
export async function trainLogistic(
  x: Float32Array,
  y: Float32Array,
  width: number,
  valX: Float32Array,
  valY: Float32Array,
  p: LogisticParams,
  onEpoch: (m: EpochMetrics) => void,
): Promise<tf.Sequential> {
  const n = y.length;
  const model = buildLogistic(width, p);
  const positives = y.reduce((a, b) => a + b, 0);
  const classWeight =
    positives > 0 && positives < n ? { 0: n / (2 * (n - positives)), 1: n / (2 * positives) } : undefined;
  const rng = new Rng(p.seed);
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const sx = new Float32Array(n * width);
  const sy = new Float32Array(n);
  order.forEach((src, dst) => {
    sx.set(x.subarray(src * width, (src + 1) * width), dst * width);
    sy[dst] = y[src] as number;
  });
  const xs = tf.tensor2d(sx, [n, width]);
  const ys = tf.tensor2d(sy, [n, 1]);
  const vxs = tf.tensor2d(valX, [valY.length, width]);
  const vys = tf.tensor2d(valY, [valY.length, 1]);
  try {
    await model.fit(xs, ys, {
      epochs: p.epochs,
      batchSize: p.batchSize,
      shuffle: false,
      validationData: [vxs, vys],
      ...(classWeight ? { classWeight } : {}),
      verbose: 0,
      callbacks: {
        onEpochEnd: async (epoch, logs) =>
          onEpoch({ epoch, loss: Number(logs?.loss), valLoss: Number(logs?.val_loss) }),
      },
    });
  } finally {
    tf.dispose([xs, ys, vxs, vys]);
  }
  return model;
}

export function predictProba(model: tf.LayersModel, x: Float32Array, width: number): Float32Array {
  return tf.tidy(() => {
    const out = model.predict(tf.tensor2d(x, [x.length / width, width])) as tf.Tensor;
    return out.dataSync() as Float32Array;
  });
}
