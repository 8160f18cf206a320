import type { AirflowClient } from '../airflow/client.js';
import { loadContract } from '../contracts/index.js';
import { simulatorFor } from '../datasets/index.js';
import type { SimulationRequest } from '../datasets/types.js';
import { type LandingEvent, RawLander } from '../lake/landing.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';

export interface SimulateOptions extends SimulationRequest {
  /** Where contracts/<dataset>.yaml is read from (its builder names the simulator). */
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
  /** The asset event that starts the pipeline on the newest landed partition, or why none was posted. */
  landing: LandingEvent;
  /** The anomalies planted, by file and kind (only with `anomalies` > 0). */
  planted?: { key: string; kind: string }[];
}

/**
 * Writes simulated raw files into the lake, made by the simulator registered for the dataset's builder. Re-running with the same options leaves identical files
 * untouched, so their etags stay and ingest sees nothing new.
 */
export async function runSimulate(
  options: SimulateOptions,
  deps: { lake: ObjectStore; log: Logger; airflow?: AirflowClient },
): Promise<SimulateResult> {
  const simulator = simulatorFor(await loadContract(options.dataset, options.contractsDir));
  simulator.check(options);
  const { files, planted } = simulator.simulate(options);
  const lander = new RawLander(options.dataset, 'simulate', deps);
  let bytes = 0;
  const keys = [...files.keys()];
  let done = 0;
  for (const [key, body] of files) {
    await lander.land(key, body);
    bytes += Buffer.byteLength(body);
    if (++done % 48 === 0) deps.log.info({ done, total: keys.length }, 'simulate: writing files');
  }
  return {
    dataset: options.dataset,
    files: files.size,
    unchanged: lander.unchanged,
    bytes,
    firstKey: keys[0],
    lastKey: keys.at(-1),
    landing: await lander.announce(),
    ...(planted.length > 0 ? { planted } : {}),
  };
}
