import { HOUR_MS } from '../../time.js';

/**
 * The btc dataset's unit of data, an hourly OHLCV candle, and the rules a candle must keep on its
 * own: the price source's extract, the forecast steps and the forecast API all read these.
 */

/** The columns of a candle table and file, in order. */
export const CANDLE_COLUMNS = ['open_time', 'open', 'high', 'low', 'close', 'volume'] as const;

/** One hourly OHLCV candle; `openTime` is the start of its hour in epoch milliseconds (UTC). */
export interface Candle {
  openTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** Why a candle is not landed; the words of the reason file and the extract report. */
export type CandleRule =
  | 'not_on_hour'
  | 'non_positive_price'
  | 'negative_volume'
  | 'high_below_low'
  | 'open_outside_range'
  | 'close_outside_range'
  | 'zero_volume'
  | 'conflicting_duplicate'
  | 'non_monotonic';

export type CandleColumn = 'open_time' | 'open' | 'high' | 'low' | 'close' | 'volume';

/** The rule a candle breaks, the column at fault (for a range rule, the value outside the range) and why. */
export interface CandleProblem {
  rule: CandleRule;
  column: CandleColumn;
  detail: string;
}

/** An open time as the reports write it: `2026-11-20T04:00:00Z`. */
export const isoHour = (t: number): string => new Date(t).toISOString().replace('.000Z', 'Z');

/**
 * The first rule a candle breaks on its own, the column at fault and the values that break it. The
 * extract step quarantines by it and the forecast API refuses a request's candle by it, so both
 * name the same column for the same candle.
 */
export function candleRule(c: Candle, policy: { zeroVolume: 'keep' | 'drop' }): CandleProblem | undefined {
  if (c.openTime % HOUR_MS !== 0)
    return {
      rule: 'not_on_hour',
      column: 'open_time',
      detail: `open_time ${isoHour(c.openTime)} is not on the hour`,
    };
  for (const col of ['open', 'high', 'low', 'close'] as const)
    if (c[col] <= 0)
      return { rule: 'non_positive_price', column: col, detail: `${col} ${c[col]} is not above 0` };
  if (c.volume < 0)
    return { rule: 'negative_volume', column: 'volume', detail: `volume ${c.volume} is below 0` };
  if (c.high < c.low)
    return { rule: 'high_below_low', column: 'high', detail: `high ${c.high} is below low ${c.low}` };
  if (c.open < c.low || c.open > c.high)
    return {
      rule: 'open_outside_range',
      column: 'open',
      detail: `open ${c.open} is outside [low ${c.low}, high ${c.high}]`,
    };
  if (c.close < c.low || c.close > c.high)
    return {
      rule: 'close_outside_range',
      column: 'close',
      detail: `close ${c.close} is outside [low ${c.low}, high ${c.high}]`,
    };
  if (c.volume === 0 && policy.zeroVolume === 'drop')
    return { rule: 'zero_volume', column: 'volume', detail: 'volume 0 (policy: drop)' };
  return undefined;
}
