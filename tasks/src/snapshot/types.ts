/** The contract a snapshot's columns keep, and what a task kind hands the snapshot step. */
export interface SnapshotColumn {
  name: string;
  type: 'string' | 'double' | 'integer';
  /** `time`: the row's time (epoch ms), kept for a `time` split; not an input of the model. */
  role?: 'time';
}

/** A snapshot's table before it is written: its columns, its rows in a canonical order, its cutoff. */
export interface SnapshotTable {
  schema: SnapshotColumn[];
  rows: unknown[][];
  cutoff: number;
  horizonHours: number;
  positives: number;
  /** The leading columns that may not be null. */
  required: number;
}
