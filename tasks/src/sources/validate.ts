import type { Candle as ForecastCandle } from '../forecast/candles.js';
import { HOUR_MS } from '../time.js';
import type { Candle } from './candles.js';

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

export interface RejectedCandle {
  candle: Candle;
  rule: CandleRule;
  /** The column at fault (for a range rule, the value outside the range). */
  column: CandleColumn;
  detail: string;
}

/** An open time as the reports write it: `2026-11-20T04:00:00Z`. */
export const isoHour = (t: number): string => new Date(t).toISOString().replace('.000Z', 'Z');

export interface CandlePolicy {
  /** The run's data interval, [start, end): only candles opening inside it are considered. */
  interval: { start: number; end: number };
  /**
   * A candle with zero volume (no trade in the hour: an exchange halt or a thin market) is an
   * anomaly either way; `keep` lands it and lists its hour in the report, `drop` quarantines it.
   */
  zeroVolume: 'keep' | 'drop';
}

export interface CandleCheck {
  /** The candles to land, one per hour, in time order. */
  kept: Candle[];
  /** The candles to quarantine, each with its rule, in payload order. */
  rejected: RejectedCandle[];
  /** Payload rows dropped as exact copies of a kept candle (same hour, same values). */
  identicalDuplicates: number[];
  /** Payload rows opening outside the interval: another run's hours, neither landed nor quarantined. */
  outsideInterval: number[];
  /** Hours of kept candles with zero volume (with `zeroVolume: 'keep'`). */
  zeroVolumeHours: number[];
  /** Hours of the interval without a kept candle: reported, never filled in. */
  gaps: number[];
}

const sameValues = (a: Candle, b: Candle): boolean =>
  a.open === b.open && a.high === b.high && a.low === b.low && a.close === b.close && a.volume === b.volume;

/**
 * The first rule a candle breaks on its own, the column at fault and the values that break it. The
 * extract step quarantines by it and the forecast API refuses a request's candle by it, so both
 * name the same column for the same candle.
 */
export function candleRule(
  c: ForecastCandle,
  policy: CandlePolicy,
): Omit<RejectedCandle, 'candle'> | undefined {
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

/**
 * Indexes of a longest strictly increasing run of open times (patience sorting, O(n log n)): the
 * fewest candles to call out of order, so one wrong timestamp flags that candle, not every one after
 * it. Searched from the end, so that between equally long runs the candle that arrives late is the
 * one flagged ([10, 12, 11] flags 11).
 */
function longestIncreasing(times: readonly number[]): Set<number> {
  const n = times.length;
  // From the end, a longest strictly decreasing run: reversed, it is the increasing run wanted.
  const at = (k: number) => -(times[n - 1 - k] as number);
  const tails: number[] = [];
  const prev: number[] = new Array(n).fill(-1);
  for (let k = 0; k < n; k++) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (at(tails[mid] as number) < at(k)) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[k] = tails[lo - 1] as number;
    tails[lo] = k;
  }
  const keep = new Set<number>();
  for (let k = tails.at(-1) ?? -1; k >= 0; k = prev[k] as number) keep.add(n - 1 - k);
  return keep;
}

/**
 * Decides which candles of a payload land, which go to quarantine and which hours are missing.
 * Pure: no I/O, unit-tested with plain data. In order: the interval (other hours are not this run's
 * to judge), each candle's own rules, duplicates (identical copies collapse to one; conflicting
 * copies of an hour are all quarantined, since neither can be trusted), then time order (candles
 * outside a longest increasing run are quarantined), and finally the hours left without a candle.
 */
export function validateCandles(candles: readonly Candle[], policy: CandlePolicy): CandleCheck {
  const { start, end } = policy.interval;
  const out: CandleCheck = {
    kept: [],
    rejected: [],
    identicalDuplicates: [],
    outsideInterval: [],
    zeroVolumeHours: [],
    gaps: [],
  };
  const rejected = new Map<Candle, RejectedCandle>();
  const survivors: Candle[] = [];
  for (const c of candles) {
    if (c.openTime < start || c.openTime >= end) {
      out.outsideInterval.push(c.row);
      continue;
    }
    const broken = candleRule(c, policy);
    if (broken) rejected.set(c, { candle: c, ...broken });
    else survivors.push(c);
  }

  const byTime = new Map<number, Candle[]>();
  for (const c of survivors) byTime.set(c.openTime, [...(byTime.get(c.openTime) ?? []), c]);
  const unique: Candle[] = [];
  for (const c of survivors) {
    const copies = byTime.get(c.openTime) as Candle[];
    if (copies[0] !== c) continue;
    if (copies.every((d) => sameValues(d, c))) {
      unique.push(c);
      out.identicalDuplicates.push(...copies.slice(1).map((d) => d.row));
      continue;
    }
    const rows = copies.map((d) => d.row).join(', ');
    for (const d of copies)
      rejected.set(d, {
        candle: d,
        rule: 'conflicting_duplicate',
        column: 'open_time',
        detail: `open_time ${isoHour(d.openTime)} appears in rows ${rows} with different values`,
      });
  }

  const inOrder = longestIncreasing(unique.map((c) => c.openTime));
  unique.forEach((c, i) => {
    if (inOrder.has(i)) {
      out.kept.push(c);
      return;
    }
    const before = unique[i - 1];
    rejected.set(c, {
      candle: c,
      rule: 'non_monotonic',
      column: 'open_time',
      detail: `open_time ${isoHour(c.openTime)} is out of time order${before ? ` (after ${isoHour(before.openTime)})` : ''}`,
    });
  });

  out.rejected = [...rejected.values()].sort((a, b) => a.candle.row - b.candle.row);
  out.zeroVolumeHours = out.kept.filter((c) => c.volume === 0).map((c) => c.openTime);
  const landed = new Set(out.kept.map((c) => c.openTime));
  for (let h = Math.ceil(start / HOUR_MS) * HOUR_MS; h < end; h += HOUR_MS)
    if (!landed.has(h)) out.gaps.push(h);
  return out;
}
