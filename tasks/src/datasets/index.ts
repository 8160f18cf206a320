import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import type { TabularProfile } from '../features/profile-types.js';
import { candleSimulator } from './btc/index.js';
import { churnSimulator } from './churn/index.js';
import { churnActivityProfile } from './churn/profile.js';
import type { DatasetSimulator } from './types.js';

export type * from './types.js';

/**
 * Dataset-specific code lives in one folder per dataset (datasets/<name>/); the generic steps reach
 * it through this registry, keyed by the contract's builder, never by asking which dataset it is.
 */
const SIMULATORS: Partial<Record<Contract['builder'], DatasetSimulator>> = {
  churn_activity: churnSimulator,
  time_windows: candleSimulator,
};

export function simulatorFor(contract: Contract): DatasetSimulator {
  const simulator = SIMULATORS[contract.builder];
  if (!simulator)
    throw new DriftwoodError(
      'USAGE',
      `--dataset ${contract.dataset}: nothing simulates builder '${contract.builder}' data (simulated: ${Object.keys(
        SIMULATORS,
      ).join(', ')}); land its files under raw/${contract.dataset}/ instead`,
    );
  return simulator;
}

/** Tabular builders a dataset folder provides (the generic `columns` builder is in features/). */
const PROFILES: Partial<Record<Contract['builder'], (contract: Contract) => TabularProfile>> = {
  churn_activity: churnActivityProfile,
};

export function registeredProfile(contract: Contract): TabularProfile | undefined {
  return PROFILES[contract.builder]?.(contract);
}
