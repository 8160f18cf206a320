import { transformRow } from '../features/transform.js';
import { predictScores } from '../models/classifier.js';
import { compileDenseChain } from '../models/dense-fast-path.js';
import { pickSampleRows, SERVING_SAMPLE_FORMAT, type ServingSample } from '../models/serving-sample.js';
import type { tf } from '../models/tf.js';
import type { PreparedData } from './data.js';

/**
 * The holdout sample saved with the model: scored row by row the way serving scores (the dense fast
 * path when the model has one, else TF.js), so a sound version reproduces it to the last bit.
 */
export function servingSampleOf(data: PreparedData, model: tf.LayersModel): ServingSample {
  const rows = pickSampleRows(
    data.parts.holdout.map((r) => r.features),
    data.state,
  );
  const fast = compileDenseChain(model);
  const predictions = rows.map((row) => {
    const x = transformRow(data.state, row);
    return fast ? (fast(x)[0] as number) : (predictScores(model, x, data.width)[0] as number);
  });
  return { format: SERVING_SAMPLE_FORMAT, rows, predictions };
}
