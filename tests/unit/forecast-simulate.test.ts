import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadContract } from '../../tasks/src/contracts/index.js';
import { validateRow } from '../../tasks/src/contracts/rows.js';
import { parseCsv } from '../../tasks/src/csv.js';
import { candleFiles, simulateCandles } from '../../tasks/src/datasets/btc/simulate.js';
import { openObjectStore } from '../../tasks/src/lake/object-store.js';
import { runSimulate } from '../../tasks/src/simulate/index.js';
import { silentLog, tempHome } from '../support/env.js';

const START = Date.parse('2026-01-01T00:00:00Z');
const H = 3_600_000;

const returns = (closes: number[]) => closes.slice(1).map((c, i) => Math.log(c / (closes[i] as number)));
function autocorrelation(x: number[], lag = 1): number {
  const m = x.reduce((a, b) => a + b, 0) / x.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    den += ((x[i] as number) - m) ** 2;
    if (i >= lag) num += ((x[i] as number) - m) * ((x[i - lag] as number) - m);
  }
  return num / den;
}

describe('candle simulator', () => {
  const sim = simulateCandles({ start: START, hours: 3000, seed: 42 });
  const closes = sim.candles.map((c) => c.close);

  it('is deterministic: the same seed gives the same candles, another seed others', () => {
    expect(simulateCandles({ start: START, hours: 3000, seed: 42 })).toEqual(sim);
    expect(simulateCandles({ start: START, hours: 3000, seed: 43 }).candles[10]).not.toEqual(sim.candles[10]);
  });

  it('gives valid hourly candles with gaps where the feed stopped', () => {
    expect(sim.missing.length).toBeGreaterThan(0);
    expect(sim.candles.length + sim.missing.length).toBe(3000);
    const times = new Set(sim.candles.map((c) => c.openTime));
    for (const t of sim.missing) expect(times.has(t)).toBe(false);
    for (const c of sim.candles) {
      expect((c.openTime - START) % H).toBe(0);
      expect(c.low).toBeGreaterThan(0);
      expect(c.high).toBeGreaterThanOrEqual(Math.max(c.open, c.close));
      expect(c.low).toBeLessThanOrEqual(Math.min(c.open, c.close));
      expect(c.volume).toBeGreaterThan(0);
    }
  });

  it('clusters volatility: squared returns are autocorrelated far more than returns', () => {
    const r = returns(closes);
    const squared = autocorrelation(r.map((v) => v * v));
    expect(squared).toBeGreaterThan(0.1);
    expect(squared).toBeGreaterThan(
      Math.abs(
        autocorrelation(
          returns(
            simulateCandles({ start: START, hours: 3000, seed: 42, autocorrelation: 0 }).candles.map(
              (c) => c.close,
            ),
          ),
        ),
      ) * 3,
    );
  });

  it('changes regime: the volatility of calm and turbulent weeks differs several-fold', () => {
    const r = returns(closes);
    const week = 168;
    const vols: number[] = [];
    for (let i = 0; i + week <= r.length; i += week) {
      const part = r.slice(i, i + week);
      vols.push(Math.sqrt(part.reduce((a, b) => a + b * b, 0) / part.length));
    }
    expect(Math.max(...vols) / Math.min(...vols)).toBeGreaterThan(2);
  });

  it('has momentum by default and none as a random walk', () => {
    expect(autocorrelation(returns(closes))).toBeGreaterThan(0.15);
    const walk = simulateCandles({ start: START, hours: 3000, seed: 42, autocorrelation: 0, drift: 0 });
    expect(Math.abs(autocorrelation(returns(walk.candles.map((c) => c.close))))).toBeLessThan(0.06);
  });

  it('writes one candles.csv per hour that the btc contract accepts', async () => {
    const files = candleFiles(sim.candles.slice(0, 3), 'btc');
    expect([...files.keys()]).toEqual([
      'raw/btc/dt=2026-01-01/hr=00/candles.csv',
      'raw/btc/dt=2026-01-01/hr=01/candles.csv',
      'raw/btc/dt=2026-01-01/hr=02/candles.csv',
    ]);
    const contract = await loadContract('btc');
    const table = contract.tables[0];
    if (!table) throw new Error('btc has a table');
    for (const body of files.values()) {
      const { rows } = parseCsv(body);
      expect(rows).toHaveLength(1);
      expect(validateRow(rows[0] as Record<string, string>, 1, table, true).status).toBe('good');
    }
    // A negative price is dropped per the contract.
    const bad = { ...parseCsv([...files.values()][0] as string).rows[0], close: '-1' };
    expect(validateRow(bad, 1, table, true).status).toBe('dropped');
  });

  it('lands through runSimulate for a sequence_forecast dataset, and a re-run changes nothing', async () => {
    const home = tempHome('driftwood-forecast-sim-');
    const lake = openObjectStore(`file://${path.join(home, 'lake')}`);
    const options = { dataset: 'btc', start: START, hours: 48, seed: 7, entities: 0, labelDelayHours: 0 };
    const first = await runSimulate(options, { lake, log: silentLog });
    expect(first.files).toBe(simulateCandles({ start: START, hours: 48, seed: 7 }).candles.length);
    expect(first.firstKey).toMatch(/^raw\/btc\/dt=2026-01-01\/hr=\d\d\/candles\.csv$/);
    const again = await runSimulate(options, { lake, log: silentLog });
    expect(again.unchanged).toBe(first.files);
  });
});
