import { DriftwoodError } from '../errors.js';

/** Price-forecast errors over a test period. */
export interface ForecastMetrics {
  rmse: number;
  mae: number;
  /** Mean absolute percentage error, in percent. */
  mape: number;
  /**
   * Share of hours whose forecast move (forecast − last close) has the sign of the actual move.
   * A forecast of no change has no direction, so it is never right unless the price did not move.
   */
  directional_accuracy: number;
  n: number;
}

/** RMSE, MAE, MAPE and directional accuracy of price forecasts against actual prices. */
export function forecastMetrics(
  actual: readonly number[],
  forecast: readonly number[],
  lastClose: readonly number[],
): ForecastMetrics {
  const n = actual.length;
  if (n === 0 || forecast.length !== n || lastClose.length !== n)
    throw new DriftwoodError(
      'DATA_MISSING',
      `metrics: need as many forecasts and last closes as actual values (got ${n}, ${forecast.length}, ${lastClose.length})`,
    );
  let se = 0;
  let ae = 0;
  let ape = 0;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const a = actual[i] as number;
    const f = forecast[i] as number;
    const last = lastClose[i] as number;
    const e = a - f;
    se += e * e;
    ae += Math.abs(e);
    ape += Math.abs(e / a);
    if (Math.sign(f - last) === Math.sign(a - last)) hits++;
  }
  return { rmse: Math.sqrt(se / n), mae: ae / n, mape: (100 * ape) / n, directional_accuracy: hits / n, n };
}

/** The persistence (naive) forecast: the next close is the last one. */
export function persistenceForecast(windows: readonly { lastClose: number }[]): number[] {
  return windows.map((w) => w.lastClose);
}

/** The moving-average forecast: the mean of the last k closes a window read. */
export function movingAverageForecast(
  windows: readonly { closes: readonly number[] }[],
  k: number,
): number[] {
  return windows.map((w, i) => {
    if (!(k >= 1 && k <= w.closes.length))
      throw new DriftwoodError(
        'USAGE',
        `moving average: k=${k} but window ${i} holds ${w.closes.length} closes`,
      );
    let s = 0;
    for (let j = w.closes.length - k; j < w.closes.length; j++) s += w.closes[j] as number;
    return s / k;
  });
}
