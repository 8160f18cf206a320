import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_CONTRACTS_DIR, validateContract } from '../../tasks/src/contracts/index.js';
import { epochMs, parseCandles } from '../../tasks/src/sources/index.js';

const H = 3_600_000;
const T0 = Date.parse('2026-11-20T00:00:00Z');
const S0 = T0 / 1000;
const candle = (h: number) => ({
  row: h + 2,
  openTime: T0 + h * H,
  open: 100,
  high: 110,
  low: 90,
  close: 105,
  volume: 12.5,
});

describe('epoch times from a price source', () => {
  it.each([
    ['seconds, by magnitude', S0, 'auto', T0],
    ['milliseconds, by magnitude', T0, 'auto', T0],
    ['fractional seconds', S0 + 0.25, 'auto', T0 + 250],
    ['declared seconds', S0, 's', T0],
    ['declared milliseconds', T0, 'ms', T0],
    ['the smallest millisecond time read as such (March 1973)', 1e11, 'auto', 1e11],
  ] as const)('reads %s', (_, value, unit, expected) => {
    expect(epochMs(value, unit)).toBe(expected);
  });

  it('lands the same candles from seconds, milliseconds and ISO text', async () => {
    const csv = (time: (h: number) => string | number) =>
      Buffer.from(
        `open_time,open,high,low,close,volume\n${[0, 1].map((h) => `${time(h)},100,110,90,105,12.5`).join('\n')}\n`,
      );
    const expected = [candle(0), candle(1)];
    expect(
      (
        await parseCandles(
          csv((h) => S0 + h * 3600),
          'csv',
        )
      ).candles,
    ).toEqual(expected);
    expect(
      (
        await parseCandles(
          csv((h) => T0 + h * H),
          'csv',
        )
      ).candles,
    ).toEqual(expected);
    expect(
      (
        await parseCandles(
          csv((h) => new Date(T0 + h * H).toISOString()),
          'csv',
        )
      ).candles,
    ).toEqual(expected);
    // A declared unit wins over the magnitude: milliseconds read as seconds land far in the future.
    const declared = await parseCandles(
      csv((h) => T0 + h * H),
      'csv',
      { timeUnit: 's' },
    );
    expect(declared.candles[0]?.openTime).toBe(T0 * 1000);
  });

  it('reads kline arrays in epoch seconds', async () => {
    const body = JSON.stringify([[S0, '100', '110', '90', '105', '12.5', S0 + 3599]]);
    const out = await parseCandles(Buffer.from(body), 'json');
    expect(out.candles).toEqual([{ ...candle(0), row: 1 }]);
  });
});

describe("a source's own column names", () => {
  const renamed = `ts,o,h,l,c,v,trades
${S0},100,110,90,105,12.5,7
${S0 + 3600},100,110,90,105,12.5,3
`;
  const columns = { open_time: 'ts', open: 'o', high: 'h', low: 'l', close: 'c', volume: 'v' };

  it('are read through the mapping, the unmapped ones reported as extra', async () => {
    const out = await parseCandles(Buffer.from(renamed), 'csv', { columns });
    expect(out.candles).toEqual([candle(0), candle(1)]);
    expect(out.extraColumns).toEqual(['trades']);
    expect(out.malformed).toEqual([]);
  });

  it('map JSON objects and JSON Lines the same way, keeping the source record for quarantine', async () => {
    const obj = { ts: S0, o: 100, h: 110, l: 90, c: 105, v: 12.5 };
    const arr = await parseCandles(Buffer.from(JSON.stringify([obj, { ...obj, c: 'n/a' }])), 'json', {
      columns,
    });
    expect(arr.candles).toEqual([{ ...candle(0), row: 1 }]);
    expect(arr.malformed[0]).toMatchObject({ row: 2, column: 'close', value: 'n/a', raw: { c: 'n/a' } });
    const lines = await parseCandles(Buffer.from(`${JSON.stringify(obj)}\n`), 'jsonl', { columns });
    expect(lines.candles).toEqual([{ ...candle(0), row: 1 }]);
  });

  it.each([
    [
      'one column named otherwise',
      'open_time,open,high,low,price,volume\n',
      {},
      'missing column(s) close (the file has open_time, open, high, low, price, volume); map it in the contract: source.columns.close: <your column>',
    ],
    [
      'a mapping to a column the file does not have',
      'open_time,open,high,low,close_px,volume\n',
      { columns: { close: 'last' } },
      'missing column(s) last (source.columns.close) (the file has open_time, open, high, low, close_px, volume); map it in the contract: source.columns.close: <your column>',
    ],
    [
      'several',
      'ts,open,high,low,close,volume\n',
      { columns: { volume: 'vol' } },
      'missing column(s) open_time, vol (source.columns.volume) (the file has ts, open, high, low, close, volume); map them in the contract: source.columns.open_time: <your column>, source.columns.volume: <your column>',
    ],
  ] as const)('refuses %s in one line naming the mapping', async (_, csv, mapping, message) => {
    const err = await parseCandles(Buffer.from(csv), 'csv', mapping).catch((e: unknown) => e);
    expect(err).toMatchObject({ rule: 'missing_column', message });
    expect(message).not.toContain('\n');
  });

  it('refuses JSON objects none of which has a column, but a single incomplete object is a bad row', async () => {
    const obj = { open_time: S0, open: 100, high: 110, low: 90, price: 105, volume: 1 };
    const err = await parseCandles(Buffer.from(JSON.stringify([obj, obj])), 'json').catch((e: unknown) => e);
    expect(err).toMatchObject({
      rule: 'missing_column',
      message: expect.stringContaining('map it in the contract: source.columns.close: <your column>'),
    });
    const mixed = await parseCandles(Buffer.from(JSON.stringify([{ ...obj, close: 105 }, obj])), 'json');
    expect(mixed.candles).toHaveLength(1);
    expect(mixed.malformed[0]).toMatchObject({ row: 2, detail: 'missing field(s) close' });
  });
});

describe('the source section of a contract', () => {
  const btc = () => parseYaml(readFileSync(path.join(DEFAULT_CONTRACTS_DIR, 'btc.yaml'), 'utf8'));

  it('takes a mapping of the forecast table and a time unit', async () => {
    const c = await validateContract(
      { ...btc(), source: { columns: { close: 'c' }, time_unit: 's' } },
      'btc',
    );
    expect(c.source).toEqual({ columns: { close: 'c' }, time_unit: 's' });
  });

  it.each([
    [{ columns: { price: 'c' } }, /\/source\/columns\/price: 'price' is not a column of table 'candles'/],
    [{ time_unit: 'us' }, /\/source\/time_unit: must be equal to one of the allowed values \(auto, s, ms\)/],
    [{ columns: { close: '' } }, /\/source\/columns\/close: must NOT have fewer than 1 characters/],
  ])('refuses %j, naming the path', async (source, message) => {
    await expect(validateContract({ ...btc(), source }, 'btc')).rejects.toThrow(message);
  });
});
