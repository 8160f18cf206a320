import { DriftwoodError } from '../errors.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { ModelVersion } from '../mlflow/types.js';
import { loadModelFiles, type ModelFiles } from '../models/artifact.js';
import { initTf, type tf } from '../models/tf.js';
import { HOUR_MS } from '../time.js';
import { type Candle, validateForecastCandles } from './candles.js';
import { predictScaled } from './lstm.js';
import {
  FORECAST_STATE_FILE,
  type ForecastState,
  parseForecastState,
  scaleInputs,
  unscaleTarget,
} from './state.js';
import { FEATURE_COUNT, windowInputs } from './windows.js';

export { type Candle, type Candle as ForecastCandle, validateForecastCandles } from './candles.js';
export { FORECAST_STATE_FILE, type ForecastState, parseForecastState } from './state.js';

/** A forecast model as serving holds it: the TF.js model and the fitted state saved with it. */
export interface ForecastModel {
  model: tf.LayersModel;
  state: ForecastState;
  dispose(): void;
}

/** Builds a ForecastModel from its artifact files (model.json, weights.bin, forecast_state.json). */
export async function loadForecastModel(
  files: ModelFiles & { state: string | Buffer },
): Promise<ForecastModel> {
  let raw: unknown;
  try {
    raw = JSON.parse(files.state.toString());
  } catch {
    throw new DriftwoodError('MODEL_INVALID', 'forecast_state.json is not valid JSON');
  }
  const state = parseForecastState(raw);
  const model = await loadModelFiles(files);
  const shape = model.inputs[0]?.shape;
  if (!shape || shape[1] !== state.windowHours || shape[2] !== FEATURE_COUNT) {
    model.dispose();
    throw new DriftwoodError(
      'MODEL_INVALID',
      `the model takes windows of shape ${JSON.stringify(shape)} but the state describes [${state.windowHours}, ${FEATURE_COUNT}]`,
    );
  }
  return { model, state, dispose: () => model.dispose() };
}

/** A registered version's forecast model, through MLflow's artifact proxy. */
export async function loadForecastVersion(mlflow: MlflowClient, mv: ModelVersion): Promise<ForecastModel> {
  await initTf();
  const root = await mlflow.resolveVersionArtifacts(mv);
  const [modelJson, weights, state] = await Promise.all([
    mlflow.downloadArtifact(root, 'model.json'),
    mlflow.downloadArtifact(root, 'weights.bin'),
    mlflow.downloadArtifact(root, FORECAST_STATE_FILE),
  ]);
  return loadForecastModel({ modelJson: modelJson.toString('utf8'), weights, state });
}

/** Candles a forecast needs: the window's hours plus the one before its first return. */
export const candlesNeeded = (state: Pick<ForecastState, 'windowHours'>): number => state.windowHours + 1;

export interface PriceForecast {
  /** Open time of the last candle used (ISO). */
  lastOpenTime: string;
  /** Open time of the hour whose close is forecast (ISO). */
  forecastOpenTime: string;
  horizonHours: number;
  lastClose: number;
  /** Forecast log return of the close over the horizon. */
  logReturn: number;
  /** Forecast close price. */
  price: number;
}

/**
 * The close `horizonHours` after the last candle, from the last windowHours + 1 consecutive hourly
 * candles (validate a request's rows with validateForecastCandles first). Pure given the loaded model: the
 * same scaling and window code as training.
 */
export function forecastNext(m: ForecastModel, candles: readonly Candle[]): PriceForecast {
  return forecastWindows(m, [candles])[0] as PriceForecast;
}

/** forecastNext for many candle sequences at once (one model call). */
export function forecastWindows(
  m: ForecastModel,
  sequences: readonly (readonly Candle[])[],
): PriceForecast[] {
  const need = candlesNeeded(m.state);
  const windows = sequences.map((candles, i) => {
    if (candles.length < need)
      throw new DriftwoodError(
        'SCHEMA_MISMATCH',
        `candles: expected at least ${need} consecutive hourly candles, got ${candles.length}`,
        { field: sequences.length > 1 ? `sequences[${i}]` : 'candles' },
      );
    const tail = candles.slice(-need);
    tail.forEach((c, k) => {
      const prev = tail[k - 1];
      if (prev && c.openTime !== prev.openTime + HOUR_MS)
        throw new DriftwoodError(
          'SCHEMA_MISMATCH',
          `candles: the last ${need} candles must be consecutive hours`,
          {
            field: 'candles',
          },
        );
    });
    return { x: windowInputs(tail, need - 1, m.state.windowHours), last: tail[need - 1] as Candle };
  });
  const out = predictScaled(m.model, scaleInputs(m.state, windows), m.state.windowHours, FEATURE_COUNT);
  return windows.map((w, i) => {
    const logReturn = unscaleTarget(m.state, out[i] as number);
    return {
      lastOpenTime: new Date(w.last.openTime).toISOString(),
      forecastOpenTime: new Date(w.last.openTime + m.state.horizonHours * HOUR_MS).toISOString(),
      horizonHours: m.state.horizonHours,
      lastClose: w.last.close,
      logReturn,
      price: w.last.close * Math.exp(logReturn),
    };
  });
}

/** Validates raw request rows and forecasts from them: the error names the row and field. */
export function forecastFromRows(m: ForecastModel, rows: unknown): PriceForecast {
  return forecastNext(m, validateForecastCandles(rows, candlesNeeded(m.state)));
}
