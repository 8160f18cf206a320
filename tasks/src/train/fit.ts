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

/** What a fit reads: the training and validation matrices and the contract's decision settings. */
export type FitData = Pick<PreparedData, 'train' | 'validation' | 'width' | 'decision'>;

/** A model fitted on the training part and made ready to serve on the validation part alone. */
export interface ValidatedFit {
  /** The model's own scores (what calibration was fitted on). */
  trained: TrainedModel;
  /** The model as served: its scores are calibrated. */
  model: TrainedModel;
  calibration: Calibration;
  threshold: number;
  /** Calibrated, at the threshold. */
  validation: BinaryMetrics;
  uncalibratedValidationLogLoss: number;
  epochs: FitOutcome['epochs'];
  bestEpoch: number;
  epochsRun: number;
  trainMs: number;
}

/**
 * Trains one model and readies it on the validation split: the calibration the contract names is
 * fitted on the model's scores, then the decision threshold is chosen on the calibrated scores by
 * the contract's objective. The holdout is not read.
 */
export async function fitOnValidation(
  data: FitData,
  params: ModelParams,
  signs: ArrayLike<number> | undefined,
  now: () => number = Date.now,
): Promise<ValidatedFit> {
  const { decision } = data;
  const epochs: FitOutcome['epochs'] = [];
  const t0 = performance.now();
  const trained = await trainModel(
    { x: data.train.x, y: data.train.y, valX: data.validation.x, valY: data.validation.y, width: data.width },
    params,
    (m) => epochs.push({ ...m, at: now() }),
    signs,
  );
  const trainMs = performance.now() - t0;
  const rawValidation = trained.scores(data.validation.x);
  const calibration = fitCalibration(rawValidation, data.validation.y, decision.calibration);
  const model = calibratedModel(trained, calibration);
  const valScores = model.scores(data.validation.x);
  const threshold = chooseThresholdFor(valScores, data.validation.y, decision.threshold);
  return {
    trained,
    model,
    calibration,
    threshold,
    validation: binaryMetrics(valScores, data.validation.y, threshold),
    uncalibratedValidationLogLoss: binaryMetrics(rawValidation, data.validation.y).log_loss,
    epochs,
    bestEpoch: trained.bestEpoch,
    epochsRun: trained.epochsRun,
    trainMs,
  };
}

/**
 * Measures a readied model on the holdout: every metric, curve and segment uses the calibrated
 * scores and the threshold chosen on validation; the holdout decides nothing.
 */
export function evaluateOnHoldout(data: PreparedData, fit: ValidatedFit): FitOutcome {
  const { model, threshold } = fit;
  const rawHoldout = fit.trained.scores(data.holdout.x);
  const holdoutScores = model.scores(data.holdout.x);
  return {
    model,
    calibration: fit.calibration,
    uncalibratedLogLoss: {
      validation: fit.uncalibratedValidationLogLoss,
      holdout: binaryMetrics(rawHoldout, data.holdout.y).log_loss,
    },
    epochs: fit.epochs,
    bestEpoch: fit.bestEpoch,
    epochsRun: fit.epochsRun,
    trainMs: fit.trainMs,
    threshold,
    validation: fit.validation,
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

/** Trains one model on prepared data, readies it on validation and measures it on the holdout. */
export async function fitAndEvaluate(
  data: PreparedData,
  params: ModelParams,
  now: () => number = Date.now,
): Promise<FitOutcome> {
  const fit = await fitOnValidation(data, params, data.profile.signs(data.state.outputs), now);
  return evaluateOnHoldout(data, fit);
}
