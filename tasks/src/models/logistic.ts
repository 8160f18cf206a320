import { predictScores } from './classifier.js';
import type { tf } from './tf.js';

/**
 * Batch scoring of a TF.js model on a row-major matrix. Training lives in `classifier.ts`
 * (logistic regression and MLP); this name stays for callers that only score.
 */
export function predictProba(model: tf.LayersModel, x: Float32Array, width: number): Float32Array {
  return predictScores(model, x, width);
}
