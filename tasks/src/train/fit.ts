import { type SegmentMetrics, segmentMetrics } from '../evaluate/segments.js';
import { type Calibration, calibratedModel, fitCalibration } from '../models/calibration.js';
import type { EpochMetrics, ModelParams } from '../models/classifier.js';
import {
  type BinaryMetrics,
  binaryMetrics,
  type Confusion,
  chooseThresholdFor,
  confusionAt,
  prCurve,
  rocCurve,
} from '../models/metrics.js';
import { type TrainedModel, trainModel } from '../models/trained-model.js';
import type { PreparedData } from './data.js';

export interface FitOutcome {
  /** The model as served: its scores are calibrated. */
  model: TrainedModel;
  /** Fitted on the validation scores; saved with the model as calibration.json. */
  calibration: Calibration;
  /** Log loss of the scores before calibration (after it: `validation.log_loss`, `metrics.log_loss`). */
  uncalibratedLogLoss: { validation: number; holdout: number };
  /** Per epoch, with the time it ended (the x-axis of MLflow's wall-time charts). */
  epochs: (EpochMetrics & { at: number })[];
  bestEpoch: number;
  epochsRun: number;
  trainMs: number;
  threshold: number;
  validation: BinaryMetrics;
  metrics: BinaryMetrics;
  holdoutScores: Float64Array;
  confusion: Confusion;
  roc: [number, number][];
  pr: [number, number][];
  segments: SegmentMetrics[];
}

/**
 * Trains one model on prepared data and evaluates it. On the validation split: the calibration the
 * contract names is fitted on the model's scores, then the decision threshold is chosen on the
 * calibrated scores by the contract's objective. Every holdout metric, curve and segment uses the calibrated scores and that
 * threshold; the holdout decides nothing.
 */
export async function fitAndEvaluate(
  data: PreparedData,
  params: ModelParams,
  now: () => number = Date.now,
): Promise<FitOutcome> {
  const { decision } = data;
  const epochs: FitOutcome['epochs'] = [];
  const t0 = performance.now();
  const trained = await trainModel(
    { x: data.train.x, y: data.train.y, valX: data.validation.x, valY: data.validation.y, width: data.width },
    params,
    (m) => epochs.push({ ...m, at: now() }),
    data.profile.signs(data.state.outputs),
  );
  const trainMs = performance.now() - t0;
  const rawValidation = trained.scores(data.validation.x);
  const calibration = fitCalibration(rawValidation, data.validation.y, decision.calibration);
  const model = calibratedModel(trained, calibration);
  const valScores = model.scores(data.validation.x);
  const threshold = chooseThresholdFor(valScores, data.validation.y, decision.threshold);
  const rawHoldout = trained.scores(data.holdout.x);
  const holdoutScores = model.scores(data.holdout.x);
  return {
    model,
    calibration,
    uncalibratedLogLoss: {
      validation: binaryMetrics(rawValidation, data.validation.y).log_loss,
      holdout: binaryMetrics(rawHoldout, data.holdout.y).log_loss,
    },
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
