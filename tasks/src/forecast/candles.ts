import { type Candle, candleRule } from '../datasets/btc/candle.js';
import { DriftwoodError } from '../errors.js';
import { HOUR_MS } from '../time.js';

export { CANDLE_COLUMNS, type Candle } from '../datasets/btc/candle.js';

const PRICE_FIELDS = ['open', 'high', 'low', 'close'] as const;

function readTime(raw: unknown, where: string): number {
  const t =
    typeof raw === 'number'
      ? raw
      : typeof raw === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(raw)
        ? Date.parse(raw)
        : NaN;
  if (!Number.isFinite(t))
    throw new DriftwoodError(
      'SCHEMA_MISMATCH',
      `${where}.open_time: expected an ISO time or epoch milliseconds, got ${JSON.stringify(raw)}`,
      { field: `${where}.open_time` },
    );
  if (t % HOUR_MS !== 0)
    throw new DriftwoodError(
      'SCHEMA_MISMATCH',
      `${where}.open_time: expected the start of an hour, got ${new Date(t).toISOString()}`,
      { field: `${where}.open_time` },
    );
  return t;
}

function readNumber(raw: unknown, where: string, positive: boolean): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(n) || (positive ? n <= 0 : n < 0))
    throw new DriftwoodError(
      'SCHEMA_MISMATCH',
      `${where}: expected a ${positive ? 'positive' : 'non-negative'} number, got ${JSON.stringify(raw)}`,
      { field: where },
    );
  return n;
}

/**
 * Checks the candles of a forecast request and reads them as Candles: each row has `open_time`
 * (ISO or epoch ms, on the hour), positive `open`/`high`/`low`/`close` with `low ≤ open, close ≤ high`,
 * and a non-negative `volume` (the extract step's candle rules, candleRule); the rows are consecutive hours in ascending order, at least
 * `minRows` of them. The error names the row and field (`candles[3].close`).
 */
export function validateForecastCandles(rows: unknown, minRows: number, field = 'candles'): Candle[] {
  if (!Array.isArray(rows))
    throw new DriftwoodError('SCHEMA_MISMATCH', `${field}: expected an array of candles`, { field });
  if (rows.length < minRows)
    throw new DriftwoodError(
      'SCHEMA_MISMATCH',
      `${field}: expected at least ${minRows} consecutive hourly candles, got ${rows.length}`,
      { field },
    );
  const out: Candle[] = [];
  rows.forEach((row, i) => {
    const where = `${field}[${i}]`;
    if (typeof row !== 'object' || row === null || Array.isArray(row))
      throw new DriftwoodError('SCHEMA_MISMATCH', `${where}: expected an object`, { field: where });
    const r = row as Record<string, unknown>;
    const [open, high, low, close] = PRICE_FIELDS.map((f) => readNumber(r[f], `${where}.${f}`, true)) as [
      number,
      number,
      number,
      number,
    ];
    const candle: Candle = {
      openTime: readTime(r.open_time ?? r.openTime, where),
      open,
      high,
      low,
      close,
      volume: readNumber(r.volume, `${where}.volume`, false),
    };
    const broken = candleRule(candle, { zeroVolume: 'keep' });
    if (broken)
      throw new DriftwoodError('SCHEMA_MISMATCH', `${where}.${broken.column}: ${broken.detail}`, {
        field: `${where}.${broken.column}`,
      });
    const prev = out[i - 1];
    if (prev && candle.openTime !== prev.openTime + HOUR_MS)
      throw new DriftwoodError(
        'SCHEMA_MISMATCH',
        candle.openTime <= prev.openTime
          ? `${where}.open_time: candles must be in ascending time order (${new Date(candle.openTime).toISOString()} after ${new Date(prev.openTime).toISOString()})`
          : `${where}.open_time: expected ${new Date(prev.openTime + HOUR_MS).toISOString()} (consecutive hours), got ${new Date(candle.openTime).toISOString()}`,
        { field: `${where}.open_time` },
      );
    out.push(candle);
  });
  return out;
}
