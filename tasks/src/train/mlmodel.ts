import type { TransformState } from '../features/transform.js';
import type { ModelKind } from '../models/params.js';
import { GBDT_FILE } from '../models/trained-model.js';

type ColSpec = Record<string, unknown>;

/**
 * An `MLmodel` file: MLflow's UI shows the artifact folder as a model with its signature (MLflow's
 * column-spec form). `flavor` names the model's own format and `files` its entries (model file,
 * fitted state, …).
 */
export function mlmodelFile(m: {
  flavor: { name: string; format: string };
  files: Record<string, string | number>;
  modelId: string;
  runId: string;
  createdAt: Date;
  inputs: ColSpec[];
  outputs: ColSpec[];
}): string {
  return [
    'artifact_path: model',
    'flavors:',
    `  ${m.flavor.name}:`,
    `    format: ${m.flavor.format}`,
    ...Object.entries(m.files).map(([k, v]) => `    ${k}: ${v}`),
    `model_id: ${m.modelId}`,
    `run_id: ${m.runId}`,
    `utc_time_created: '${m.createdAt.toISOString().replace('T', ' ').replace('Z', '')}'`,
    'signature:',
    `  inputs: '${JSON.stringify(m.inputs)}'`,
    `  outputs: '${JSON.stringify(m.outputs)}'`,
    '',
  ].join('\n');
}

/** A classifier's MLmodel: the raw fields the API takes, and the probability it returns. */
export function mlmodelYaml(
  state: TransformState,
  kind: ModelKind,
  modelId: string,
  runId: string,
  createdAt: Date,
): string {
  const trees = kind === 'gbdt';
  return mlmodelFile({
    flavor: trees
      ? { name: 'driftwood_gbdt', format: 'driftwood-gbdt' }
      : { name: 'tfjs', format: 'layers-model' },
    files: { model_file: trees ? GBDT_FILE : 'model.json', transform_file: 'transform.json' },
    modelId,
    runId,
    createdAt,
    inputs: [
      ...state.numeric.map((n) => ({ type: 'double', name: n.name, required: false })),
      ...state.categorical.map((c) => ({ type: 'string', name: c.name, required: true })),
    ],
    outputs: [{ type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 1] } }],
  });
}
