import { DriftwoodError } from '../../errors.js';
import type { DatasetSimulator, SimulationRequest } from '../types.js';
import { plantAnomalies } from './anomalies.js';
import { parseDrift } from './drift.js';
import { simulateChurn } from './simulate.js';

const driftOf = (r: SimulationRequest) => (r.drift ? parseDrift(r.drift.spec, r.drift.from) : undefined);

/** Customer activity (customers, events, labels) for the `churn_activity` builder. */
export const churnSimulator: DatasetSimulator = {
  describe: 'customer activity files (customers, events, labels)',
  check: (r) => {
    driftOf(r);
    const share = r.anomalies ?? 0;
    if (!(share >= 0 && share <= 1))
      throw new DriftwoodError('USAGE', `--anomalies: expected a share from 0 to 1, got '${r.anomalies}'`);
  },
  simulate: (r) => {
    const drift = driftOf(r);
    const clean = simulateChurn(
      {
        start: r.start,
        hours: r.hours,
        seed: r.seed,
        customers: r.entities,
        labelDelayHours: r.labelDelayHours,
        ...(drift ? { driftSpec: drift } : {}),
      },
      r.dataset,
    );
    return plantAnomalies(clean, r.anomalies ?? 0, r.seed);
  },
};
