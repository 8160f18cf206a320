import { createHash } from 'node:crypto';
import { memoryObjectStore } from '../artifacts/memory-store.js';
import { type DatasetSettings, datasetSettings, loadContract } from '../contracts/index.js';
import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import { type FeaturesArtifact, featuresPrefix, readFeaturesArtifact } from '../features/artifact.js';
import { materialiseFeatures } from '../features/index.js';
import { type TabularProfile, tabularProfile } from '../features/profile.js';
import type { LabelledRow } from '../features/rows.js';
import type { Split } from '../features/training-rows.js';
import type { TransformState } from '../features/transform.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import type { SnapshotRows } from '../snapshot/index.js';
import type { Warehouse } from '../warehouse/db.js';

export interface Matrix {
  x: Float32Array;
  y: Float32Array;
}

/** Everything a training run needs, read once from the features artifact (tuning trials share it). */
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
  /** The features artifact the matrices and the fitted transform were read from. */
  features: { id: string; prefix: string; manifestSha256: string; seed: number };
  /** The contract the features were built under. */
  contract: { version: number; digest: string };
  /** How scores become probabilities and decisions, from the contract (`training.calibration`, `.threshold`). */
  decision: Pick<DatasetSettings, 'calibration' | 'threshold'>;
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
  /** Seeds the split when the features step has to run: a row id stays in the same split for the same seed. */
  splitSeed: number;
  /** Rows read from a data snapshot (with its cutoff) instead of built from the warehouse. */
  snapshot?: SnapshotRows;
}

/**
 * The features step's output for training, by id: a snapshot's features artifact (made first by
 * the features step when it is not in the lake yet), or the one the features step writes for rows
 * built from the warehouse now. Either way the matrix, split and fitted transform are read back
 * from the artifact and checked (snapshot, contract, sha256 of every file); nothing is refitted.
 * Without a lake the artifact is written to and read from memory, through the same code.
 */
export async function prepareTrainingData(
  options: PrepareOptions,
  deps: { db: Warehouse; log: Logger; lake?: ObjectStore },
): Promise<PreparedData> {
  const t0 = performance.now();
  const lake = deps.lake ?? memoryObjectStore();
  const contract = options.contract ?? (await loadContract(options.dataset, options.contractsDir));
  const profile = tabularProfile(contract);
  const settings = datasetSettings(contract);
  const featuresOptions = {
    ...options,
    contract,
    seed: options.splitSeed,
    holdoutFraction: options.holdoutFraction,
    validationFraction: options.validationFraction,
    sampleRows: 20,
  };
  let rows: LabelledRow[];
  let id: string;
  if (options.snapshot) {
    rows = options.snapshot.rows;
    id = options.snapshot.manifest.id;
    if (!(await lake.exists(`${featuresPrefix(options.dataset, id)}/manifest.json`))) {
      deps.log.info({ snapshot: id }, 'train: the snapshot has no features yet; running the features step');
      await materialiseFeatures(featuresOptions, { db: deps.db, lake, log: deps.log });
    }
  } else {
    const made = await materialiseFeatures(featuresOptions, { db: deps.db, lake, log: deps.log });
    rows = made.rows;
    id = made.result.id;
  }
  const artifact = await readFeaturesArtifact(lake, options.dataset, id, {
    snapshot: options.snapshot?.manifest.id ?? null,
    contract: { version: contract.version, digest: contract.digest },
  });
  const prefix = featuresPrefix(options.dataset, id);
  checkRowsMatch(artifact, rows, prefix);
  const cutoff = Date.parse(artifact.manifest.cutoff);
  deps.log.info(
    {
      rows: rows.length,
      cutoff: artifact.manifest.cutoff,
      snapshot: options.snapshot?.manifest.id ?? null,
      features: prefix,
      ms: Math.round(performance.now() - t0),
    },
    'train: features read from the features artifact',
  );
  const positives = rows.reduce((a, r) => a + r.label, 0);
  if (rows.length < 50 || positives < 5 || positives === rows.length) {
    throw new DriftwoodError(
      'DATA_MISSING',
      `too little data to train ${options.dataset} as of ${artifact.manifest.cutoff}: ${rows.length} rows, ${positives} positive (need 50+ rows and 5+ of each class)`,
    );
  }
  const width = artifact.state.outputs.length;
  const index: Record<Split, number[]> = { train: [], validation: [], holdout: [] };
  artifact.split.forEach((s, i) => {
    index[s].push(i);
  });
  if (index.train.length === 0) throw new DriftwoodError('DATA_MISSING', 'the training split is empty');
  const matrix = (is: number[]): Matrix => {
    const x = new Float32Array(is.length * width);
    is.forEach((i, j) => {
      x.set(artifact.matrix.subarray(i * width, (i + 1) * width), j * width);
    });
    return { x, y: Float32Array.from(is, (i) => artifact.labels[i] as number) };
  };
  const rowsOf = (is: number[]) => is.map((i) => rows[i] as LabelledRow);
  return {
    profile,
    cutoff,
    rows,
    parts: {
      train: rowsOf(index.train),
      validation: rowsOf(index.validation),
      holdout: rowsOf(index.holdout),
    },
    state: artifact.state,
    width,
    train: matrix(index.train),
    validation: matrix(index.validation),
    holdout: matrix(index.holdout),
    positives,
    dataDigest: createHash('sha256').update(JSON.stringify(rows)).digest('hex'),
    features: { id, prefix, manifestSha256: artifact.manifestSha256, seed: artifact.manifest.seed },
    contract: { version: contract.version, digest: contract.digest },
    decision: { calibration: settings.calibration, threshold: settings.threshold },
  };
}

/** The artifact's rows must be the rows training keeps (same ids, same labels, same order). */
function checkRowsMatch(artifact: FeaturesArtifact, rows: readonly LabelledRow[], prefix: string): void {
  const differs =
    artifact.ids.length !== rows.length ||
    rows.some((r, i) => r.customerId !== artifact.ids[i] || r.label !== artifact.labels[i]);
  if (differs)
    throw new DriftwoodError(
      'SCHEMA_MISMATCH',
      `features artifact ${prefix}: its rows (ids, labels, order) are not the rows of the data it names; run 'driftwood features' again`,
    );
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
