import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DriftwoodError } from '../errors.js';
import type { Row, TransformState } from '../features/transform.js';
import type { ModelKind } from '../models/params.js';
import { GBDT_FILE } from '../models/trained-model.js';

type ColSpec = Record<string, unknown>;

/** MLflow's `python_function` flavor through a loader module: the package below, shipped in `code/`. */
export interface PyfuncFlavor {
  loaderModule: string;
  code: string;
  pythonVersion: string;
}

/**
 * An `MLmodel` file: MLflow's UI shows the artifact folder as a model with its signature (MLflow's
 * column-spec form). `flavor` names the model's own format and `files` its entries (model file,
 * fitted state, …). With `pyfunc`, MLflow's own tools (mlflow.pyfunc.load_model, `mlflow models
 * serve`, spark_udf) can load the folder too; `inputExample` names the example's file.
 */
export function mlmodelFile(m: {
  flavor: { name: string; format: string };
  files: Record<string, string | number>;
  modelId: string;
  runId: string;
  createdAt: Date;
  inputs: ColSpec[];
  outputs: ColSpec[];
  pyfunc?: PyfuncFlavor;
  inputExample?: { file: string; servingFile: string };
}): string {
  return [
    'artifact_path: model',
    'flavors:',
    `  ${m.flavor.name}:`,
    `    format: ${m.flavor.format}`,
    ...Object.entries(m.files).map(([k, v]) => `    ${k}: ${v}`),
    ...(m.pyfunc
      ? [
          '  python_function:',
          `    loader_module: ${m.pyfunc.loaderModule}`,
          `    code: ${m.pyfunc.code}`,
          '    env:',
          `      conda: ${CONDA_FILE}`,
          `      virtualenv: ${PYTHON_ENV_FILE}`,
          `    python_version: '${m.pyfunc.pythonVersion}'`,
        ]
      : []),
    `model_id: ${m.modelId}`,
    `run_id: ${m.runId}`,
    ...(m.inputExample
      ? [
          'saved_input_example_info:',
          `  artifact_path: ${m.inputExample.file}`,
          '  pandas_orient: split',
          `  serving_input_path: ${m.inputExample.servingFile}`,
          '  type: dataframe',
        ]
      : []),
    `utc_time_created: '${m.createdAt.toISOString().replace('T', ' ').replace('Z', '')}'`,
    'signature:',
    `  inputs: '${JSON.stringify(m.inputs)}'`,
    `  outputs: '${JSON.stringify(m.outputs)}'`,
    '',
  ].join('\n');
}

/** The raw fields a classifier takes, as MLflow column specs: the API's rules (numbers may be missing). */
function classifierInputs(state: TransformState): ColSpec[] {
  return [
    ...state.numeric.map((n) => ({ type: 'double', name: n.name, required: false })),
    ...state.categorical.map((c) => ({ type: 'string', name: c.name, required: true })),
  ];
}

function nativeFlavor(kind: ModelKind) {
  const trees = kind === 'gbdt';
  return {
    flavor: trees
      ? { name: 'driftwood_gbdt', format: 'driftwood-gbdt' }
      : { name: 'tfjs', format: 'layers-model' },
    files: { model_file: trees ? GBDT_FILE : 'model.json', transform_file: 'transform.json' },
  };
}

/** A classifier's MLmodel with its own flavor only: the raw fields the API takes, and the TF.js output. */
export function mlmodelYaml(
  state: TransformState,
  kind: ModelKind,
  modelId: string,
  runId: string,
  createdAt: Date,
): string {
  return mlmodelFile({
    ...nativeFlavor(kind),
    modelId,
    runId,
    createdAt,
    inputs: classifierInputs(state),
    outputs: [{ type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 1] } }],
  });
}

export const PYFUNC_PACKAGE = 'driftwood_pyfunc';
export const PYFUNC_CODE_DIR = 'code';
export const PYTHON_VERSION = '3.11';
export const REQUIREMENTS_FILE = 'requirements.txt';
export const PYTHON_ENV_FILE = 'python_env.yaml';
export const CONDA_FILE = 'conda.yaml';
export const INPUT_EXAMPLE_FILE = 'input_example.json';
export const SERVING_INPUT_EXAMPLE_FILE = 'serving_input_example.json';
/**
 * What the loader needs at run time, pinned as requirements/mlflow.lock pins them (a unit test keeps
 * the two equal): numpy and pandas score, MLflow loads. No TensorFlow: the package scores Dense layers
 * and trees with numpy.
 */
