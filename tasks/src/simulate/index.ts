import { loadContract } from '../contracts/index.js';
import { simulatorFor } from '../datasets/index.js';
import type { SimulationRequest } from '../datasets/types.js';
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
  /** The anomalies planted, by file and kind (only with `anomalies` > 0). */
  planted?: { key: string; kind: string }[];
}

/**
 * Writes simulated raw files into the lake, made by the simulator registered for the dataset's builder. Re-running with the same options leaves identical files
 * untouched, so their etags stay and ingest sees nothing new.
 */
export async function runSimulate(
  options: SimulateOptions,
  deps: { lake: ObjectStore; log: Logger },
): Promise<SimulateResult> {
  const simulator = simulatorFor(await loadContract(options.dataset, options.contractsDir));
  simulator.check(options);
  const { files, planted } = simulator.simulate(options);
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
