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
 * close, volume`) or of kline arrays (`[open_time_ms, open, high, low, close, volume, …]`, the shape
 * most exchanges answer with), JSON Lines of such objects, or CSV with that header. `open_time` is an
 * ISO time with a zone or epoch milliseconds; numbers may be JSON numbers or decimal text. A record
 * that does not read is returned as malformed, naming its row and column; the rest still read.
 */
export async function parseCandles(
  body: Buffer,
  format: PayloadFormat,
): Promise<{ candles: Candle[]; malformed: MalformedCandle[]; extraColumns: string[] }> {
  const records = await recordsOf(body, format);
  const candles: Candle[] = [];
  const malformed: MalformedCandle[] = [];
  const extra = new Set<string>();
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
    for (const k of Object.keys(rec.values))
      if (!(CANDLE_COLUMNS as readonly string[]).includes(k)) extra.add(k);
    const read = candleOf(rec.row, rec.values);
    if ('detail' in read) malformed.push(read);
    else candles.push(read);
  }
  return { candles, malformed, extraColumns: [...extra].sort() };
}

async function recordsOf(body: Buffer, format: PayloadFormat): Promise<RawRow[]> {
  const out: RawRow[] = [];
  try {
    if (format === 'json') return jsonRecords(body);
    const source =
      format === 'csv' ? await readCsv(Readable.from([body])) : await readJsonLines(Readable.from([body]));
    const missing = CANDLE_COLUMNS.filter((c) => !source.columns.includes(c));
    if (missing.length > 0)
      throw new PayloadError(
        'missing_column',
        `missing column(s) ${missing.join(', ')}; expected ${CANDLE_COLUMNS.join(', ')}`,
      );
    for await (const r of source.rows) out.push(r);
    return out;
  } catch (err) {
    if (err instanceof ReaderError)
      throw new PayloadError('unreadable', `unreadable ${format}: ${err.message}`);
    throw err;
  }
}

function jsonRecords(body: Buffer): RawRow[] {
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
      return { row, values: Object.fromEntries(CANDLE_COLUMNS.map((c, j) => [c, item[j]])) };
    }
    if (item !== null && typeof item === 'object') {
      const values = item as Record<string, unknown>;
      const missing = CANDLE_COLUMNS.filter((c) => !(c in values));
      if (missing.length > 0) return { row, error: `missing field(s) ${missing.join(', ')}` };
      return { row, values };
    }
    return { row, error: 'expected an object or a kline array' };
  });
}

function candleOf(row: number, values: Record<string, unknown>): Candle | MalformedCandle {
  const bad = (column: string, detail: string): MalformedCandle => ({
    row,
    column,
    value: values[column] ?? null,
    detail,
    raw: values,
  });
  const t = values.open_time;
  let openTime: number | undefined;
  if (typeof t === 'number' && Number.isSafeInteger(t)) openTime = t;
  else if (typeof t === 'string' && /^\d+$/.test(t.trim())) openTime = Number(t.trim());
  else if (typeof t === 'string' && ISO_TIME.test(t.trim())) openTime = Date.parse(t.trim());
  if (openTime === undefined || !Number.isFinite(openTime))
    return bad('open_time', 'expected an ISO time with a zone or epoch milliseconds');
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
