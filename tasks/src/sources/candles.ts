import { Readable } from 'node:stream';
import { CANDLE_COLUMNS, type Candle as ForecastCandle } from '../datasets/btc/candle.js';
import { ReaderError, readCsv, readJsonLines } from '../readers/index.js';
import type { RawRow } from '../readers/types.js';

/** One hourly OHLCV candle as read from a price source; `row` is where it stood in the payload. */
export interface Candle extends ForecastCandle {
  row: number;
}

/** A payload record that could not be read as a candle: its row, the column at fault and why. */
export interface MalformedCandle {
  row: number;
  column: string | null;
  value: unknown;
  detail: string;
  raw: unknown;
}

export type PayloadFormat = 'json' | 'jsonl' | 'csv';

export { CANDLE_COLUMNS };

const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * How a source's records map onto the candle columns (the contract's `source` section): `columns`
 * names the source's column for a candle column when they differ (`close: c`); `timeUnit` says what
 * a numeric `open_time` counts, `auto` deciding by its magnitude.
 */
export interface SourceMapping {
  columns?: Partial<Record<(typeof CANDLE_COLUMNS)[number], string>>;
  timeUnit?: 'auto' | 's' | 'ms';
}

/**
 * Below this a numeric time is epoch seconds, at or above it milliseconds: 1e11 s is the year 5138,
 * 1e11 ms is March 1973, so no price series is ambiguous.
 */
export const SECONDS_BELOW = 1e11;

/** A payload that cannot be read as candles at all (not JSON or CSV, or a required column missing). */
export class PayloadError extends Error {
  constructor(
    readonly rule: 'unreadable' | 'missing_column',
    message: string,
  ) {
    super(message);
    this.name = 'PayloadError';
  }
}

/**
 * The payload's format: by the name's extension, else the reply's content type, else its first
 * character (exchanges answer JSON as text/plain often enough).
 */
export function formatOf(body: Buffer, hints: { name?: string; contentType?: string } = {}): PayloadFormat {
  const name = (hints.name ?? '').toLowerCase();
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson')) return 'jsonl';
  if (name.endsWith('.json')) return 'json';
  if (name.endsWith('.csv')) return 'csv';
  const type = (hints.contentType ?? '').toLowerCase();
  if (type.includes('ndjson') || type.includes('jsonl')) return 'jsonl';
  if (type.includes('json')) return 'json';
  if (type.includes('csv')) return 'csv';
  const first = body.toString('utf8', 0, Math.min(body.length, 256)).trimStart()[0];
  if (first === '[') return 'json';
  if (first === '{') return 'jsonl';
  return 'csv';
}

/**
 * Reads a payload into candles. Three shapes: a JSON array of objects (`open_time, open, high, low,
 * close, volume`, or the source's names for them mapped by `mapping.columns`) or of kline arrays
 * (`[open_time, open, high, low, close, volume, …]`, the shape most exchanges answer with), JSON
 * Lines of such objects, or CSV with that header. `open_time` is an ISO time with a zone or epoch
 * seconds or milliseconds (`mapping.timeUnit`, by magnitude unless declared); numbers may be JSON
 * numbers or decimal text. A record that does not read is returned as malformed, naming its row and
 * column; the rest still read. A column no record has is a PayloadError naming the mapping to add.
 */
export async function parseCandles(
  body: Buffer,
  format: PayloadFormat,
  mapping: SourceMapping = {},
): Promise<{ candles: Candle[]; malformed: MalformedCandle[]; extraColumns: string[] }> {
  const names = sourceNames(mapping);
  const records = await recordsOf(body, format, names);
  const candles: Candle[] = [];
  const malformed: MalformedCandle[] = [];
  const extra = new Set<string>();
  const mapped = new Set(Object.values(names));
  for (const rec of records) {
    if (!rec.values) {
      malformed.push({
        row: rec.row,
        column: null,
        value: null,
        detail: rec.error ?? 'unreadable',
        raw: null,
      });
      continue;
    }
    for (const k of Object.keys(rec.values)) if (!mapped.has(k)) extra.add(k);
    const values = Object.fromEntries(CANDLE_COLUMNS.map((c) => [c, rec.values?.[names[c]]]));
    const read = candleOf(rec.row, values, mapping.timeUnit ?? 'auto');
    if ('detail' in read) malformed.push({ ...read, raw: rec.values });
    else candles.push(read);
  }
  return { candles, malformed, extraColumns: [...extra].sort() };
}

type CandleColumn = (typeof CANDLE_COLUMNS)[number];

/** The source's name of each candle column: the mapped one, else the candle column's own. */
function sourceNames(mapping: SourceMapping): Record<CandleColumn, string> {
  return Object.fromEntries(CANDLE_COLUMNS.map((c) => [c, mapping.columns?.[c] ?? c])) as Record<
    CandleColumn,
    string
  >;
}

/**
 * The one-line refusal of a source whose columns do not match: what is missing, what the file has,
 * and the contract lines that would map it.
 */
function missingColumns(
  missing: readonly CandleColumn[],
  names: Record<CandleColumn, string>,
  present: readonly string[],
): PayloadError {
  const what = missing.map((c) => (names[c] === c ? c : `${names[c]} (source.columns.${c})`));
  const shown = present.slice(0, 12).map((p) => (p.length > 40 ? `${p.slice(0, 40)}…` : p));
  const has =
    present.length === 0
      ? 'the file has no columns'
      : `the file has ${shown.join(', ')}${present.length > shown.length ? ', …' : ''}`;
  const lines = missing.map((c) => `source.columns.${c}: <your column>`).join(', ');
  return new PayloadError(
    'missing_column',
    `missing column(s) ${what.join(', ')} (${has}); map ${missing.length === 1 ? 'it' : 'them'} in the contract: ${lines}`,
  );
}

