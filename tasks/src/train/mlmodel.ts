import type { TransformState } from '../features/transform.js';

/**
 * The `MLmodel` file that makes MLflow's UI show the artifact folder as a model, with a signature
 * in MLflow's column-spec form: the raw fields the API takes, and the probability it returns.
 */
export function mlmodelYaml(state: TransformState, modelId: string, runId: string, createdAt: Date): string {
  const inputs = [
    ...state.numeric.map((n) => ({ type: 'double', name: n.name, required: false })),
    ...state.categorical.map((c) => ({ type: 'string', name: c.name, required: true })),
  ];
  const outputs = [{ type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 1] } }];
  return [
    'artifact_path: model',
    'flavors:',
    '  tfjs:',
    '    format: layers-model',
    '    model_file: model.json',
    '    transform_file: transform.json',
    `model_id: ${modelId}`,
    `run_id: ${runId}`,
    `utc_time_created: '${createdAt.toISOString().replace('T', ' ').replace('Z', '')}'`,
    'signature:',
    `  inputs: '${JSON.stringify(inputs)}'`,
    `  outputs: '${JSON.stringify(outputs)}'`,
    '',
  ].join('\n');
}
