import { type CandleProblem, candleRule, isoHour } from '../datasets/btc/candle.js';
import { HOUR_MS } from '../time.js';
import type { Candle } from './candles.js';

export { type CandleColumn, type CandleRule, candleRule, isoHour } from '../datasets/btc/candle.js';

export interface RejectedCandle extends CandleProblem {
  candle: Candle;
}

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
