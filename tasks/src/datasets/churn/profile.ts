import type { Contract } from '../../contracts/types.js';
import type { TabularProfile } from '../../features/profile-types.js';
import { HOUR_MS } from '../../time.js';
import { engineOf } from '../../warehouse/engine.js';
import { churnBehaviourChecks } from './behaviour.js';
import {
  buildChurnColumns,
  buildChurnRows,
  CHURN_CATEGORICAL,
  CHURN_NUMERIC,
  defaultCutoff as churnDefaultCutoff,
} from './builder.js';
import { churnSigns } from './directions.js';

const hourFloor = (t: number) => Math.floor(t / HOUR_MS) * HOUR_MS;

/**
 * The `churn_activity` builder: per-customer activity aggregates as of a cutoff, labelled by a
 * cancellation within the horizon after it, with the known directions of the inputs and the
 * behavioural checks a churn model must pass.
 */
export function churnActivityProfile(contract: Contract): TabularProfile {
  return {
    dataset: contract.dataset,
    builder: 'churn_activity',
    idName: 'customer_id',
    numeric: CHURN_NUMERIC,
    categorical: CHURN_CATEGORICAL,
    segmentColumns: ['plan', 'region'],
    cutoffAsOf: (asOf, horizon, delay) => hourFloor(asOf) - (horizon + delay) * HOUR_MS,
    defaultCutoff: churnDefaultCutoff,
    latestAsOf: async (db, horizon, delay) => {
      const cutoff = await churnDefaultCutoff(db, horizon, delay);
      return cutoff === undefined ? undefined : cutoff + (horizon + delay) * HOUR_MS;
    },
    build: (db, cutoff, horizon) => buildChurnRows(db, cutoff, horizon, { contract }),
    // Only DuckDB hands back columns; the warehouse's columns would be its rows turned over.
    buildColumns: async (db, cutoff, horizon) =>
      engineOf(db) === 'duckdb' ? buildChurnColumns(db, cutoff, horizon, { contract }) : undefined,
    parquetTables: ['customers', 'labels', 'events'],
    // No horizon: the label is not known yet, only the inputs are used.
    rowOf: async (db, asOf, id) => (await buildChurnRows(db, asOf, 0, { customerId: id }))[0]?.features,
    signs: churnSigns,
    behaviour: churnBehaviourChecks,
  };
}
