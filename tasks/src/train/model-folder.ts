import { type Row, type TransformState, transformRow } from '../features/transform.js';
import { CALIBRATION_FILE, type Calibration } from '../models/calibration.js';
import { pickSampleRows, SERVING_SAMPLE_FILE, SERVING_SAMPLE_FORMAT } from '../models/serving-sample.js';
import type { TrainedModel } from '../models/trained-model.js';
import { classifierFolderFiles } from './mlmodel.js';

/**
 * A registered version's folder, by file name in upload order: the model's own files, the fitted
 * transform, the calibration serving applies, a holdout sample scored by the model's one-row path
 * (the API and the pyfunc loader re-score it on load and refuse a version that disagrees), then the
 * python_function loader package, its environment, an input example and, last, the MLmodel naming
 * both flavors. `model` scores calibrated probabilities (calibratedModel), as serving will.
 */
export async function modelFolderFiles(m: {
  model: TrainedModel;
  state: TransformState;
  calibration: Calibration;
  /** Raw holdout rows: the serving sample and the input example come from them. */
  holdout: readonly Row[];
  modelId: string;
  runId: string;
  createdAt: Date;
}): Promise<Record<string, string | Buffer>> {
  const rows = pickSampleRows(m.holdout, m.state);
  const predictions = rows.map((row) => m.model.scoreOne(transformRow(m.state, row)));
  return {
    ...(await m.model.files()),
    'transform.json': `${JSON.stringify(m.state, null, 2)}\n`,
    [CALIBRATION_FILE]: `${JSON.stringify(m.calibration)}\n`,
    [SERVING_SAMPLE_FILE]: JSON.stringify({ format: SERVING_SAMPLE_FORMAT, rows, predictions }),
    ...(await classifierFolderFiles({
      state: m.state,
      kind: m.model.kind,
      modelId: m.modelId,
      runId: m.runId,
      createdAt: m.createdAt,
      exampleRows: m.holdout,
    })),
  };
}
