import { describe, expect, it } from 'vitest';
import {
  type Candle,
  type CandlePolicy,
  candleCsv,
  candleUrl,
  formatOf,
  parseCandles,
  validateCandles,
} from '../../tasks/src/sources/index.js';

const H = 3_600_000;
const T0 = Date.parse('2026-11-20T00:00:00Z');
const at = (hour: number) => new Date(T0 + hour * H).toISOString();
const policy = (hours: number, zeroVolume: 'keep' | 'drop' = 'keep'): CandlePolicy => ({
  interval: { start: T0, end: T0 + hours * H },
  zeroVolume,
});

/** A well-formed candle for hour `h` (row = h + 1), with overrides. */
const c = (h: number, over: Partial<Candle> = {}): Candle => ({
  row: h + 1,
  openTime: T0 + h * H,
  open: 100,
  high: 110,
  low: 90,
  close: 105,
  volume: 12.5,
  ...over,
});

interface Case {
  name: string;
  candles: Candle[];
  hours: number;
  zeroVolume?: 'keep' | 'drop';
  kept: number[]; // hours landed
  rejected: [row: number, rule: string][];
  gaps?: number[];
  identicalDuplicates?: number[];
  outsideInterval?: number[];
  zeroVolumeHours?: number[];
}

const cases: Case[] = [
  {
    name: 'a clean series lands whole',
    candles: [c(0), c(1), c(2)],
    hours: 3,
    kept: [0, 1, 2],
    rejected: [],
  },
  {
    name: 'an identical duplicate collapses to one',
    candles: [c(0), c(1), c(1, { row: 9 }), c(2)],
    hours: 3,
    kept: [0, 1, 2],
    rejected: [],
    identicalDuplicates: [9],
  },
  {
    name: 'conflicting duplicates are all quarantined and the hour is a gap',
    candles: [c(0), c(1), c(1, { row: 9, close: 101 }), c(2)],
    hours: 3,
    kept: [0, 2],
    rejected: [
      [2, 'conflicting_duplicate'],
      [9, 'conflicting_duplicate'],
    ],
    gaps: [1],
  },
  {
    name: 'one misplaced candle is out of order, not every one after it',
    candles: [c(0, { row: 1 }), c(3, { row: 2 }), c(1, { row: 3 }), c(2, { row: 4 }), c(4, { row: 5 })],
    hours: 5,
    kept: [0, 1, 2, 4],
    rejected: [[2, 'non_monotonic']],
    gaps: [3],
  },
  {
    name: 'between equally long runs, the candle that arrives late is the one out of order',
    candles: [c(0, { row: 1 }), c(2, { row: 2 }), c(1, { row: 3 })],
    hours: 3,
    kept: [0, 2],
    rejected: [[3, 'non_monotonic']],
    gaps: [1],
  },
  {
    name: 'a timestamp off the hour',
    candles: [c(0), c(1, { openTime: T0 + H + 60_000 })],
    hours: 2,
    kept: [0],
    rejected: [[2, 'not_on_hour']],
    gaps: [1],
  },
  {
    name: 'a negative or zero price',
    candles: [c(0, { low: -1 }), c(1, { open: 0 }), c(2)],
    hours: 3,
    kept: [2],
    rejected: [
      [1, 'non_positive_price'],
      [2, 'non_positive_price'],
    ],
    gaps: [0, 1],
  },
  {
    name: 'high below low',
    candles: [c(0, { high: 80, low: 90, open: 85, close: 85 })],
    hours: 1,
    kept: [],
    rejected: [[1, 'high_below_low']],
    gaps: [0],
  },
  {
    name: 'close above high and open below low',
    candles: [c(0, { close: 111 }), c(1, { open: 89 }), c(2, { close: 90 })],
    hours: 3,
    kept: [2],
    rejected: [
      [1, 'close_outside_range'],
      [2, 'open_outside_range'],
    ],
    gaps: [0, 1],
  },
  {
    name: 'negative volume',
    candles: [c(0, { volume: -3 })],
    hours: 1,
    kept: [],
    rejected: [[1, 'negative_volume']],
    gaps: [0],
  },
  {
    name: 'zero volume is kept and flagged by default',
    candles: [c(0), c(1, { volume: 0 })],
    hours: 2,
    kept: [0, 1],
    rejected: [],
    zeroVolumeHours: [1],
  },
  {
    name: 'zero volume is quarantined under the drop policy',
    candles: [c(0), c(1, { volume: 0 })],
    hours: 2,
    zeroVolume: 'drop',
    kept: [0],
    rejected: [[2, 'zero_volume']],
    gaps: [1],
  },
  {
    name: 'missing hours are gaps, never invented',
    candles: [c(0), c(3)],
    hours: 5,
    kept: [0, 3],
    rejected: [],
    gaps: [1, 2, 4],
  },
  {
    name: 'candles of other hours are neither landed nor quarantined',
    candles: [c(-1), c(0), c(1), c(2, { close: 999 })],
    hours: 2,
    kept: [0, 1],
    rejected: [],
    outsideInterval: [0, 3],
  },
  {
    name: 'a broken duplicate does not taint its valid twin',
    candles: [c(0), c(0, { row: 7, high: 1, low: 2 })],
    hours: 1,
    kept: [0],
    rejected: [[7, 'high_below_low']],
  },
];

