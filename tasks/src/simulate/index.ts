import { DriftwoodError } from '../errors.js';
import { isForecastDataset } from '../forecast/settings.js';
import { candleFiles, simulateCandles } from '../forecast/simulate.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import { type PlantedAnomaly, plantAnomalies } from './anomalies.js';
import { simulateChurn } from './churn.js';
import type { DriftSpec } from './drift.js';

export interface SimulateOptions {
  dataset: string;
  start: number;
  hours: number;
  seed: number;
  customers: number;
  labelDelayHours: number;
  /** Share of files given one anomaly (see anomalies.ts); 0 or unset leaves the files clean. */
  anomalies?: number;
  /** A change of the simulated world from an hour on (drift.ts: `parseDrift`). */
  driftSpec?: DriftSpec;
  /** Where contracts/<dataset>.yaml is read from (to tell a forecast dataset). */
  contractsDir?: string;
}

export interface SimulateResult {
  dataset: string;
  files: number;
  /** Files left as they were because the lake already held the same bytes (a re-run). */
  unchanged: number;
  bytes: number;
  firstKey: string | undefined;
  lastKey: string | undefined;
  /** The anomalies planted, by file and kind (only with `anomalies` > 0). */
  planted?: PlantedAnomaly[];
}

/**
 * Writes simulated raw files into the lake. Re-running with the same options leaves identical files
 * untouched, so their etags stay and ingest sees nothing new.
 */
export async function runSimulate(
  options: SimulateOptions,
  deps: { lake: ObjectStore; log: Logger },
): Promise<SimulateResult> {
  // A sequence_forecast dataset (per its contract) gets simulated hourly candles.
  const candles =
    options.dataset !== 'churn' && (await isForecastDataset(options.dataset, options.contractsDir));
  if (options.dataset !== 'churn' && !candles) {
    throw new DriftwoodError(
      'USAGE',
      `--dataset: the simulator knows 'churn' and sequence_forecast datasets, got '${options.dataset}'`,
    );
  }
  if (options.anomalies !== undefined && !(options.anomalies >= 0 && options.anomalies <= 1))
    throw new DriftwoodError(
      'USAGE',
      `--anomalies: expected a share from 0 to 1, got '${options.anomalies}'`,
    );
  const clean = candles
    ? candleFiles(
        simulateCandles({ start: options.start, hours: options.hours, seed: options.seed }).candles,
        options.dataset,
      )
    : simulateChurn(options, options.dataset);
  const { files, planted } = plantAnomalies(clean, candles ? 0 : (options.anomalies ?? 0), options.seed);
  let bytes = 0;
  const keys = [...files.keys()];
  let done = 0;
  let unchanged = 0;
  for (const [key, body] of files) {
    const existing = await deps.lake.get(key).catch(() => undefined);
    if (existing?.equals(Buffer.from(body))) unchanged++;
    else await deps.lake.put(key, body);
    bytes += Buffer.byteLength(body);
    if (++done % 48 === 0) deps.log.info({ done, total: keys.length }, 'simulate: writing files');
  }
  return {
    dataset: options.dataset,
    files: files.size,
    unchanged,
    bytes,
    firstKey: keys[0],
    lastKey: keys.at(-1),
    ...(planted.length > 0 ? { planted } : {}),
  };
}
