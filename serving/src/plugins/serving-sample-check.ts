import {
  DriftwoodError,
  isDriftwoodError,
  type MlflowClient,
  type ModelVersion,
  parseServingSample,
  probeProblem,
  probeRows,
  SERVING_SAMPLE_FILE,
  type ServingModel,
  sampleProblem,
} from '@driftwood/tasks';

export type SampleCheck = 'holdout_sample' | 'probe';

/**
 * Whether a loaded version may answer: it must reproduce the holdout sample training saved with it
 * (every answer a probability within 1e-6 of the recorded one). A version trained before samples
 * were recorded has none; it gets the probe instead (the empty row and one row per category of every
 * categorical input, each answering a probability), and says so. Throws MODEL_INVALID when refused.
 */
export async function checkServingSample(
  mlflow: MlflowClient,
  mv: ModelVersion,
  model: ServingModel,
): Promise<SampleCheck> {
  const where = `version ${mv.version}`;
  const text = await readSample(mlflow, mv);
  if (text === undefined) {
    const problem = probeProblem(probeRows(model.transform), (row) => model.score(row));
    if (problem)
      throw new DriftwoodError('MODEL_INVALID', `${where} (no ${SERVING_SAMPLE_FILE}): ${problem}`);
    return 'probe';
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DriftwoodError('MODEL_INVALID', `${where}: ${SERVING_SAMPLE_FILE} is not JSON`);
  }
  const sample = parseServingSample(json, where);
  const problem = sampleProblem(sample, (row) => model.score(row));
  if (problem) throw new DriftwoodError('MODEL_INVALID', `${where} cannot score its own holdout: ${problem}`);
  return 'holdout_sample';
}

/** The sample's text, or undefined when the version's files hold none. */
async function readSample(mlflow: MlflowClient, mv: ModelVersion): Promise<string | undefined> {
  const root = await mlflow.resolveVersionArtifacts(mv);
  try {
    return (await mlflow.downloadArtifact(root, SERVING_SAMPLE_FILE)).toString('utf8');
  } catch (err) {
    if (isDriftwoodError(err) && err.details.status === 404) return undefined;
    throw err;
  }
}
