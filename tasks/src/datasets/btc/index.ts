import { DriftwoodError } from '../../errors.js';
import type { DatasetSimulator } from '../types.js';
import { candleFiles, simulateCandles } from './simulate.js';

/** Hourly OHLCV candles for the `time_windows` builder. */
export const candleSimulator: DatasetSimulator = {
  describe: 'hourly OHLCV candles',
  check: (r) => {
    if (r.drift) throw new DriftwoodError('USAGE', '--drift: the candle simulator has no drift scenarios');
  },
  simulate: (r) => ({
    files: candleFiles(simulateCandles({ start: r.start, hours: r.hours, seed: r.seed }).candles, r.dataset),
    planted: [],
  }),
};
