import { createServer, type IncomingMessage, type Server } from 'node:http';
import path from 'node:path';
import { openObjectStore, openWarehouse, type Warehouse } from '@driftwood/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliRun, runCli, tempHome } from '../support/env.js';

/**
 * The extraction step for real: the built CLI fetches candles from a local HTTP server standing in for
 * the exchange (good data, a bad series, a 500 then OK, a garbage reply, an outage) or reads a file
 * dropped in the lake, lands hourly partitions, and the real ingest loads them into a SQLite warehouse
 * with the project's btc contract, exactly once.
 */
const PORT = 7231;
const BASE = `http://127.0.0.1:${PORT}`;
const H = 3_600_000;
const DAY = Date.parse('2026-11-20T00:00:00Z');
const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
const hour = (h: number) => DAY + h * H;

/** A plausible candle for an hour: the price walks up 10 an hour, volume never zero. */
const kline = (t: number, over: Partial<Record<'o' | 'h' | 'l' | 'c' | 'v', number>> = {}) => {
  const base = 40_000 + ((t - DAY) / H) * 10;
  const k = { o: base, h: base + 25.5, l: base - 20.25, c: base + 5, v: 12.5, ...over };
  return [t, String(k.o), String(k.h), String(k.l), String(k.c), String(k.v), t + H - 1];
};

/** Hours 6–11 as a misbehaving exchange sends them, with what each row tests. */
const BAD_SERIES = [
  kline(hour(6)),
  kline(hour(6)), // an identical copy: kept once
  kline(hour(7), { v: 0 }), // zero volume: kept, flagged
  kline(hour(9)), // hour 8 comes late, below
  kline(hour(8) + 30 * 60_000), // half past: not on the hour
  kline(hour(10), { c: 1 }), // close below low
  kline(hour(8)), // hour 8 after hour 9: out of order
  kline(hour(11), { l: -5 }), // negative price
];

let requests: { path: string; at: number }[] = [];
let flakyCalls = 0;

function candlesFor(req: IncomingMessage): number[] {
  const url = new URL(req.url ?? '/', BASE);
  const ms = (name: string) => Number(url.searchParams.get(name) ?? Number.NaN);
  const start = url.searchParams.has('from') ? ms('from') : Date.parse(url.searchParams.get('start') ?? '');
  const end = url.searchParams.has('to') ? ms('to') : Date.parse(url.searchParams.get('end') ?? '');
  const hours: number[] = [];
  for (let t = start; t < end; t += H) hours.push(t);
  return hours;
}

const exchange: Server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', BASE);
  requests.push({ path: url.pathname, at: Date.now() });
  if (url.pathname === '/api/klines') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(candlesFor(req).map((t) => kline(t))));
  } else if (url.pathname === '/api/bad') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(BAD_SERIES));
  } else if (url.pathname === '/api/flaky.csv') {
    if (flakyCalls++ === 0) {
      res.statusCode = 500;
      res.end('{"code":-1001,"msg":"internal error"}');
      return;
    }
    const rows = candlesFor(req).map((t) => {
      const [, o, hi, lo, c, v] = kline(t);
      return `${iso(t)},${o},${hi},${lo},${c},${v}`;
    });
    res.setHeader('content-type', 'text/csv');
    res.end(`open_time,open,high,low,close,volume\n${rows.join('\n')}\n`);
  } else if (url.pathname === '/api/html') {
    res.setHeader('content-type', 'text/html');
    res.end('<html><body>Rate limit page</body></html>');
  } else {
    res.statusCode = 503;
    res.end('down for maintenance');
  }
});

const home = tempHome('driftwood-price-source-');
const lakeDir = path.join(home, 'lake');
const lake = openObjectStore(`file://${lakeDir}`);
const env = {
  DRIFTWOOD_HOME: home,
  DRIFTWOOD_HTTP_RETRIES: '2',
  DRIFTWOOD_HTTP_BACKOFF_MS: '50',
  DRIFTWOOD_HTTP_TIMEOUT_MS: '5000',
};
let db: Warehouse;

async function cli(args: string[]): Promise<CliRun & { json: Record<string, unknown> }> {
  const r = await runCli(args, env);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  return { ...r, json: last.startsWith('{') ? JSON.parse(last) : {} };
}
const extract = (source: string, start: number, end: number, more: string[] = []) =>
  cli([
    'extract',
    '--dataset',
    'btc',
    '--source',
    source,
    '--interval',
    `${iso(start)}/${iso(end)}`,
    ...more,
  ]);
const ingest = () => cli(['ingest', '--dataset', 'btc']);
const readJson = async (key: string) => JSON.parse((await lake.get(key)).toString());

beforeAll(async () => {
  await new Promise<void>((r) => exchange.listen(PORT, '127.0.0.1', r));
  db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
});
afterAll(async () => {
  await db?.destroy();
  await new Promise((r) => exchange.close(r));
});