async function recordsOf(
  body: Buffer,
  format: PayloadFormat,
  names: Record<CandleColumn, string>,
): Promise<RawRow[]> {
  const out: RawRow[] = [];
  try {
    if (format === 'json') {
      const records = jsonRecords(body, names);
      // Objects are checked together: a column no object has is the source's naming, not a bad row.
      const objects = records.filter((r) => r.keys);
      if (objects.length > 0 && !records.some((r) => r.kline)) {
        const seen = new Set(objects.flatMap((r) => r.keys ?? []));
        const missing = CANDLE_COLUMNS.filter((c) => !seen.has(names[c]));
        if (missing.length > 0) throw missingColumns(missing, names, [...seen]);
      }
      return records.map(({ row, values, error }) => ({
        row,
        ...(values ? { values } : {}),
        ...(error ? { error } : {}),
      }));
    }
    const source =
      format === 'csv' ? await readCsv(Readable.from([body])) : await readJsonLines(Readable.from([body]));
    const missing = CANDLE_COLUMNS.filter((c) => !source.columns.includes(names[c]));
    if (missing.length > 0) throw missingColumns(missing, names, source.columns);
    for await (const r of source.rows) out.push(r);
    return out;
  } catch (err) {
    if (err instanceof ReaderError)
      throw new PayloadError('unreadable', `unreadable ${format}: ${err.message}`);
    throw err;
  }
}

/** The records of a JSON array; an object's keys are kept, so a column no object has is seen. */
function jsonRecords(
  body: Buffer,
  names: Record<CandleColumn, string>,
): (RawRow & { kline?: true; keys?: string[] })[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new PayloadError('unreadable', `unreadable json: ${(err as Error).message}`);
  }
  if (!Array.isArray(parsed))
    throw new PayloadError('unreadable', 'unreadable json: expected an array of candles');
  return parsed.map((item: unknown, i) => {
    const row = i + 1;
    if (Array.isArray(item)) {
      if (item.length < CANDLE_COLUMNS.length)
        return {
          row,
          error: `kline array has ${item.length} fields, expected at least ${CANDLE_COLUMNS.length}`,
        };
      // A kline is positional: its fields take the source's names, so the mapping reads them back.
      return {
        row,
        kline: true as const,
        values: Object.fromEntries(CANDLE_COLUMNS.map((c, j) => [names[c], item[j]])),
      };
    }
    if (item !== null && typeof item === 'object') {
      const values = item as Record<string, unknown>;
      const keys = Object.keys(values);
      const missing = CANDLE_COLUMNS.filter((c) => !(names[c] in values)).map((c) => names[c]);
      if (missing.length > 0) return { row, keys, error: `missing field(s) ${missing.join(', ')}` };
      return { row, keys, values };
    }
    return { row, error: 'expected an object or a kline array' };
  });
}

/** An epoch time in milliseconds, from seconds or milliseconds as declared or by magnitude. */
export function epochMs(value: number, unit: 'auto' | 's' | 'ms' = 'auto'): number {
  const seconds = unit === 's' || (unit === 'auto' && Math.abs(value) < SECONDS_BELOW);
  return seconds ? Math.round(value * 1000) : value;
}

function candleOf(
  row: number,
  values: Record<string, unknown>,
  timeUnit: 'auto' | 's' | 'ms',
): Candle | MalformedCandle {
  const bad = (column: string, detail: string): MalformedCandle => ({
    row,
    column,
    value: values[column] ?? null,
    detail,
    raw: values,
  });
  const t = values.open_time;
  let openTime: number | undefined;
  if (typeof t === 'number' && Number.isFinite(t)) openTime = epochMs(t, timeUnit);
  else if (typeof t === 'string' && /^\d+(\.\d+)?$/.test(t.trim()))
    openTime = epochMs(Number(t.trim()), timeUnit);
  else if (typeof t === 'string' && ISO_TIME.test(t.trim())) openTime = Date.parse(t.trim());
  if (openTime === undefined || !Number.isSafeInteger(openTime))
    return bad('open_time', 'expected an ISO time with a zone or epoch seconds or milliseconds');
  const nums: Record<string, number> = {};
  for (const c of ['open', 'high', 'low', 'close', 'volume'] as const) {
    const v = values[c];
    const n =
      typeof v === 'number'
        ? v
        : typeof v === 'string' && NUMERIC.test(v.trim())
          ? Number(v.trim())
          : Number.NaN;
    if (!Number.isFinite(n)) return bad(c, 'expected a number');
    nums[c] = n;
  }
  return {
    row,
    openTime,
    open: nums.open as number,
    high: nums.high as number,
    low: nums.low as number,
    close: nums.close as number,
    volume: nums.volume as number,
  };
}

/** The landed form of one hour: the contract's columns, an ISO `open_time`, numbers as JavaScript prints them. */
export function candleCsv(c: Candle): string {
  const time = new Date(c.openTime).toISOString().replace('.000Z', 'Z');
  return `${CANDLE_COLUMNS.join(',')}\n${[time, c.open, c.high, c.low, c.close, c.volume].join(',')}\n`;
}
