import { DriftwoodError, isDriftwoodError } from '../errors.js';
import { parseTransformState, type Row, type TransformState, transformRow } from '../features/transform.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { ModelVersion } from '../mlflow/types.js';
import { applyCalibration, CALIBRATION_FILE, type Calibration, parseCalibration } from './calibration.js';
import { initTf } from './tf.js';
import { loadScorer, versionKind } from './trained-model.js';

/** A model ready to answer: its identity, its fitted transform and a one-row scorer. */
export interface ServingModel {
  name: string;
  version: string;
  alias: string;
  runId: string | undefined;
  modelId: string | undefined;
  transform: TransformState;
  /** Applied to the model's score; `none` for versions registered before calibration. */
  calibration: Calibration;
  loadedAt: number;
  /** The model-ready vector for one raw row: the same `transformRow` training ran. */
  vector(row: Row): Float32Array;
  score(row: Row): number;
  dispose(): void;
}

/**
 * Loads the version behind a registry alias from MLflow (files through the artifact proxy), rebuilds
 * the fitted transform and checks the model with a warm-up prediction before it may take traffic.
 */
export async function loadModelByAlias(
  mlflow: MlflowClient,
  name: string,
  alias: string,
): Promise<ServingModel> {
  const mv = await mlflow.getVersionByAlias(name, alias);
  if (!mv) throw new DriftwoodError('DATA_MISSING', `model '${name}' has no version with alias '${alias}'`);
  return loadModelVersion(mlflow, mv, alias);
}

export async function loadModelVersion(
  mlflow: MlflowClient,
  mv: ModelVersion,
  alias: string,
): Promise<ServingModel> {
  await initTf();
  const root = await mlflow.resolveVersionArtifacts(mv);
  const download = (file: string) => mlflow.downloadArtifact(root, file);
  const [scorer, transformJson, calibrationJson] = await Promise.all([
    loadScorer(versionKind(mv), mv.version, download),
    download('transform.json'),
    optional(download(CALIBRATION_FILE)),
  ]);
  let calibration: Calibration = { method: 'none' };
  if (calibrationJson !== undefined) {
    try {
      calibration = parseCalibration(JSON.parse(calibrationJson.toString('utf8')));
    } catch (err) {
      scorer.dispose();
      throw new DriftwoodError('MODEL_INVALID', `version ${mv.version}: ${(err as Error).message}`);
    }
  }
  let transform: TransformState;
  try {
    transform = parseTransformState(JSON.parse(transformJson.toString('utf8')));
  } catch (err) {
    scorer.dispose();
    throw new DriftwoodError(
      'MODEL_INVALID',
      `version ${mv.version}: transform.json is unusable (${(err as Error).message})`,
    );
  }
  if (scorer.width !== transform.outputs.length) {
    scorer.dispose();
    throw new DriftwoodError(
      'MODEL_INVALID',
      `version ${mv.version}: model takes ${scorer.width} inputs but the transform makes ${transform.outputs.length}`,
    );
  }
  const width = transform.outputs.length;
  const vector = (row: Row): Float32Array => transformRow(transform, row);
  // Scoring is synchronous, so one input buffer serves every row.
  const input = new Float32Array(width);
  const score =
    calibration.method === 'none'
      ? (row: Row): number => scorer.scoreOne(transformRow(transform, row, input))
      : (row: Row): number =>
          applyCalibration(calibration, scorer.scoreOne(transformRow(transform, row, input)));
  const warm = score({});
  if (!Number.isFinite(warm) || warm < 0 || warm > 1) {
    scorer.dispose();
    throw new DriftwoodError(
      'MODEL_INVALID',
      `version ${mv.version}: warm-up prediction is ${warm}, not a probability`,
    );
  }
  return {
    name: mv.name,
    version: mv.version,
    alias,
    runId: mv.run_id,
    modelId: mv.model_id,
    transform,
    calibration,
    loadedAt: Date.now(),
    vector,
    score,
    dispose: () => scorer.dispose(),
  };
}

/** A file versions registered before it existed do not have (404): undefined, scored as before. */
async function optional(download: Promise<Buffer>): Promise<Buffer | undefined> {
  try {
    return await download;
  } catch (err) {
    if (isDriftwoodError(err) && err.details.status === 404) return undefined;
    throw err;
  }
}
