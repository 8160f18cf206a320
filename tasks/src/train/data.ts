import { createHash } from 'node:crypto';
import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import { loadTabularProfile, type TabularProfile } from '../features/profile.js';
import type { LabelledRow } from '../features/rows.js';
import { loadRows, splitAndFit } from '../features/training-rows.js';
import { type TransformState, transformRows } from '../features/transform.js';
import type { Logger } from '../log.js';
import type { SnapshotRows } from '../snapshot/index.js';
import type { Warehouse } from '../warehouse/db.js';

export interface Matrix {
  x: Float32Array;
  y: Float32Array;
}

/** Everything a training run needs from the warehouse, built once (tuning trials share it). */
export interface PreparedData {
  /** The dataset's builder: its input fields, segments, directions and behavioural checks. */
  profile: TabularProfile;
  cutoff: number;
  rows: LabelledRow[];
  parts: { train: LabelledRow[]; validation: LabelledRow[]; holdout: LabelledRow[] };
  state: TransformState;
  width: number;
  train: Matrix;
  validation: Matrix;
  holdout: Matrix;
  positives: number;
  /** sha256 of the feature rows: the snapshot's identity on the run and the version. */
  dataDigest: string;
}

export interface PrepareOptions {
  dataset: string;
  /** The dataset's contract; read from contracts/<dataset>.yaml when not given. */
  contract?: Contract;
  contractsDir?: string;
  cutoff?: number;
  horizonHours: number;
  labelDelayHours: number;
  holdoutFraction: number;
  validationFraction: number;
  /** Seeds the split: a customer stays in the same split for the same seed. */
  splitSeed: number;
  /** Rows read from a data snapshot (with its cutoff) instead of built from the warehouse. */
  snapshot?: SnapshotRows;
}

/** Point-in-time features → hash split by customer → transform fitted on the training split only. */
export async function prepareTrainingData(
  options: PrepareOptions,
  deps: { db: Warehouse; log: Logger },
): Promise<PreparedData> {
  const t0 = performance.now();
  const profile = await loadTabularProfile(options);
  const { cutoff, rows } = await loadRows(deps.db, profile, options);
  deps.log.info(
    {
      rows: rows.length,
      cutoff: new Date(cutoff).toISOString(),
      snapshot: options.snapshot?.manifest.id ?? null,
      ms: Math.round(performance.now() - t0),
    },
    options.snapshot ? 'train: rows read from the snapshot' : 'train: features built',
  );
  const positives = rows.reduce((a, r) => a + r.label, 0);
  if (rows.length < 50 || positives < 5 || positives === rows.length) {
    throw new DriftwoodError(
      'DATA_MISSING',
      `too little data to train ${options.dataset} as of ${new Date(cutoff).toISOString()}: ${rows.length} rows, ${positives} positive (need 50+ rows and 5+ of each class)`,
    );
  }
  const fractions = { holdout: options.holdoutFraction, validation: options.validationFraction };
  const { parts, state } = splitAndFit(profile, rows, options.splitSeed, fractions);
  const matrix = (rs: LabelledRow[]): Matrix => ({
    x: transformRows(
      state,
      rs.map((r) => r.features),
    ),
    y: Float32Array.from(rs, (r) => r.label),
  });
  return {
    profile,
    cutoff,
    rows,
    parts,
    state,
    width: state.outputs.length,
    train: matrix(parts.train),
    validation: matrix(parts.validation),
    holdout: matrix(parts.holdout),
    positives,
    dataDigest: createHash('sha256').update(JSON.stringify(rows)).digest('hex'),
  };
}

export const HOLDOUT_FORMAT = 'driftwood.holdout/v1';

/** The holdout as the raw rows the API takes (plus id and label): promotion scores every model on it. */
export interface HoldoutFile {
  format: typeof HOLDOUT_FORMAT;
  cutoff: string;
  dataDigest: string;
  rows: { customer_id: string; features: Record<string, unknown>; label: 0 | 1 }[];
}

export function holdoutFile(data: PreparedData): HoldoutFile {
  return {
    format: HOLDOUT_FORMAT,
    cutoff: new Date(data.cutoff).toISOString(),
    dataDigest: data.dataDigest,
    rows: data.parts.holdout.map((r) => ({
      customer_id: r.customerId,
      features: r.features,
      label: r.label,
    })),
  };
}

export function parseHoldoutFile(json: unknown): HoldoutFile {
  const h = json as Partial<HoldoutFile> | null;
  if (!h || h.format !== HOLDOUT_FORMAT || !Array.isArray(h.rows))
    throw new DriftwoodError('MODEL_INVALID', `holdout.json: expected format ${HOLDOUT_FORMAT}`);
  return h as HoldoutFile;
}
