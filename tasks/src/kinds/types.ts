import type { Contract } from '../contracts/types.js';
import type { SnapshotTable } from '../snapshot/types.js';
import type { Warehouse } from '../warehouse/db.js';

/** The label window a tabular snapshot is cut with (a forecast's comes from its contract). */
export interface LabelWindow {
  horizonHours: number;
  labelDelayHours: number;
}

/**
 * What the generic steps need of a kind of task (tabular classification, sequence forecast): the
 * one place that knows how its data is shaped. Steps ask `kindOf(contract)` once and never which
 * kind they hold.
 */
export interface TaskKind {
  name: 'tabular_classification' | 'sequence_forecast';
  /** The snapshot's table as of a time: columns, rows in a canonical order, cutoff. */
  snapshotTable(
    contract: Contract,
    window: LabelWindow & { asOf: number },
    db: Warehouse,
  ): Promise<SnapshotTable>;
  /** The newest as-of time the warehouse's data allows; undefined when it holds none. */
  latestAsOf(contract: Contract, db: Warehouse, window: LabelWindow): Promise<number | undefined>;
}
