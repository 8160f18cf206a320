import type { BehaviourCheck, Scorer } from '../evaluate/behaviour.js';
import type { Warehouse } from '../warehouse/db.js';
import type { FeatureColumns } from './columns.js';
import type { LabelledRow, RawFeatures } from './rows.js';
import type { Row } from './transform.js';

/**
 * What the tabular steps (snapshot, features, train, evaluate, promote) need to know of a dataset,
 * decided by its contract's builder: the input fields, how rows are built as of a cutoff, which
 * columns are segments, the known directions of the inputs and the behavioural checks a model must
 * pass. Nothing outside the builders names a dataset's columns.
 */
export interface TabularProfile {
  dataset: string;
  builder: string;
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
  /**
   * The rows `build` builds, as typed columns, when the builder builds columns natively on the
   * warehouse handle's feature engine; undefined when it does not (the steps then use `build`).
   */
  buildColumns?(db: Warehouse, cutoff: number, horizonHours: number): Promise<FeatureColumns | undefined>;
  /**
   * Warehouse tables the DuckDB feature engine reads as Parquet from the lake; ingest keeps them in
   * step when that engine is configured (warehouse/columnar.ts).
   */
  parquetTables?: readonly string[];
  /**
   * One id's raw inputs as of `asOf`, by the statement `build` runs filtered to that id (the API
   * scores by id with it); undefined when `build` would leave the id out. Makes no tables.
   */
  rowOf(db: Warehouse, asOf: number, id: string): Promise<RawFeatures | undefined>;
  /** +1 / −1 / 0 per transform output: the sign a constrained linear model must keep. */
  signs(outputs: readonly string[]): Int8Array;
  behaviour(rows: readonly Row[], score: Scorer, threshold: number): BehaviourCheck[];
}
