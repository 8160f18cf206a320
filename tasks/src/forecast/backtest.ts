import type { Candle } from './candles.js';
import { forecastMetrics, movingAverageForecast, persistenceForecast } from './metrics.js';
import type { ForecastModel } from './predict.js';
import { modelPrices } from './train.js';
import { buildWindows } from './windows.js';

export interface BacktestPoint {
  /** Open time of the hour whose close is forecast (ISO). */
  time: string;
  actual: number;
  forecast: number;
  /** The close of the last hour the forecast saw: "the next hour is this hour". */
  persistence: number;
  /** Mean of the last `movingAverageHours` closes. */
  movingAverage: number;
}

export interface Backtest {
  horizonHours: number;
  points: BacktestPoint[];
  rmse: { model: number; persistence: number; movingAverage: number } | null;
}

/**
 * Replays a model over candles (a version's test period): the same windows, model prices and
 * baselines the gate scores, per hour, next to the actual close. Windows across a gap are skipped.
 */
export function backtestForecast(m: ForecastModel, candles: readonly Candle[]): Backtest {
  const { windows } = buildWindows(candles, m.state);
  const horizonHours = m.state.horizonHours;
  if (windows.length === 0) return { horizonHours, points: [], rmse: null };
  const actual = windows.map((w) => w.targetClose);
  const last = windows.map((w) => w.lastClose);
  const model = modelPrices(m.model, m.state, windows);
  const persistence = persistenceForecast(windows);
  const movingAverage = movingAverageForecast(windows, m.state.movingAverageHours);
  const rmse = (forecast: number[]) => forecastMetrics(actual, forecast, last).rmse;
  return {
    horizonHours,
    points: windows.map((w, i) => ({
      time: new Date(w.targetTime).toISOString(),
      actual: actual[i] as number,
      forecast: model[i] as number,
      persistence: persistence[i] as number,
      movingAverage: movingAverage[i] as number,
    })),
    rmse: { model: rmse(model), persistence: rmse(persistence), movingAverage: rmse(movingAverage) },
  };
}
