import { DriftwoodError } from '../errors.js';
import type { SnapshotRows } from '../snapshot/index.js';
import type { Warehouse } from '../warehouse/db.js';
import { type FeatureColumns, takeColumns } from './columns.js';
import type { TabularProfile } from './profile.js';
import type { LabelledRow } from './rows.js';
import { assignSplits, type Split, type SplitStrategy, splitOf } from './split.js';
import {
  fitTransform,
  fitTransformColumns,
  type TransformOptions,
  type TransformState,
} from './transform.js';

export type { Split } from './split.js';

/** Where a step's rows come from: a snapshot, else the warehouse as of `cutoff` (or the default one). */
export interface LoadOptions {
  dataset: string;
  snapshot?: SnapshotRows;
  cutoff?: number;
  horizonHours: number;
  labelDelayHours: number;
}

/**
 * The labelled rows a step works on and their cutoff: a snapshot's, when one is given, else built
 * from the warehouse as of `cutoff` (by default the latest one whose labels have all arrived).
 */
export async function loadRows(
  db: Warehouse,
  profile: TabularProfile,
  options: LoadOptions,
): Promise<{ cutoff: number; rows: LabelledRow[] }> {
  if (options.snapshot)
    return { cutoff: Date.parse(options.snapshot.manifest.cutoff), rows: options.snapshot.rows };
  const cutoff = await cutoffOf(db, profile, options);
  return { cutoff, rows: await profile.build(db, cutoff, options.horizonHours) };
}

/**
 * `loadRows` as typed columns, when there is no snapshot and the profile builds columns on the
 * warehouse handle's feature engine (`buildColumns`). Undefined without a `buildColumns` or with a
 * snapshot; `table` undefined when the engine builds no columns: `loadRows` then applies (given the
 * cutoff found here, so it is not looked up twice).
 */
export async function loadColumns(
  db: Warehouse,
  profile: TabularProfile,
  options: LoadOptions,
): Promise<{ cutoff: number; table?: FeatureColumns } | undefined> {
  if (options.snapshot || !profile.buildColumns) return undefined;
  const cutoff = await cutoffOf(db, profile, options);
  const table = await profile.buildColumns(db, cutoff, options.horizonHours);
  return table ? { cutoff, table } : { cutoff };
}

async function cutoffOf(
  db: Warehouse,
  profile: TabularProfile,
  options: Omit<LoadOptions, 'snapshot'>,
): Promise<number> {
  const cutoff =
    options.cutoff ?? (await profile.defaultCutoff(db, options.horizonHours, options.labelDelayHours));
  if (cutoff === undefined)
    throw new DriftwoodError(
      'DATA_MISSING',
      `no events in the warehouse for '${options.dataset}': run 'driftwood ingest' first`,
    );
  return cutoff;
}

/**
 * Splits rows by the contract's strategy (assignSplits: a hash of the row id and the seed, or the
 * row's time), and fits the transform on the training split only. Training and the features step both call this, so for the same rows and seed they
 * hold the very same fitted state.
 */
export function splitAndFit(
  profile: Pick<TabularProfile, 'numeric' | 'categorical'>,
  rows: readonly LabelledRow[],
  seed: number,
  fractions: { holdout: number; validation: number; strategy?: SplitStrategy },
  overrides?: Partial<TransformOptions>,
): { split: Split[]; parts: Record<Split, LabelledRow[]>; state: TransformState } {
  const split = assignSplits(
    rows.map((r) => ({ id: r.customerId, time: r.time })),
    seed,
    { strategy: fractions.strategy ?? 'hash', holdout: fractions.holdout, validation: fractions.validation },
  );
  const parts: Record<Split, LabelledRow[]> = { train: [], validation: [], holdout: [] };
  rows.forEach((r, i) => {
    parts[split[i] as Split].push(r);
  });
  if (parts.train.length === 0) throw new DriftwoodError('DATA_MISSING', 'the training split is empty');
  const state = fitTransform(
    parts.train.map((r) => r.features),
    { numeric: profile.numeric, categorical: profile.categorical },
    overrides,
  );
  return { split, parts, state };
}

/**
 * `splitAndFit` on a table held as typed columns: the same split (each row by its id, or by its
 * time) and the same fitted state, with each part given as the rows' positions and the training
 * part's columns gathered for the fit; no row object is made.
 */
export function splitAndFitColumns(
  profile: Pick<TabularProfile, 'numeric' | 'categorical'>,
  table: FeatureColumns,
  seed: number,
  fractions: { holdout: number; validation: number; strategy?: SplitStrategy },
  overrides?: Partial<TransformOptions>,
): { split: Split[]; parts: Record<Split, Int32Array>; state: TransformState } {
  const policy = {
    strategy: fractions.strategy ?? 'hash',
    holdout: fractions.holdout,
    validation: fractions.validation,
  } as const;
  const split =
    policy.strategy === 'hash'
      ? table.ids.map((id) => splitOf(id, seed, policy))
      : assignSplits(
          table.ids.map((id, i) => ({ id, time: table.time?.[i] })),
          seed,
          policy,
        );
  const counts: Record<Split, number> = { train: 0, validation: 0, holdout: 0 };
  for (const s of split) counts[s]++;
  const parts: Record<Split, Int32Array> = {
    train: new Int32Array(counts.train),
    validation: new Int32Array(counts.validation),
    holdout: new Int32Array(counts.holdout),
  };
  const filled: Record<Split, number> = { train: 0, validation: 0, holdout: 0 };
  split.forEach((s, i) => {
    parts[s][filled[s]++] = i;
  });
  if (counts.train === 0) throw new DriftwoodError('DATA_MISSING', 'the training split is empty');
  const state = fitTransformColumns(
    takeColumns(table, parts.train),
    { numeric: profile.numeric, categorical: profile.categorical },
    overrides,
  );
  return { split, parts, state };
}
