import { loadContract } from '../contracts/index.js';
import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import {
  type BehaviourCheck,
  churnBehaviourChecks,
  invarianceCheck,
  type Scorer,
} from '../evaluate/behaviour.js';
import type { Row } from '../features/transform.js';
import { ensureContractTables, storedName } from '../ingest/schema.js';
import { HOUR_MS } from '../time.js';
import { churnSigns } from '../train/directions.js';
import type { Warehouse } from '../warehouse/db.js';
import {
  buildChurnRows,
  CHURN_CATEGORICAL,
  CHURN_NUMERIC,
  defaultCutoff as churnDefaultCutoff,
  type LabelledRow,
} from './churn-builder.js';
import { buildColumnRows, columnsLayout, latestPartitionEnd } from './columns-builder.js';

/**
 * What the tabular steps (snapshot, features, train, evaluate, promote) need to know of a dataset,
 * decided by its contract's builder: the input fields, how rows are built as of a cutoff, which
 * columns are segments, the known directions of the inputs and the behavioural checks a model must
 * pass. Nothing outside the builders names a dataset's columns.
 */
export interface TabularProfile {
  dataset: string;
  builder: 'churn_activity' | 'columns';
  /** The name rows are identified by in outputs (snapshots, feature files). */
  idName: string;
  numeric: readonly string[];
  categorical: readonly string[];
  segmentColumns: readonly string[];
  /** The cutoff of a snapshot taken at `asOf`: what the labels of the whole horizon allow. */
  cutoffAsOf(asOf: number, horizonHours: number, labelDelayHours: number): number;
  /** The as-of time of the newest data: a snapshot then has the newest cutoff the data allows. */
  latestAsOf(db: Warehouse, horizonHours: number, labelDelayHours: number): Promise<number | undefined>;
  /** The newest cutoff the warehouse's data allows; undefined when it holds none. */
  defaultCutoff(db: Warehouse, horizonHours: number, labelDelayHours: number): Promise<number | undefined>;
  build(db: Warehouse, cutoff: number, horizonHours: number): Promise<LabelledRow[]>;
  /** +1 / −1 / 0 per transform output: the sign a constrained linear model must keep. */
  signs(outputs: readonly string[]): Int8Array;
  behaviour(rows: readonly Row[], score: Scorer, threshold: number): BehaviourCheck[];
}

const hourFloor = (t: number) => Math.floor(t / HOUR_MS) * HOUR_MS;

/**
 * The profile of a contract, whose reads first make the dataset's tables from the contract (a no-op
 * once they exist): a warehouse nothing was loaded into yet answers "no data", not a SQL error.
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
  };
}

function profileOf(contract: Contract): TabularProfile {
  if (contract.builder === 'churn_activity')
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
      build: buildChurnRows,
      signs: churnSigns,
      behaviour: churnBehaviourChecks,
    };
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
