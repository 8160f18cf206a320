import { DriftwoodError } from '../errors.js';
import { FEATURE_COUNT, WINDOW_FEATURES, type Window, type WindowShape } from './windows.js';

/**
 * The fitted state of a forecast model, saved as JSON next to it: the window shape and the standard
 * scaling of each feature and of the target, fitted on the training windows only.
 */
export interface ForecastState {
  kind: 'time_windows';
  version: 1;
  features: string[];
  windowHours: number;
  horizonHours: number;
  movingAverageHours: number;
  mean: number[];
  std: number[];
  target: { mean: number; std: number };
  /** Open time of the last candle the training windows read. */
  trainedThrough: string;
}

export const FORECAST_STATE_FILE = 'forecast_state.json';

/** A spread this small is a constant feature: scale by 1 rather than blow it up. */
const MIN_STD = 1e-12;

export function fitScaling(
  train: readonly Pick<Window, 'x' | 'y' | 'targetTime'>[],
  shape: WindowShape & { movingAverageHours: number },
): ForecastState {
  if (train.length === 0) throw new DriftwoodError('DATA_MISSING', 'scaling: no training windows to fit on');
  const sum = new Float64Array(FEATURE_COUNT);
  const sq = new Float64Array(FEATURE_COUNT);
  let count = 0;
  for (const w of train)
    for (let k = 0; k < w.x.length; k += FEATURE_COUNT) {
      for (let f = 0; f < FEATURE_COUNT; f++) {
        const v = w.x[k + f] as number;
        sum[f] = (sum[f] as number) + v;
        sq[f] = (sq[f] as number) + v * v;
      }
      count++;
    }
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sq, (s, f) => {
    const sd = Math.sqrt(Math.max(0, s / count - (mean[f] as number) ** 2));
    return sd < MIN_STD ? 1 : sd;
  });
  const ys = train.map((w) => w.y);
  const yMean = ys.reduce((a, b) => a + b, 0) / ys.length;
  const ySd = Math.sqrt(ys.reduce((a, b) => a + (b - yMean) ** 2, 0) / ys.length);
  return {
    kind: 'time_windows',
    version: 1,
    features: [...WINDOW_FEATURES],
    windowHours: shape.windowHours,
    horizonHours: shape.horizonHours,
    movingAverageHours: shape.movingAverageHours,
    mean,
    std,
    target: { mean: yMean, std: ySd < MIN_STD ? 1 : ySd },
    trainedThrough: new Date(Math.max(...train.map((w) => w.targetTime))).toISOString(),
  };
}

/** The model's input: windows' features standardised with the state, one after another. */
export function scaleInputs(state: ForecastState, windows: readonly Pick<Window, 'x'>[]): Float32Array {
  const width = state.windowHours * FEATURE_COUNT;
  const out = new Float32Array(windows.length * width);
  windows.forEach((w, i) => {
    if (w.x.length !== width)
      throw new DriftwoodError(
        'MODEL_INVALID',
        `window ${i} has ${w.x.length} values, the state expects ${width}`,
      );
    for (let k = 0; k < width; k++) {
      const f = k % FEATURE_COUNT;
      out[i * width + k] = ((w.x[k] as number) - (state.mean[f] as number)) / (state.std[f] as number);
    }
  });
  return out;
}

export const scaleTarget = (state: ForecastState, y: number): number =>
  (y - state.target.mean) / state.target.std;
export const unscaleTarget = (state: ForecastState, z: number): number =>
  z * state.target.std + state.target.mean;

/** Reads a saved state back, refusing one that this code cannot use. */
export function parseForecastState(raw: unknown): ForecastState {
  const s = raw as Partial<ForecastState> | null;
  const bad = (what: string): never => {
    throw new DriftwoodError('MODEL_INVALID', `${FORECAST_STATE_FILE}: ${what}`);
  };
  if (typeof s !== 'object' || s === null) return bad('expected an object');
  if (s.kind !== 'time_windows' || s.version !== 1) bad(`unknown kind/version ${s.kind}/${s.version}`);
  if (JSON.stringify(s.features) !== JSON.stringify(WINDOW_FEATURES))
    bad(`features ${JSON.stringify(s.features)} differ from ${JSON.stringify(WINDOW_FEATURES)}`);
  for (const k of ['windowHours', 'horizonHours', 'movingAverageHours'] as const)
    if (!Number.isInteger(s[k]) || (s[k] as number) < 1) bad(`${k} must be a positive whole number`);
  for (const k of ['mean', 'std'] as const)
    if (!Array.isArray(s[k]) || s[k].length !== FEATURE_COUNT || !s[k].every(Number.isFinite))
      bad(`${k} must hold ${FEATURE_COUNT} finite numbers`);
  if (!s.std?.every((v) => v > 0)) bad('std must be positive');
  if (!s.target || !Number.isFinite(s.target.mean) || !(s.target.std > 0))
    bad('target scaling is missing or invalid');
  if (typeof s.trainedThrough !== 'string') bad('trainedThrough is missing');
  return s as ForecastState;
}
