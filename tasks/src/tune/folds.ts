import type { LabelledRow } from '../datasets/churn/builder.js';
import { fitTransform, type TransformState, transformRows } from '../features/transform.js';
import type { Matrix, PreparedData } from '../train/data.js';
import { type FoldRows, pickLabels } from './cv.js';

/** One fold's model inputs: its parts through the transform fitted on its training rows alone. */
export interface FoldInputs {
  width: number;
  /** The profile's monotone directions for this fold's outputs. */
  signs: Int8Array;
  train: Matrix;
  stop: Matrix;
  score: Matrix;
}

type FoldData = Pick<PreparedData, 'parts' | 'state' | 'profile' | 'train'>;

/**
 * The transform of one fold, fitted as the features step fits it (same options) but on the fold's
 * training rows only. Fitted on the whole training part, the scored fold's own medians, scales,
 * categories and correlations would shape its inputs: a leak that cross-validation would reward.
 */
export function fitFoldTransform(data: FoldData, rows: FoldRows): TransformState {
  return fitTransform(
    rows.train.map((i) => (data.parts.train[i] as LabelledRow).features),
    { numeric: data.profile.numeric, categorical: data.profile.categorical },
    data.state.options,
  );
}

export function foldInputs(data: FoldData, state: TransformState, rows: FoldRows): FoldInputs {
  const part = (index: readonly number[]): Matrix => ({
    x: transformRows(
      state,
      index.map((i) => (data.parts.train[i] as LabelledRow).features),
    ),
    y: pickLabels(data.train.y, index),
  });
  return {
    width: state.outputs.length,
    signs: data.profile.signs(state.outputs),
    train: part(rows.train),
    stop: part(rows.stop),
    score: part(rows.score),
  };
}
