import { transformRow } from '../features/transform.js';
import { pickSampleRows, SERVING_SAMPLE_FORMAT, type ServingSample } from '../models/serving-sample.js';
import type { TrainedModel } from '../models/trained-model.js';
import type { PreparedData } from './data.js';

/**
 * The holdout sample saved with the model: scored row by row the way serving scores (the model's
 * one-row path), so a sound version reproduces it to the last bit.
 */
export function servingSampleOf(data: PreparedData, model: TrainedModel): ServingSample {
  const rows = pickSampleRows(
    data.parts.holdout.map((r) => r.features),
    data.state,
  );
  const predictions = rows.map((row) => model.scoreOne(transformRow(data.state, row)));
  return { format: SERVING_SAMPLE_FORMAT, rows, predictions };
}
