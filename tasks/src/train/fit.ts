import { type SegmentMetrics, segmentMetrics } from '../evaluate/segments.js';
import type { EpochMetrics, ModelParams } from '../models/classifier.js';
import {
  type BinaryMetrics,
  binaryMetrics,
  type Confusion,
  chooseThreshold,
  confusionAt,
  prCurve,
  rocCurve,
} from '../models/metrics.js';
import { type TrainedModel, trainModel } from '../models/trained-model.js';
import type { PreparedData } from './data.js';

export interface FitOutcome {
  model: TrainedModel;
  /** Per epoch, with the time it ended (the x-axis of MLflow's wall-time charts). */
  epochs: (EpochMetrics & { at: number })[];
  bestEpoch: number;
  epochsRun: number;
  trainMs: number;
  threshold: number;
  validation: BinaryMetrics;
  metrics: BinaryMetrics;
  holdoutScores: Float32Array;
  confusion: Confusion;
  roc: [number, number][];
  pr: [number, number][];
  segments: SegmentMetrics[];
}

/**
 * Trains one model on prepared data and evaluates it: the decision threshold is chosen on the
 * validation split (best F1), then every holdout metric, curve and segment uses that threshold.
 */
export async function fitAndEvaluate(
  data: PreparedData,
  params: ModelParams,
  now: () => number = Date.now,
): Promise<FitOutcome> {
  const epochs: FitOutcome['epochs'] = [];
  const t0 = performance.now();
  const trained = await trainModel(
    { x: data.train.x, y: data.train.y, valX: data.validation.x, valY: data.validation.y, width: data.width },
    params,
    (m) => epochs.push({ ...m, at: now() }),
    data.profile.signs(data.state.outputs),
  );
  const trainMs = performance.now() - t0;
  const valScores = trained.scores(data.validation.x);
  const threshold = chooseThreshold(valScores, data.validation.y);
  const holdoutScores = trained.scores(data.holdout.x);
  return {
    model: trained,
    epochs,
    bestEpoch: trained.bestEpoch,
    epochsRun: trained.epochsRun,
    trainMs,
    threshold,
    validation: binaryMetrics(valScores, data.validation.y, threshold),
    metrics: binaryMetrics(holdoutScores, data.holdout.y, threshold),
    holdoutScores,
    confusion: confusionAt(holdoutScores, data.holdout.y, threshold),
    roc: rocCurve(holdoutScores, data.holdout.y),
    pr: prCurve(holdoutScores, data.holdout.y),
    segments: segmentMetrics(
      data.parts.holdout.map((r) => r.features),
      holdoutScores,
      data.holdout.y,
      threshold,
      data.profile.segmentColumns,
    ),
  };
}