describe('validateCandles', () => {
  it.each(cases)('$name', (t) => {
    const out = validateCandles(t.candles, policy(t.hours, t.zeroVolume));
    expect(out.kept.map((k) => (k.openTime - T0) / H)).toEqual(t.kept);
    expect(out.rejected.map((r) => [r.candle.row, r.rule])).toEqual(t.rejected);
    expect(out.gaps.map((g) => (g - T0) / H)).toEqual(t.gaps ?? []);
    expect(out.identicalDuplicates).toEqual(t.identicalDuplicates ?? []);
    expect(out.outsideInterval).toEqual(t.outsideInterval ?? []);
    expect(out.zeroVolumeHours.map((g) => (g - T0) / H)).toEqual(t.zeroVolumeHours ?? []);
    // Nothing is lost: every candle is kept, rejected, a dropped copy, or outside the interval.
    const accounted =
      out.kept.length + out.rejected.length + out.identicalDuplicates.length + out.outsideInterval.length;
    expect(accounted).toBe(t.candles.length);
  });

  it('names the values that break a rule', () => {
    const [r] = validateCandles([c(0, { close: 111 })], policy(1)).rejected;
    expect(r).toMatchObject({ column: 'close', detail: 'close 111 is outside [low 90, high 110]' });
    const [late] = validateCandles([c(0), c(2), c(1)], policy(3)).rejected;
    expect(late).toMatchObject({
      column: 'open_time',
      detail: 'open_time 2026-11-20T01:00:00Z is out of time order (after 2026-11-20T02:00:00Z)',
    });
    const [low] = validateCandles([c(0, { low: -2 })], policy(1)).rejected;
    expect(low).toMatchObject({ column: 'low', detail: 'low -2 is not above 0' });
  });
});

describe('parseCandles', () => {
  const csv = `open_time,open,high,low,close,volume,trades
2026-11-20T00:00:00Z,100,110,90,105,12.5,7
2026-11-20T01:00:00Z,abc,110,90,105,1,3
2026-11-20T02:00:00Z,100,110,90,105
`;
  it('reads CSV, naming the row and column of a bad value', async () => {
    const out = await parseCandles(Buffer.from(csv), 'csv');
    expect(out.candles).toEqual([c(0, { row: 2 })]);
    expect(out.extraColumns).toEqual(['trades']);
    expect(out.malformed.map((m) => [m.row, m.column, m.detail])).toEqual([
      [3, 'open', 'expected a number'],
      [4, null, 'expected 7 fields, got 5'],
    ]);
  });

  it('reads a JSON array of kline arrays (epoch ms, decimal text)', async () => {
    const body = JSON.stringify([
      [T0, '100', '110', '90', '105', '12.5', T0 + H - 1],
      [T0 + H, '100', '110', '90', '105'],
    ]);
    const out = await parseCandles(Buffer.from(body), 'json');
    expect(out.candles).toEqual([c(0)]);
    expect(out.malformed[0]).toMatchObject({
      row: 2,
      detail: 'kline array has 5 fields, expected at least 6',
    });
  });

  it('reads a JSON array of objects and JSON Lines', async () => {
    const obj = { open_time: at(0), open: 100, high: 110, low: 90, close: 105, volume: 12.5 };
    const arr = await parseCandles(Buffer.from(JSON.stringify([obj, { ...obj, open_time: 'noon' }])), 'json');
    expect(arr.candles).toEqual([c(0)]);
    expect(arr.malformed[0]).toMatchObject({ row: 2, column: 'open_time', value: 'noon' });
    const lines = await parseCandles(Buffer.from(`${JSON.stringify(obj)}\n`), 'jsonl');
    expect(lines.candles).toEqual([c(0)]);
  });

  it.each([
    ['json', '{"candles": []}', 'unreadable', /expected an array of candles/],
    ['json', '[{"open_time": ', 'unreadable', /unreadable json/],
    [
      'csv',
      'time,open,high,low,close,volume\n1,2,3,4,5,6\n',
      'missing_column',
      /missing column\(s\) open_time/,
    ],
  ] as const)('refuses a %s payload it cannot read: %s', async (format, body, rule, message) => {
    const err = await parseCandles(Buffer.from(body), format).catch((e: unknown) => e);
    expect(err).toMatchObject({ rule });
    expect((err as Error).message).toMatch(message);
  });
});

describe('the landed file and the request', () => {
  it('writes one hour as the contract columns, the same bytes for the same candle', () => {
    const text = candleCsv(c(5, { open: 42_000.1, volume: 0 }));
    expect(text).toBe('open_time,open,high,low,close,volume\n2026-11-20T05:00:00Z,42000.1,110,90,105,0\n');
    expect(candleCsv(c(5, { open: 42_000.1, volume: 0 }))).toBe(text);
  });

  it.each([
    [
      'http://x/k?symbol=BTC',
      'http://x/k?symbol=BTC&start=2026-11-20T00%3A00%3A00Z&end=2026-11-20T02%3A00%3A00Z',
    ],
    ['http://x/k?from={start_ms}&to={end_ms}', `http://x/k?from=${T0}&to=${T0 + 2 * H}`],
    ['http://x/{start}/{end}', 'http://x/2026-11-20T00%3A00%3A00Z/2026-11-20T02%3A00%3A00Z'],
  ])('fills the interval into %s', (source, url) => {
    expect(candleUrl(source, { start: T0, end: T0 + 2 * H })).toBe(url);
  });

  it.each([
    [{ name: 'incoming/btc/a.csv' }, '[', 'csv'],
    [{ contentType: 'application/json; charset=utf-8' }, 'x', 'json'],
    [{ contentType: 'text/csv' }, '[', 'csv'],
    [{ contentType: 'text/plain' }, '  [[1,2]]', 'json'],
    [{}, 'open_time,open', 'csv'],
    [{ name: '/api/klines' }, '{"open_time":1}', 'jsonl'],
  ] as const)('tells the format from %o and the body', (hints, body, format) => {
    expect(formatOf(Buffer.from(body), hints)).toBe(format);
  });
});
