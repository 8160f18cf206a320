import { CANDLE_COLUMNS } from '../forecast/candles.js';
import { forecastConfig } from '../forecast/settings.js';
import { loadCandles, loadLatestCandles } from '../forecast/windows.js';
import type { SnapshotColumn } from '../snapshot/types.js';
import { HOUR_MS } from '../time.js';
import type { TaskKind } from './types.js';

const CANDLE_SCHEMA: SnapshotColumn[] = [
  { name: 'open_time', type: 'string' },
  ...CANDLE_COLUMNS.slice(1).map((name) => ({ name, type: 'double' as const })),
];

/**
 * A sequence forecast on an hourly series: a snapshot holds the closed candles before the as-of
 * hour, in time order, from which the forecast's windows are built.
 */
export const forecastKind: TaskKind = {
  name: 'sequence_forecast',
  snapshotTable: async (contract, window, db) => {
    const cfg = forecastConfig(contract);
    const cutoff = Math.floor(window.asOf / HOUR_MS) * HOUR_MS;
    const candles = await loadCandles(db, cutoff, cfg.table);
    return {
      schema: CANDLE_SCHEMA,
      rows: candles.map((c) => [
        new Date(c.openTime).toISOString(),
        c.open,
        c.high,
        c.low,
        c.close,
        c.volume,
      ]),
      cutoff,
      horizonHours: cfg.horizonHours,
      positives: 0,
      required: CANDLE_SCHEMA.length,
    };
  },
  latestAsOf: async (contract, db) => {
    const last = (await loadLatestCandles(db, 1, forecastConfig(contract).table))[0];
    return last && last.openTime + HOUR_MS;
  },
};
