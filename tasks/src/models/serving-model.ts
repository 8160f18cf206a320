import { DriftwoodError } from '../errors.js';
import { parseTransformState, type Row, type TransformState, transformRow } from '../features/transform.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { ModelVersion } from '../mlflow/types.js';
import { loadModelFiles } from './artifact.js';
import { compileDenseChain } from './dense-fast-path.js';
import { initTf, tf } from './tf.js';

/** A model ready to answer: its identity, its fitted transform and a one-row scorer. */
export interface ServingModel {
  name: string;
  version: string;
  alias: string;
  runId: string | undefined;
  modelId: string | undefined;
  transform: TransformState;
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
  const [modelJson, weights, transformJson] = await Promise.all([
    mlflow.downloadArtifact(root, 'model.json'),
    mlflow.downloadArtifact(root, 'weights.bin'),
    mlflow.downloadArtifact(root, 'transform.json'),
  ]);
  let transform: TransformState;
  try {
    transform = parseTransformState(JSON.parse(transformJson.toString('utf8')));
  } catch (err) {
    throw new DriftwoodError(
      'MODEL_INVALID',
      `version ${mv.version}: transform.json is unusable (${(err as Error).message})`,
    );
  }
  const model = await loadModelFiles({ modelJson: modelJson.toString('utf8'), weights });
  const inputShape = model.inputs[0]?.shape;
  if (!inputShape || inputShape[1] !== transform.outputs.length) {
    model.dispose();
    throw new DriftwoodError(
      'MODEL_INVALID',
      `version ${mv.version}: model takes ${inputShape?.[1]} inputs but the transform makes ${transform.outputs.length}`,
    );
  }
  const fast = compileDenseChain(model);
  const width = transform.outputs.length;
  const vector = (row: Row): Float32Array => transformRow(transform, row);
  // Scoring is synchronous, so one input buffer serves every row.
  const input = new Float32Array(width);
  const score = (row: Row): number => {
    const x = transformRow(transform, row, input);
    if (fast) return fast(x)[0] as number;
    return tf.tidy(() => (model.predict(tf.tensor2d(x, [1, width])) as tf.Tensor).dataSync()[0] as number);
  };
  const warm = score({});
  if (!Number.isFinite(warm) || warm < 0 || warm > 1) {
    model.dispose();
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
    loadedAt: Date.now(),
    vector,
    score,
    dispose: () => model.dispose(),
  };
}
