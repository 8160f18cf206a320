import type { ModelFiles } from '../models/artifact.js';
import type { tf } from '../models/tf.js';
import { HOUR_MS } from '../time.js';
import {
  INPUT_EXAMPLE_FILE,
  mlmodelFile,
  PYFUNC_CODE_DIR,
  PYFUNC_PACKAGE,
  PYTHON_VERSION,
  pyfuncCodeFiles,
  pyfuncEnvFiles,
  SERVING_INPUT_EXAMPLE_FILE,
} from '../train/mlmodel.js';
import { CANDLE_COLUMNS, type Candle } from './candles.js';
import { forecastWindows } from './predict.js';
import { FORECAST_STATE_FILE, type ForecastState } from './state.js';

/** Candles with their recorded forecasts: the pyfunc loader re-scores them on load. */
export const FORECAST_SAMPLE_FILE = 'forecast-sample.json';
export const FORECAST_SAMPLE_FORMAT = 'driftwood-forecast-sample/1';
/** Forecasts the sample holds: enough windows to catch a wrong gate order or scaling. */
const SAMPLE_WINDOWS = 24;

/** A candle as `/v1/forecast`, the pyfunc flavor and the candles table take it: open_time in epoch ms. */
export const candleRow = (c: Candle) => ({
  open_time: c.openTime,
  open: c.open,
  high: c.high,
  low: c.low,
  close: c.close,
  volume: c.volume,
});

/**
 * The newest run of consecutive hourly candles, at most `max` long: windows never span a gap, so the
 * sample is read from the end of the (test-period) candles, where a run of window_hours + 1 exists.
 */
export function newestConsecutiveRun(candles: readonly Candle[], max: number): Candle[] {
  let start = candles.length - 1;
  while (
    start > 0 &&
    candles.length - start < max &&
    (candles[start] as Candle).openTime - (candles[start - 1] as Candle).openTime === HOUR_MS
  )
    start--;
  return candles.slice(Math.max(start, 0));
}

/** The pyfunc's signature: the candle fields in, the API's forecast fields out. */
const INPUTS = CANDLE_COLUMNS.map((name) => ({
  type: name === 'open_time' ? 'long' : 'double',
  name,
  required: true,
}));
const OUTPUTS = [
  { type: 'string', name: 'last_open_time', required: true },
  { type: 'string', name: 'forecast_open_time', required: true },
  { type: 'long', name: 'horizon_hours', required: true },
  { type: 'double', name: 'last_close', required: true },
  { type: 'double', name: 'log_return', required: true },
  { type: 'double', name: 'price', required: true },
];

/**
 * A forecast version's folder, by file name in upload order: the TF.js LSTM, its fitted state, a
 * sample of candles with the log returns this model forecasts for them (the API's path), the
 * python_function loader package and its environment, an input example (one window's candles), and
 * last the MLmodel naming both flavors. The pyfunc takes the candles `/v1/forecast` takes, as a
 * DataFrame, and answers the API's forecast fields for every window in it (python/driftwood_pyfunc/forecast.py).
 */
export async function forecastFolderFiles(m: {
  model: tf.LayersModel;
  files: ModelFiles;
  state: ForecastState;
  /** Candles to draw the sample and the input example from (the test period's). */
  candles: readonly Candle[];
  modelId: string;
  runId: string;
  createdAt: Date;
}): Promise<Record<string, string | Buffer>> {
  const need = m.state.windowHours + 1;
  const run = newestConsecutiveRun(m.candles, need + SAMPLE_WINDOWS - 1);
  const sequences = run.length >= need ? run.slice(need - 1).map((_, k) => run.slice(0, need + k)) : [];
  const forecasts = forecastWindows({ model: m.model, state: m.state, dispose: () => undefined }, sequences);
  const example = {
    columns: [...CANDLE_COLUMNS],
    data: run.slice(0, need).map((c) => Object.values(candleRow(c))),
  };
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  return {
    'model.json': m.files.modelJson,
    'weights.bin': m.files.weights,
    [FORECAST_STATE_FILE]: json(m.state),
    ...(sequences.length > 0
      ? {
          [FORECAST_SAMPLE_FILE]: JSON.stringify({
            format: FORECAST_SAMPLE_FORMAT,
            candles: run.map(candleRow),
            log_returns: forecasts.map((f) => f.logReturn),
          }),
          [INPUT_EXAMPLE_FILE]: `${JSON.stringify(example)}\n`,
          [SERVING_INPUT_EXAMPLE_FILE]: json({ dataframe_split: example }),
        }
      : {}),
    ...(await pyfuncCodeFiles()),
    ...pyfuncEnvFiles(),
    MLmodel: mlmodelFile({
      flavor: { name: 'tfjs', format: 'layers-model' },
      files: {
        model_file: 'model.json',
        state_file: FORECAST_STATE_FILE,
        window_hours: m.state.windowHours,
        horizon_hours: m.state.horizonHours,
      },
      modelId: m.modelId,
      runId: m.runId,
      createdAt: m.createdAt,
      inputs: INPUTS,
      outputs: OUTPUTS,
      pyfunc: { loaderModule: PYFUNC_PACKAGE, code: PYFUNC_CODE_DIR, pythonVersion: PYTHON_VERSION },
      ...(sequences.length > 0
        ? { inputExample: { file: INPUT_EXAMPLE_FILE, servingFile: SERVING_INPUT_EXAMPLE_FILE } }
        : {}),
    }),
  };
}