describe('driftwood extract --dataset btc', () => {
  it('lands one partition file per hour from the exchange, and ingest loads them', async () => {
    const r = await extract(`${BASE}/api/klines?symbol=BTCUSDT`, hour(0), hour(6));
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      source: { kind: 'http', location: `${BASE}/api/klines`, format: 'json' },
      interval: { start: '2026-11-20T00:00:00Z', end: '2026-11-20T06:00:00Z', hours: 6 },
      candles: { fetched: 6, landed: 6, quarantined: 0 },
      gaps: [],
      files: { written: 6, unchanged: 0, replaced: 0 },
      quarantineKey: null,
    });
    const keys = (await lake.list('raw/btc/')).map((o) => o.key);
    expect(keys).toEqual([0, 1, 2, 3, 4, 5].map((h) => `raw/btc/dt=2026-11-20/hr=0${h}/candles.csv`));
    expect((await lake.get(keys[2] as string)).toString()).toBe(
      'open_time,open,high,low,close,volume\n2026-11-20T02:00:00Z,40020,40045.5,39999.75,40025,12.5\n',
    );
    // The run's report is in the lake too.
    expect(await readJson(r.json.reportKey as string)).toEqual(r.json);

    const loaded = await ingest();
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.json).toMatchObject({ loaded: 6, quarantined: 0, rowsLoaded: 6, rowsRejected: 0 });
    const rows = await db('candles').orderBy('open_time').select('open_time', 'close', 'source_key');
    expect(rows.map((x) => Number(x.open_time))).toEqual([0, 1, 2, 3, 4, 5].map(hour));
    expect(Number(rows[2]?.close)).toBe(40_025);
  });

  it('is idempotent: the same interval again rewrites nothing and ingest loads nothing', async () => {
    const before = await lake.list('raw/btc/');
    const r = await extract(`${BASE}/api/klines?symbol=BTCUSDT`, hour(0), hour(6));
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      candles: { landed: 6 },
      files: { written: 0, unchanged: 6, replaced: 0 },
    });
    expect(await lake.list('raw/btc/')).toEqual(before); // same etags: same bytes, not even touched
    const again = await ingest();
    expect(again.json).toMatchObject({ loaded: 0, skipped: 6, rowsLoaded: 0 });
    expect(Number((await db('candles').count({ n: '*' }))[0]?.n)).toBe(6);
  });

  it('quarantines a bad series with a reason per candle, flags zero volume and reports gaps', async () => {
    const r = await extract(`${BASE}/api/bad`, hour(6), hour(12));
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      candles: { fetched: 8, landed: 3, quarantined: 4, identicalDuplicates: 1, outsideInterval: 0 },
      quarantinedByRule: {
        not_on_hour: 1,
        close_outside_range: 1,
        non_positive_price: 1,
        non_monotonic: 1,
      },
      anomalies: { zero_volume: ['2026-11-20T07:00:00Z'] },
      gaps: ['2026-11-20T08:00:00Z', '2026-11-20T10:00:00Z', '2026-11-20T11:00:00Z'],
      files: { written: 3 },
      quarantineKey: 'quarantine/btc/extract/2026-11-20T06-00-00Z_2026-11-20T12-00-00Z/candles.jsonl',
    });
    const reason = await readJson(`${r.json.quarantineKey}.reason.json`);
    expect(reason).toMatchObject({
      source: `${BASE}/api/bad`,
      file_status: 'landed',
      rows: { read: 8, landed: 3, quarantined: 4, identical_duplicates: 1 },
    });
    expect(reason.problems.map((p: { row: number; rule: string }) => [p.row, p.rule])).toEqual([
      [5, 'not_on_hour'],
      [6, 'close_outside_range'],
      [7, 'non_monotonic'],
      [8, 'non_positive_price'],
    ]);
    expect(reason.problems[1]).toMatchObject({
      column: 'close',
      value: 1,
      action: 'dropped_row',
      detail: 'close 1 is outside [low 40079.75, high 40125.5]',
    });
    const quarantined = (await lake.get(r.json.quarantineKey as string)).toString().trim().split('\n');
    expect(quarantined.map((l) => JSON.parse(l).row)).toEqual([5, 6, 7, 8]);

    const loaded = await ingest();
    expect(loaded.json).toMatchObject({ loaded: 3, rowsLoaded: 3 });
    const hours = await db('candles')
      .where('open_time', '>=', hour(6))
      .orderBy('open_time')
      .select('open_time', 'volume');
    expect(hours.map((x) => [Number(x.open_time), Number(x.volume)])).toEqual([
      [hour(6), 12.5],
      [hour(7), 0],
      [hour(9), 12.5],
    ]);
  });

  it('drops zero-volume candles to quarantine under --zero-volume drop', async () => {
    const r = await extract(`${BASE}/api/bad`, hour(7), hour(8), ['--zero-volume', 'drop']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      candles: { fetched: 8, landed: 0, quarantined: 1, outsideInterval: 7 },
      quarantinedByRule: { zero_volume: 1 },
      gaps: ['2026-11-20T07:00:00Z'],
      files: { written: 0, unchanged: 0, replaced: 0 },
    });
  });

  it('retries a 500 and then lands the CSV reply', async () => {
    requests = [];
    const r = await extract(`${BASE}/api/flaky.csv?from={start_ms}&to={end_ms}`, hour(12), hour(14));
    expect(r.code, r.stderr).toBe(0);
    expect(requests.map((q) => q.path)).toEqual(['/api/flaky.csv', '/api/flaky.csv']);
    expect(r.json).toMatchObject({ source: { format: 'csv' }, candles: { landed: 2 }, gaps: [] });
    expect((await ingest()).json).toMatchObject({ loaded: 2, rowsLoaded: 2 });
  });

  it('takes a file dropped in the lake, landing only the interval', async () => {
    const rows = [14, 15, 16, 17].map((h) => {
      const [, o, hi, lo, c, v] = kline(hour(h));
      return `${iso(hour(h))},${o},${hi},${lo},${c},${v}`;
    });
    await lake.put(
      'incoming/btc/2026-11-20.csv',
      `open_time,open,high,low,close,volume\n${rows.join('\n')}\n`,
    );
    const r = await extract('incoming/btc/2026-11-20.csv', hour(14), hour(16));
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      source: { kind: 'lake', location: 'incoming/btc/2026-11-20.csv', format: 'csv' },
      candles: { fetched: 4, landed: 2, outsideInterval: 2 },
      files: { written: 2 },
      gaps: [],
    });
    const loaded = await ingest();
    expect(loaded.json).toMatchObject({ loaded: 2, rowsLoaded: 2 });
  });

  it('rewrites an hour the source revised, and ingest replaces its row', async () => {
    const [, o, hi, lo] = kline(hour(14));
    const revised = `open_time,open,high,low,close,volume\n${iso(hour(14))},${o},${hi},${lo},40150,13\n`;
    await lake.put('incoming/btc/2026-11-20T14-revised.csv', revised);
    const r = await extract('incoming/btc/2026-11-20T14-revised.csv', hour(14), hour(15));
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ files: { written: 0, unchanged: 0, replaced: 1 } });
    const loaded = await ingest();
    expect(loaded.json).toMatchObject({ loaded: 1, rowsLoaded: 1 });
    const row = await db('candles')
      .where({ open_time: hour(14) })
      .select('close', 'volume');
    expect(row.map((x) => [Number(x.close), Number(x.volume)])).toEqual([[40_150, 13]]);
  });

  it('quarantines a reply that is not candles and fails without retry', async () => {
    const r = await extract(`${BASE}/api/html`, hour(16), hour(17));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('SCHEMA_MISMATCH');
    expect(r.stderr).toContain('missing column(s) open_time, open, high, low, close, volume');
    const key = 'quarantine/btc/extract/2026-11-20T16-00-00Z_2026-11-20T17-00-00Z/payload.csv';
    expect((await lake.get(key)).toString()).toContain('Rate limit page');
    expect(await readJson(`${key}.reason.json`)).toMatchObject({
      file_status: 'quarantined',
      rule: 'missing_column',
    });
  });

  it('fails as retryable when the exchange stays down, naming the status', async () => {
    requests = [];
    const r = await extract(`${BASE}/api/down`, hour(16), hour(17));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`HTTP_ERROR: price source ${BASE}/api/down answered HTTP 503`);
    expect(requests).toHaveLength(3); // DRIFTWOOD_HTTP_RETRIES=2: three attempts
  });

  it('refuses bad arguments by name', async () => {
    const noSource = await cli([
      'extract',
      '--dataset',
      'btc',
      '--interval',
      `${iso(hour(0))}/${iso(hour(1))}`,
    ]);
    expect(noSource.code).toBe(2);
    expect(noSource.stderr).toContain('--source is required');
    const empty = await extract('', hour(0), hour(1));
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('--source is empty');
    expect(empty.stderr).toContain('driftwood_btc_source');
    const inRaw = await extract('raw/btc/x.csv', hour(0), hour(1));
    expect(inRaw.code).toBe(2);
    expect(inRaw.stderr).toContain('drop price files outside raw/');
    const missing = await extract('incoming/btc/nope.csv', hour(0), hour(1));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("DATA_MISSING: --source: no object 'incoming/btc/nope.csv'");
    const policy = await extract('incoming/btc/2026-11-20.csv', hour(0), hour(1), ['--zero-volume', 'fill']);
    expect(policy.stderr).toContain("--zero-volume: expected keep or drop, got 'fill'");
  });

  it('holds every landed hour exactly once in the warehouse after all runs', async () => {
    const again = await ingest();
    expect(again.json).toMatchObject({ loaded: 0, rowsLoaded: 0 });
    const rows = await db('candles').orderBy('open_time').select('open_time');
    const expected = [0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15].map(hour);
    expect(rows.map((x) => Number(x.open_time))).toEqual(expected);
    const ledger = await db('ingest_ledger').where({ dataset: 'btc' }).select('object_key', 'status');
    expect(ledger).toHaveLength(expected.length);
    expect(new Set(ledger.map((e) => e.status))).toEqual(new Set(['loaded']));
  });
});
