import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openObjectStore, openWarehouse } from '@driftwood/tasks';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTRACTS_DIR } from '../../tasks/src/contracts/index.js';
import { runCli, tempHome } from '../support/env.js';

/**
 * A price file in the user's own shape through the built CLI: columns named otherwise and epoch
 * seconds. Without a mapping the extract step refuses it in one line naming the contract lines to
 * add, and still writes its result; with `source.columns` in the contract the same file lands, and
 * ingest loads the candles at the right hours.
 */
const H = 3_600_000;
const T0 = Date.parse('2026-11-20T00:00:00Z');
const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
const KEY = 'incoming/btc/export.csv';
const FILE = `timestamp,o,h,l,c,v\n${[0, 1, 2]
  .map((i) => `${T0 / 1000 + i * 3600},${100 + i},${111 + i},${99 + i},${101 + i},${5 + i}`)
  .join('\n')}\n`;

describe('driftwood extract with the contract mapping a source', () => {
  const home = tempHome('driftwood-source-mapping-');
  const contracts = mkdtempSync(path.join(os.tmpdir(), 'driftwood-source-contracts-'));
  const env = { DRIFTWOOD_HOME: home, DRIFTWOOD_CONTRACTS_DIR: contracts, LOG_LEVEL: 'warn' };
  const btc = readFileSync(path.join(DEFAULT_CONTRACTS_DIR, 'btc.yaml'), 'utf8');
  const extract = () =>
    runCli(
      ['extract', '--dataset', 'btc', '--source', KEY, '--interval', `${iso(T0)}/${iso(T0 + 3 * H)}`],
      env,
    );

  it('refuses the file in one line naming the mapping, writing its result', async () => {
    writeFileSync(path.join(contracts, 'btc.yaml'), btc);
    await openObjectStore(`file://${path.join(home, 'lake')}`).put(KEY, FILE);
    const r = await extract();
    expect(r.code).toBe(2);
    const failure = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.includes('SCHEMA_MISMATCH'));
    expect(failure).toHaveLength(1);
    expect(failure[0]).toContain(
      'missing column(s) open_time, open, high, low, close, volume (the file has timestamp, o, h, l, c, v); map them in the contract: source.columns.open_time: <your column>, source.columns.open: <your column>',
    );
    const result = JSON.parse(readFileSync(path.join(home, 'results', 'extract.json'), 'utf8'));
    expect(result).toMatchObject({
      dataset: 'btc',
      source: { kind: 'lake', location: KEY },
      quarantinedByRule: { missing_column: 1 },
      files: { written: 0 },
    });
    expect(result.gaps).toHaveLength(3);
  });

  it('lands and loads the same file once the contract maps its columns (epoch seconds by magnitude)', async () => {
    const mapped = `${btc.trimEnd()}
source:
  columns: { open_time: timestamp, open: o, high: h, low: l, close: c, volume: v }
`;
    writeFileSync(path.join(contracts, 'btc.yaml'), mapped);
    const r = await extract();
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(path.join(home, 'results', 'extract.json'), 'utf8'));
    expect(result).toMatchObject({
      candles: { fetched: 3, landed: 3, quarantined: 0 },
      files: { written: 3 },
    });
    expect(result.files.keys[0]).toBe('raw/btc/dt=2026-11-20/hr=00/candles.csv');

    const ingest = await runCli(['ingest', '--dataset', 'btc'], env);
    expect(ingest.code, ingest.stderr).toBe(0);
    const db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    try {
      const rows = await db('candles').orderBy('open_time').select('open_time', 'close');
      expect(rows.map((x) => [Number(x.open_time), Number(x.close)])).toEqual([
        [T0, 101],
        [T0 + H, 102],
        [T0 + 2 * H, 103],
      ]);
    } finally {
      await db.destroy();
    }
  });
});
