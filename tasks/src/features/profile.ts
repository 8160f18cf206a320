import { loadContract } from '../contracts/index.js';
import type { Contract } from '../contracts/types.js';
import { registeredProfile } from '../datasets/index.js';
import { DriftwoodError } from '../errors.js';
import { invarianceCheck } from '../evaluate/behaviour.js';
import { ensureContractTables, storedName } from '../ingest/schema.js';
import { HOUR_MS } from '../time.js';
import type { Warehouse } from '../warehouse/db.js';
import { buildColumnRows, columnsLayout, latestPartitionEnd } from './columns-builder.js';
import type { TabularProfile } from './profile-types.js';

export type { TabularProfile } from './profile-types.js';

const hourFloor = (t: number) => Math.floor(t / HOUR_MS) * HOUR_MS;

/**
 * The profile of a contract, whose reads first make the dataset's tables from the contract (a no-op
 * once they exist): a warehouse nothing was loaded into yet answers "no data", not a SQL error.
 * `rowOf` is left as it is: the API reads one id per request and makes no tables.
 */
export function tabularProfile(contract: Contract): TabularProfile {
  const profile = profileOf(contract);
  const ready = (db: Warehouse) => ensureContractTables(db, contract);
  return {
    ...profile,
    defaultCutoff: async (db, horizon, delay) => {
      await ready(db);
      return profile.defaultCutoff(db, horizon, delay);
    },
    latestAsOf: async (db, horizon, delay) => {
      await ready(db);
      return profile.latestAsOf(db, horizon, delay);
    },
    build: async (db, cutoff, horizon) => {
      await ready(db);
      return profile.build(db, cutoff, horizon);
    },
    ...(profile.buildColumns
      ? {
          buildColumns: async (db: Warehouse, cutoff: number, horizon: number) => {
            await ready(db);
            return profile.buildColumns?.(db, cutoff, horizon);
          },
        }
      : {}),
  };
}

function profileOf(contract: Contract): TabularProfile {
  const registered = registeredProfile(contract);
  if (registered) return registered;
  if (contract.builder === 'columns') {
    if (contract.task !== 'binary_classification')
      throw new DriftwoodError(
        'CONFIG_INVALID',
        `contract ${contract.dataset}: task '${contract.task}' with builder 'columns' is not supported yet (binary_classification is)`,
      );
    const layout = columnsLayout(contract);
    // Ids and PII must never move a prediction: every one gets a stand-in value in the check.
    const invariant = Object.fromEntries(
      layout.table.columns
        .filter((c) => c.role === 'id' || c.role === 'pii')
        .flatMap((c) => [
          [c.name, 'INVARIANCE-0000'],
          [storedName(c), 'INVARIANCE-0000'],
        ]),
    );
    return {
      dataset: contract.dataset,
      builder: 'columns',
      idName: layout.id.name,
      numeric: layout.numeric,
      categorical: layout.categorical,
      segmentColumns: layout.segments,
      cutoffAsOf: (asOf) => hourFloor(asOf),
      defaultCutoff: (db) => latestPartitionEnd(db, layout),
      latestAsOf: (db) => latestPartitionEnd(db, layout),
      build: (db, cutoff) => buildColumnRows(db, contract, layout, cutoff),
      rowOf: async (db, asOf, id) => (await buildColumnRows(db, contract, layout, asOf, id))[0]?.features,
      signs: (outputs) => new Int8Array(outputs.length),
      behaviour: (rows, score) => [invarianceCheck(rows, score, invariant)],
    };
  }
  throw new DriftwoodError(
    'USAGE',
    `dataset ${contract.dataset}: builder '${contract.builder}' builds sequences, not a table of rows`,
  );
}

/** The profile of a dataset, from the given contract or contracts/<dataset>.yaml. */
export async function loadTabularProfile(options: {
  dataset: string;
  contract?: Contract;
  contractsDir?: string;
}): Promise<TabularProfile> {
  return tabularProfile(options.contract ?? (await loadContract(options.dataset, options.contractsDir)));
}
