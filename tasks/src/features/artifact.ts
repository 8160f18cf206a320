import { createHash } from 'node:crypto';
import { parquetMetadata } from 'hyparquet';
import { DriftwoodError } from '../errors.js';
import type { ObjectStore } from '../lake/object-store.js';
import { parquetRead } from '../parquet.js';
import type { Split, SplitStrategy } from './split.js';
import { parseTransformState, type TransformState } from './transform.js';

export const FEATURES_FORMAT = 'driftwood.features/v2';

/** The files of a features folder whose bytes the manifest vouches for. */
export const FEATURES_DATA_FILES = ['features.parquet', 'transform.json'] as const;

/** `features/<dataset>/<id>/manifest.json`: what the folder holds and what it was built from. */
export interface FeaturesManifest {
  format: typeof FEATURES_FORMAT;
  dataset: string;
  id: string;
  /** The snapshot the rows came from; null when they were built from the warehouse. */
  snapshot: string | null;
  contract: { dataset: string; version: number; digest: string };
  cutoff: string;
  horizonHours: number;
  /** Seeds the hash split: a row id lands in the same split for the same seed and fractions. */
  seed: number;
  /** The shares of the holdout and validation parts; `strategy` is there when it is not `hash`. */
  fractions: { holdout: number; validation: number; strategy?: SplitStrategy };
  rows: number;
  splits: Record<Split, number>;
  outputs: string[];
  dropped: TransformState['dropped'];
  /** sha256 of each data file, so a reader never trains on bytes other than these. */
  files: Record<(typeof FEATURES_DATA_FILES)[number], string>;
}

/** What a features folder hands to training: per row its id, split, label and model-ready vector. */
export interface FeaturesArtifact {
  manifest: FeaturesManifest;
  /** sha256 of manifest.json: the artifact's identity on the run and the version. */
  manifestSha256: string;
  state: TransformState;
  ids: string[];
  split: Split[];
  labels: (0 | 1)[];
  /** Row-major, `state.outputs.length` values per row, in the manifest's row order. */
  matrix: Float32Array;
}

export const featuresPrefix = (dataset: string, id: string) => `features/${dataset}/${id}`;

export const sha256 = (body: Buffer | string): string => createHash('sha256').update(body).digest('hex');

/** What a reader expects the artifact to have been built from; anything else is refused. */
export interface FeaturesExpectation {
  snapshot: string | null;
  contract: { version: number; digest: string };
}

/**
 * Reads `features/<dataset>/<id>/` and checks it before anything is used: the manifest names this
 * dataset, id, snapshot and contract, and every data file has the sha256 the manifest records.
 * A mismatch is refused in one line naming the artifact: retrying cannot fix it.
 */
export async function readFeaturesArtifact(
  lake: ObjectStore,
  dataset: string,
  id: string,
  expected: FeaturesExpectation,
): Promise<FeaturesArtifact> {
  const prefix = featuresPrefix(dataset, id);
  const refuse = (why: string): never => {
    throw new DriftwoodError('SCHEMA_MISMATCH', `features artifact ${prefix}: ${why}`);
  };
  const manifestBytes = await lake.get(`${prefix}/manifest.json`).catch((err: unknown) => {
    throw new DriftwoodError(
      'DATA_MISSING',
      `features artifact ${prefix}: no manifest.json (run 'driftwood features' first)`,
      {},
      { cause: err },
    );
  });
  let manifest: FeaturesManifest;
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8')) as FeaturesManifest;
  } catch {
    return refuse('manifest.json is not JSON');
  }
  if (manifest.format !== FEATURES_FORMAT)
    refuse(
      `format '${String(manifest.format)}', expected ${FEATURES_FORMAT}: run 'driftwood features' again`,
    );
  if (manifest.dataset !== dataset || manifest.id !== id)
    refuse(`its manifest is for ${manifest.dataset}/${manifest.id}`);
  if (manifest.snapshot !== expected.snapshot)
    refuse(
      `built from snapshot ${manifest.snapshot ?? '(none: the warehouse)'}, not ${expected.snapshot ?? '(none: the warehouse)'}`,
    );
  if (manifest.contract?.version !== expected.contract.version)
    refuse(
      `built under contract version ${manifest.contract?.version}, the contract is now version ${expected.contract.version}`,
    );
  if (manifest.contract.digest !== expected.contract.digest)
    refuse(
      `built under contract digest ${manifest.contract.digest.slice(0, 12)}…, the contract's is ${expected.contract.digest.slice(0, 12)}…`,
    );

  const bytes = {} as Record<(typeof FEATURES_DATA_FILES)[number], Buffer>;
  for (const name of FEATURES_DATA_FILES) {
    const body = await lake.get(`${prefix}/${name}`).catch(() => refuse(`${name} is missing`));
    if (sha256(body) !== manifest.files?.[name])
      refuse(`${name} does not match the sha256 its manifest records; the artifact was altered`);
    bytes[name] = body;
  }
  const state = parseTransformState(JSON.parse(bytes['transform.json'].toString('utf8')));
  if (JSON.stringify(state.outputs) !== JSON.stringify(manifest.outputs))
    refuse('transform.json and the manifest name different outputs');

  const { ids, split, labels, matrix } = await readMatrix(bytes['features.parquet'], state.outputs);
  if (ids.length !== manifest.rows)
    refuse(`features.parquet holds ${ids.length} rows, the manifest ${manifest.rows}`);
  return { manifest, manifestSha256: sha256(manifestBytes), state, ids, split, labels, matrix };
}

/**
 * The Parquet matrix column by column (id, split, label, then one FLOAT column per output), straight
 * into typed arrays: no object per row.
 */
async function readMatrix(
  file: Buffer,
  outputs: readonly string[],
): Promise<Pick<FeaturesArtifact, 'ids' | 'split' | 'labels' | 'matrix'>> {
  const buffer = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer;
  const metadata = parquetMetadata(buffer);
  const rows = Number(metadata.num_rows);
  const idName = metadata.schema[1]?.name ?? 'customer_id';
  const width = outputs.length;
  const column = new Map(outputs.map((name, k) => [name, k]));
  const ids = new Array<string>(rows);
  const split = new Array<Split>(rows);
  const labels = new Array<0 | 1>(rows);
  const matrix = new Float32Array(rows * width);
  await parquetRead({
    file: buffer,
    metadata,
    onChunk: ({ columnName, columnData, rowStart, rowEnd }) => {
      const k = column.get(columnName);
      for (let i = rowStart; i < rowEnd; i++) {
        const v = columnData[i - rowStart];
        if (k !== undefined) matrix[i * width + k] = Number(v);
        else if (columnName === idName) ids[i] = String(v);
        else if (columnName === 'split') split[i] = v as Split;
        else if (columnName === 'label') labels[i] = Number(v) === 1 ? 1 : 0;
      }
    },
  });
  return { ids, split, labels, matrix };
}
