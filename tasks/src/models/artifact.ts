import { DriftwoodError } from '../errors.js';
import { tf } from './tf.js';

/** A TF.js layers model as files: `model.json` (topology + weights manifest) and `weights.bin`. */
export interface ModelFiles {
  modelJson: string;
  weights: Buffer;
}

/** Serialises a model without tfjs-node's file:// handler, which the wasm backend lacks. */
export async function saveModelFiles(model: tf.LayersModel): Promise<ModelFiles> {
  let files: ModelFiles | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData;
      const joined =
        data === undefined
          ? new ArrayBuffer(0)
          : Array.isArray(data)
            ? tf.io.concatenateArrayBuffers(data)
            : data;
      files = {
        modelJson: JSON.stringify({
          format: 'layers-model',
          generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
          convertedBy: null,
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
        }),
        weights: Buffer.from(joined),
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!files) throw new DriftwoodError('MODEL_INVALID', 'TF.js did not hand over the model artifacts');
  return files;
}

export async function loadModelFiles(files: ModelFiles): Promise<tf.LayersModel> {
  let parsed: { modelTopology?: unknown; weightsManifest?: { weights: tf.io.WeightsManifestEntry[] }[] };
  try {
    parsed = JSON.parse(files.modelJson);
  } catch {
    throw new DriftwoodError('MODEL_INVALID', 'model.json is not valid JSON');
  }
  if (!parsed.modelTopology || !Array.isArray(parsed.weightsManifest)) {
    throw new DriftwoodError('MODEL_INVALID', 'model.json has no modelTopology or weightsManifest');
  }
  const weightSpecs = parsed.weightsManifest.flatMap((g) => g.weights);
  // A Node Buffer may share a larger pool: hand TF.js an ArrayBuffer of exactly its bytes.
  const weightData = files.weights.buffer.slice(
    files.weights.byteOffset,
    files.weights.byteOffset + files.weights.byteLength,
  ) as ArrayBuffer;
  try {
    return await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: parsed.modelTopology as tf.io.ModelJSON['modelTopology'],
        weightSpecs,
        weightData,
      }),
    );
  } catch (err) {
    throw new DriftwoodError(
      'MODEL_INVALID',
      `cannot load the TF.js model: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  }
}
