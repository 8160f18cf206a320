import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import { forecastKind } from './forecast.js';
import { tabularKind } from './tabular.js';
import type { TaskKind } from './types.js';

export type * from './types.js';

/** The task kind of a dataset, from its contract: the one place that tells a forecast from a table. */
export function kindOf(contract: Contract): TaskKind {
  if (contract.task === 'sequence_forecast') return forecastKind;
  if (contract.task === 'binary_classification') return tabularKind;
  throw new DriftwoodError(
    'CONFIG_INVALID',
    `contract ${contract.dataset}: task '${contract.task}' is not supported yet (binary_classification and sequence_forecast are)`,
  );
}
