import type { TransformState } from '../features/transform.js';

type ColSpec = Record<string, unknown>;

/**
 * An `MLmodel` file: MLflow's UI shows the artifact folder as a model with its signature (MLflow's
 * column-spec form). `files` are the tfjs flavour's own entries (model file, fitted state, …).
 */
export function mlmodelFile(m: {
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
    '  tfjs:',
    '    format: layers-model',
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
export function mlmodelYaml(state: TransformState, modelId: string, runId: string, createdAt: Date): string {
  return mlmodelFile({
    files: { model_file: 'model.json', transform_file: 'transform.json' },
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