export const PYFUNC_REQUIREMENTS = ['mlflow==3.17.2', 'numpy==2.4.6', 'pandas==3.1.1'] as const;
const EXAMPLE_ROWS = 5;

/**
 * Where the loader package lives: `python/driftwood_pyfunc` at the repository root, found from this
 * module (tasks/src/train or tasks/dist/train); the tasks image copies it to /app/python.
 */
export function pyfuncPackageDir(): string {
  return fileURLToPath(new URL(`../../../python/${PYFUNC_PACKAGE}/`, import.meta.url));
}

/** The package's Python files, as the model folder holds them (`code/driftwood_pyfunc/<file>.py`). */
export async function pyfuncCodeFiles(dir = pyfuncPackageDir()): Promise<Record<string, string>> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => f.endsWith('.py')).sort();
  } catch (err) {
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `the python_function loader package is not at ${dir} (${(err as Error).message}): run from a checkout, or rebuild the tasks image, which copies python/${PYFUNC_PACKAGE}`,
    );
  }
  if (!names.includes('__init__.py'))
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `${dir} has no __init__.py: not the ${PYFUNC_PACKAGE} package`,
    );
  const files: Record<string, string> = {};
  for (const name of names)
    files[`${PYFUNC_CODE_DIR}/${PYFUNC_PACKAGE}/${name}`] = await readFile(path.join(dir, name), 'utf8');
  return files;
}

/** MLflow's environment files for the loader: pip requirements, a virtualenv spec and a conda spec. */
export function pyfuncEnvFiles(): Record<string, string> {
  const lines = (items: readonly string[], indent: string) => items.map((r) => `${indent}- ${r}\n`).join('');
  return {
    [REQUIREMENTS_FILE]: PYFUNC_REQUIREMENTS.map((r) => `${r}\n`).join(''),
    [PYTHON_ENV_FILE]: `python: '${PYTHON_VERSION}'\nbuild_dependencies:\n${lines(['pip'], '')}dependencies:\n- -r ${REQUIREMENTS_FILE}\n`,
    [CONDA_FILE]: `channels:\n- conda-forge\ndependencies:\n- python=${PYTHON_VERSION}\n- pip\n- pip:\n${lines(PYFUNC_REQUIREMENTS, '  ')}name: mlflow-env\n`,
  };
}

/**
 * The input example in MLflow's split orient (and its serving form, the body `mlflow models serve`
 * takes): a few rows' signature columns, a missing value as null.
 */
export function inputExampleFiles(state: TransformState, rows: readonly Row[]): Record<string, string> {
  const columns = classifierInputs(state).map((c) => c.name as string);
  const data = rows.slice(0, EXAMPLE_ROWS).map((r) => columns.map((c) => r[c] ?? null));
  return {
    [INPUT_EXAMPLE_FILE]: `${JSON.stringify({ columns, data })}\n`,
    [SERVING_INPUT_EXAMPLE_FILE]: `${JSON.stringify({ dataframe_split: { columns, data } }, null, 2)}\n`,
  };
}

/**
 * Everything a classifier's model folder holds beside the model files, transform, calibration and
 * serving sample: the loader package in `code/`, its environment, an input example, and last the
 * `MLmodel` naming them, with Driftwood's own flavor and `python_function`. The pyfunc predicts
 * the calibrated probability for each row (float64), as `/v1/predict` answers it.
 */
export async function classifierFolderFiles(m: {
  state: TransformState;
  kind: ModelKind;
  modelId: string;
  runId: string;
  createdAt: Date;
  /** Raw rows (holdout) for the input example; only the signature's columns are kept. */
  exampleRows: readonly Row[];
  packageDir?: string;
}): Promise<Record<string, string>> {
  const code = await pyfuncCodeFiles(m.packageDir);
  return {
    ...code,
    ...pyfuncEnvFiles(),
    ...inputExampleFiles(m.state, m.exampleRows),
    MLmodel: mlmodelFile({
      ...nativeFlavor(m.kind),
      modelId: m.modelId,
      runId: m.runId,
      createdAt: m.createdAt,
      inputs: classifierInputs(m.state),
      outputs: [{ type: 'tensor', 'tensor-spec': { dtype: 'float64', shape: [-1] } }],
      pyfunc: { loaderModule: PYFUNC_PACKAGE, code: PYFUNC_CODE_DIR, pythonVersion: PYTHON_VERSION },
      inputExample: { file: INPUT_EXAMPLE_FILE, servingFile: SERVING_INPUT_EXAMPLE_FILE },
    }),
  };
}
