import { type Candle, candlesNeeded, type ForecastModel, forecastWindows } from '@driftwood/tasks';

const HOUR_MS = 3_600_000;

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

const rmse = (xs: readonly BacktestPoint[], pick: (p: BacktestPoint) => number): number =>
  Math.sqrt(xs.reduce((a, p) => a + (pick(p) - p.actual) ** 2, 0) / xs.length);

/**
 * Replays a model over the candles of its test period: every window of consecutive hours that has
 * its target hour in the data gets the model's forecast, the persistence forecast and the moving
 * average, next to the actual close. Windows across a gap are skipped, as in training.
 */
export function backtest(m: ForecastModel, candles: readonly Candle[]): Backtest {
  const need = candlesNeeded(m.state);
  const horizon = m.state.horizonHours;
  const byTime = new Map(candles.map((c) => [c.openTime, c]));
  const sequences: Candle[][] = [];
  const targets: Candle[] = [];
  for (let end = need - 1; end < candles.length; end++) {
    const seq = candles.slice(end - need + 1, end + 1);
    const consecutive = seq.every(
      (c, k) => k === 0 || c.openTime === (seq[k - 1] as Candle).openTime + HOUR_MS,
    );
    const target = byTime.get((seq.at(-1) as Candle).openTime + horizon * HOUR_MS);
    if (consecutive && target) {
      sequences.push(seq);
      targets.push(target);
    }
  }
  const forecasts = sequences.length === 0 ? [] : forecastWindows(m, sequences);
  const k = Math.min(m.state.movingAverageHours, need);
  const points = forecasts.map((f, i) => {
    const closes = (sequences[i] as Candle[]).slice(-k).map((c) => c.close);
    return {
      time: new Date((targets[i] as Candle).openTime).toISOString(),
      actual: (targets[i] as Candle).close,
      forecast: f.price,
      persistence: f.lastClose,
      movingAverage: closes.reduce((a, b) => a + b, 0) / closes.length,
    };
  });
  return {
    horizonHours: horizon,
    points,
    rmse:
      points.length === 0
        ? null
        : {
            model: rmse(points, (p) => p.forecast),
            persistence: rmse(points, (p) => p.persistence),
            movingAverage: rmse(points, (p) => p.movingAverage),
          },
  };
}
