import { DriftwoodError } from '../errors.js';
import { HOUR_MS } from '../time.js';
import type { Warehouse } from '../warehouse/db.js';
import { CANDLE_COLUMNS, type Candle } from './candles.js';

/**
 * The time_windows builder. Prices are not stationary, so a window holds log changes per hour:
 * the close's log return, the log high/low range, the log body (close over open) and the log
 * change of volume. The target is the log return of the close `horizonHours` after the window's
 * last candle; a price forecast is `lastClose · exp(predicted return)`.
 */
export const WINDOW_FEATURES = ['close_return', 'log_range', 'log_body', 'volume_change'] as const;
export const FEATURE_COUNT = WINDOW_FEATURES.length;

export interface WindowShape {
  windowHours: number;
  horizonHours: number;
}

export interface Window {
  /** Open time of the first candle read (the one before the first feature row). */
  inputStart: number;
  /** Open time of the last input candle: its close is the last thing the window knows. */
  inputEnd: number;
  /** Open time of the candle whose close is the target. */
  targetTime: number;
  /** windowHours × FEATURE_COUNT raw (unscaled) features, oldest hour first. */
  x: Float32Array;
  /** Log return of the close from inputEnd to targetTime. */
  y: number;
  lastClose: number;
  targetClose: number;
  /** The windowHours + 1 closes the window read, oldest first (the moving-average baseline's input). */
  closes: number[];
}

/**
 * Closed candles of the table, oldest first: a candle opened at T closes at T + 1 h, so with a
 * cutoff only candles with T + 1 h ≤ until are read (nothing after the cutoff is known yet).
 */
export async function loadCandles(db: Warehouse, until?: number, table = 'candles'): Promise<Candle[]> {
  await requireTable(db, table);
  let q = db(table)
    .select(...CANDLE_COLUMNS)
    .orderBy('open_time', 'asc');
  if (until !== undefined) q = q.where('open_time', '<=', until - HOUR_MS);
  return ((await q) as Record<string, unknown>[]).map(candleOf);
}

/** The newest `n` candles of the table, oldest first (what a forecast of the next hour reads). */
export async function loadLatestCandles(db: Warehouse, n: number, table = 'candles'): Promise<Candle[]> {
  await requireTable(db, table);
  const rows = (await db(table)
    .select(...CANDLE_COLUMNS)
    .orderBy('open_time', 'desc')
    .limit(n)) as Record<string, unknown>[];
  return rows.reverse().map(candleOf);
}

/** A home that never ingested prices has no table: data missing (exit 2, no retry), not a crash. */
async function requireTable(db: Warehouse, table: string): Promise<void> {
  if (!(await db.schema.hasTable(table)))
    throw new DriftwoodError('DATA_MISSING', `no ${table} table in the warehouse: ingest prices first`);
}

// PostgreSQL returns bigint columns as strings.
const candleOf = (r: Record<string, unknown>): Candle => ({
  openTime: Number(r.open_time),
  open: Number(r.open),
  high: Number(r.high),
  low: Number(r.low),
  close: Number(r.close),
  volume: Number(r.volume),
});

/** One hour's features from its candle and the hour before. */
export function featureRow(prev: Candle, cur: Candle): [number, number, number, number] {
  return [
    Math.log(cur.close / prev.close),
    Math.log(cur.high / cur.low),
    Math.log(cur.close / cur.open),
    Math.log((cur.volume + 1) / (prev.volume + 1)),
  ];
}

function assertAscending(candles: readonly Candle[]): void {
  for (let i = 1; i < candles.length; i++) {
    const a = candles[i - 1] as Candle;
    const b = candles[i] as Candle;
    if (b.openTime <= a.openTime)
      throw new DriftwoodError(
        'SCHEMA_MISMATCH',
        `candles[${i}].open_time: ${new Date(b.openTime).toISOString()} is not after ${new Date(a.openTime).toISOString()}: candles must be in ascending time order`,
      );
  }
}

/** The input features of the window ending at candles[end] (windowHours + 1 consecutive candles). */
export function windowInputs(candles: readonly Candle[], end: number, windowHours: number): Float32Array {
  const x = new Float32Array(windowHours * FEATURE_COUNT);
  for (let k = 0; k < windowHours; k++) {
    const i = end - windowHours + 1 + k;
    x.set(featureRow(candles[i - 1] as Candle, candles[i] as Candle), k * FEATURE_COUNT);
  }
  return x;
}

/**
 * Every window of `windowHours` hours (plus the candle before, for the first return) whose inputs and
 * target are consecutive hours. Gaps are not filled: a window that spans a missing hour is dropped
 * (and counted), because an invented candle would be a price nobody traded at.
 */
