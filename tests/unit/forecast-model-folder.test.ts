import { describe, expect, it } from 'vitest';
import type { Candle } from '../../tasks/src/forecast/candles.js';
import { newestConsecutiveRun } from '../../tasks/src/forecast/model-folder.js';

const H = 3_600_000;
const at = (hours: number[]): Candle[] =>
  hours.map((h) => ({ openTime: h * H, open: 1, high: 1, low: 1, close: 1, volume: 1 }));
const hoursOf = (cs: Candle[]) => cs.map((c) => c.openTime / H);

/** The forecast sample and input example come from the newest run of consecutive hours. */
describe('newestConsecutiveRun', () => {
  it.each([
    { name: 'stops at the newest gap', hours: [0, 1, 2, 5, 6, 7], max: 10, want: [5, 6, 7] },
    { name: 'keeps at most max candles', hours: [0, 1, 2, 3, 4], max: 3, want: [2, 3, 4] },
    { name: 'a gap just before the last candle', hours: [0, 1, 3], max: 5, want: [3] },
    { name: 'one candle', hours: [4], max: 2, want: [4] },
    { name: 'no candles', hours: [], max: 2, want: [] },
  ])('$name', ({ hours, max, want }) => {
    expect(hoursOf(newestConsecutiveRun(at(hours), max))).toEqual(want);
  });
});