export function buildWindows(
  candles: readonly Candle[],
  shape: WindowShape,
): { windows: Window[]; droppedForGaps: number } {
  assertAscending(candles);
  const { windowHours, horizonHours } = shape;
  // runStart[i]: index of the first candle of the unbroken hourly run that holds candle i.
  const runStart = new Int32Array(candles.length);
  for (let i = 1; i < candles.length; i++)
    runStart[i] =
      (candles[i] as Candle).openTime - (candles[i - 1] as Candle).openTime === HOUR_MS
        ? (runStart[i - 1] as number)
        : i;
  const windows: Window[] = [];
  let droppedForGaps = 0;
  for (let end = windowHours; end + horizonHours < candles.length; end++) {
    const first = end - windowHours;
    const target = end + horizonHours;
    if ((runStart[end] as number) > first || runStart[target] !== runStart[end]) {
      droppedForGaps++;
      continue;
    }
    const last = candles[end] as Candle;
    const future = candles[target] as Candle;
    windows.push({
      inputStart: (candles[first] as Candle).openTime,
      inputEnd: last.openTime,
      targetTime: future.openTime,
      x: windowInputs(candles, end, windowHours),
      y: Math.log(future.close / last.close),
      lastClose: last.close,
      targetClose: future.close,
      closes: candles.slice(first, end + 1).map((c) => c.close),
    });
  }
  return { windows, droppedForGaps };
}

/** What splitting needs of a window: its time span. */
export type Timed = Pick<Window, 'inputStart' | 'inputEnd' | 'targetTime'>;

export interface TimeSplit<T extends Timed> {
  train: T[];
  validation: T[];
  test: T[];
  /** Windows that straddled a boundary and were left out so that no part sees another's hours. */
  purged: number;
  /** First input hour of validation and of test. */
  boundaries: { validation: number; test: number };
}

const iso = (t: number) => new Date(t).toISOString();

function leak(message: string): never {
  throw new DriftwoodError('USAGE', `leaky or unordered split: ${message}`);
}

function assertWindowsOrdered(windows: readonly Timed[], part: string): void {
  windows.forEach((w, i) => {
    if (!(w.inputStart <= w.inputEnd && w.targetTime > w.inputEnd))
      leak(
        `${part}[${i}]: target ${iso(w.targetTime)} is not strictly after its inputs (${iso(w.inputStart)}..${iso(w.inputEnd)})`,
      );
    const prev = windows[i - 1];
    if (prev && !(w.inputEnd > prev.inputEnd && w.targetTime > prev.targetTime))
      leak(
        `${part}[${i}] (inputs to ${iso(w.inputEnd)}) is not after ${part}[${i - 1}] (inputs to ${iso(prev.inputEnd)}): windows must be in time order, never shuffled`,
      );
  });
}

/**
 * Proves a split cannot leak: each part is in time order with every target after its own inputs,
 * and every hour a later part reads (inputs or target) comes after every hour an earlier part read.
 */
export function assertNoLeak(split: Pick<TimeSplit<Timed>, 'train' | 'validation' | 'test'>): void {
  const parts = [
    ['train', split.train],
    ['validation', split.validation],
    ['test', split.test],
  ] as const;
  for (const [name, windows] of parts) assertWindowsOrdered(windows, name);
  let before: { name: string; last: number } | undefined;
  for (const [name, windows] of parts) {
    if (windows.length === 0) continue;
    const first = Math.min(...windows.map((w) => w.inputStart));
    if (before && first <= before.last)
      leak(`${name} reads ${iso(first)} but ${before.name} already reads up to ${iso(before.last)}`);
    before = { name, last: Math.max(...windows.map((w) => w.targetTime)) };
  }
}

/**
 * Splits time-ordered windows into train, validation and test by time, never by shuffling: the test
 * part is the last `test` share of windows, validation the share before it, train the rest. A window
 * whose hours (inputs or target) cross a boundary is purged, so each window lies wholly inside one
 * part and consecutive parts are at least windowHours + horizonHours apart. Unordered windows, or a
 * window whose target is not after its inputs, are refused.
 */
export function splitByTime<T extends Timed>(
  windows: readonly T[],
  fractions: { validation: number; test: number },
): TimeSplit<T> {
  const { validation, test } = fractions;
  if (!(validation > 0 && test > 0 && validation + test < 1))
    throw new DriftwoodError(
      'USAGE',
      `split: validation and test shares must be > 0 and sum below 1, got ${validation} and ${test}`,
    );
  assertWindowsOrdered(windows, 'windows');
  const n = windows.length;
  const testAt = windows[Math.floor(n * (1 - test))];
  const validationAt = windows[Math.floor(n * (1 - test - validation))];
  if (n < 3 || !testAt || !validationAt)
    throw new DriftwoodError(
      'DATA_MISSING',
      `split: ${n} windows are too few to split into train, validation and test`,
    );
  const boundaries = { validation: validationAt.inputStart, test: testAt.inputStart };
  const out: TimeSplit<T> = { train: [], validation: [], test: [], purged: 0, boundaries };
  for (const w of windows) {
    if (w.targetTime < boundaries.validation) out.train.push(w);
    else if (w.inputStart >= boundaries.validation && w.targetTime < boundaries.test) out.validation.push(w);
    else if (w.inputStart >= boundaries.test) out.test.push(w);
    else out.purged++;
  }
  for (const part of ['train', 'validation', 'test'] as const)
    if (out[part].length === 0)
      throw new DriftwoodError(
        'DATA_MISSING',
        `split: the ${part} part is empty (${n} windows): more hours of candles are needed`,
      );
  assertNoLeak(out);
  return out;
}
