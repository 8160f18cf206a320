import { createHash } from 'node:crypto';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { datasetSettings, loadContract } from '../contracts/index.js';
import type { Contract } from '../contracts/types.js';
import { toCsv } from '../csv.js';
import { DriftwoodError } from '../errors.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import type { SnapshotRows } from '../snapshot/index.js';
import type { Warehouse } from '../warehouse/db.js';
import { FEATURES_FORMAT, type FeaturesManifest, featuresPrefix, sha256 } from './artifact.js';
import { type FeatureColumns, rowsOfColumns, takeColumns } from './columns.js';
import { tabularProfile } from './profile.js';
import type { LabelledRow } from './rows.js';
import { loadColumns, loadRows, splitAndFit, splitAndFitColumns } from './training-rows.js';
import { type TransformOptions, transformColumns, transformRows } from './transform.js';

export interface FeaturesOptions {
  dataset: string;
  /** The dataset's contract; read from contracts/<dataset>.yaml when not given. */
  contract?: Contract;
  contractsDir?: string;
  /**
   * The data snapshot the features come from (its id names the output folder); without one the rows
   * are built from the warehouse and a digest of them names the folder.
   */
  snapshot?: SnapshotRows;
  cutoff?: number;
  horizonHours: number;
  labelDelayHours: number;
  seed: number;
  holdoutFraction: number;
  validationFraction: number;
  transform?: Partial<TransformOptions>;
  /** Rows in the human-readable sample. */
  sampleRows: number;
  /**
   * `false` builds, splits and fits on row objects even where the profile builds typed columns
   * (the DuckDB engine); the outputs are the same bytes either way. Columns where they can be, by default.
   */
  columnar?: boolean;
}

export interface FeaturesResult {
  dataset: string;
  id: string;
  prefix: string;
  cutoff: string;
  rows: number;
  splits: Record<'train' | 'validation' | 'holdout', number>;
  columns: number;
  dropped: { name: string; reason: string }[];
  files: string[];
}

/**
 * Materialises model-ready features: builds the rows point in time, fits the transform on the
 * training split only, transforms every row with the same code serving runs, and writes
 * `features/<dataset>/<id>/` in the lake: the matrix as Parquet (one column per output, plus
 * customer id, split and label), the fitted transform, a small CSV sample of raw and transformed
 * values, and a manifest. Re-running on the same data writes the same id and the same bytes.
 */
export async function runFeatures(
  options: FeaturesOptions,
  deps: { db: Warehouse; lake: ObjectStore; log: Logger },
): Promise<FeaturesResult> {
  return (await materialise(options, deps)).result;
}

/** `runFeatures`, also handing back the raw rows it built (training keeps them for its holdout file). */
export async function materialiseFeatures(
  options: FeaturesOptions,
  deps: { db: Warehouse; lake: ObjectStore; log: Logger },
): Promise<{ result: FeaturesResult; rows: LabelledRow[] }> {
  const { result, rows } = await materialise(options, deps);
  return { result, rows: rows() };
}

/**
 * The table the step works on: row objects, or (a columnar build, no snapshot) typed columns, which
 * are split, fitted and transformed as they are; both give the same outputs, byte for byte.
 */
type Built = { rows: LabelledRow[]; table?: undefined } | { rows?: undefined; table: FeatureColumns };

async function materialise(
  options: FeaturesOptions,
  deps: { db: Warehouse; lake: ObjectStore; log: Logger },
): Promise<{ result: FeaturesResult; rows: () => LabelledRow[] }> {
  const contract = options.contract ?? (await loadContract(options.dataset, options.contractsDir));
  const profile = tabularProfile(contract);
  const taken = options.snapshot?.manifest.contract;
  if (taken && (taken.version !== contract.version || taken.digest !== contract.digest))
    throw new DriftwoodError(
      'SCHEMA_MISMATCH',
      `snapshot ${options.snapshot?.manifest.id} was taken under contract ${contract.dataset} version ${taken.version} (${taken.digest.slice(0, 12)}…), the contract is now version ${contract.version} (${contract.digest.slice(0, 12)}…): take a new snapshot`,
    );
  const columns = options.columnar === false ? undefined : await loadColumns(deps.db, profile, options);
  let cutoff: number;
  let built: Built;
  if (columns?.table) {
    cutoff = columns.cutoff;
    built = { table: columns.table };
  } else {
    const loaded = await loadRows(
      deps.db,
      profile,
      columns ? { ...options, cutoff: columns.cutoff } : options,
    );
    cutoff = loaded.cutoff;
    built = { rows: loaded.rows };
  }
  const n = built.table ? built.table.rows : built.rows.length;
  if (n === 0)
    throw new DriftwoodError(
      'DATA_MISSING',
      `no ${options.dataset} rows as of ${new Date(cutoff).toISOString()}: ingest first`,
    );
  deps.log.info(
    { rows: n, columnar: built.table !== undefined, cutoff: new Date(cutoff).toISOString() },
    'features: rows built',
  );

  // The strategy is the contract's alone (training and evaluation then share one holdout); a hash
  // split keeps the fractions it always had, so the ids of folders made before stay the same.
  const strategy = datasetSettings(contract).split.strategy;
  const fractions = {
    holdout: options.holdoutFraction,
    validation: options.validationFraction,
    ...(strategy === 'time' ? { strategy } : {}),
  };
  const { split, state } = built.table
    ? splitAndFitColumns(profile, built.table, options.seed, fractions, options.transform)
    : splitAndFit(profile, built.rows, options.seed, fractions, options.transform);
  const matrix = built.table
    ? transformColumns(state, built.table)
    : transformRows(
        state,
        built.rows.map((r) => r.features),
      );
  const width = state.outputs.length;

  // Built from the warehouse, the folder is named by what decides its bytes: rows, horizon and split.
  const id =
    options.snapshot?.manifest.id ??
    (built.table
      ? digestOfColumns([cutoff, options.horizonHours, options.seed, fractions], built.table)
      : createHash('sha256')
          .update(JSON.stringify([cutoff, options.horizonHours, options.seed, fractions, built.rows]))
          .digest('hex')
    ).slice(0, 16);
  if (!/^[\w.-]{1,80}$/.test(id))
    throw new DriftwoodError('USAGE', `--snapshot: expected letters, digits, '.', '_' or '-', got '${id}'`);
  const prefix = featuresPrefix(options.dataset, id);

  const columnData = [
    {
      name: profile.idName,
      data: built.table ? built.table.ids : built.rows.map((r) => r.customerId),
      type: 'STRING' as const,
    },
    { name: 'split', data: split, type: 'STRING' as const },
    {
      name: 'label',
      data: built.table ? Array.from(built.table.labels) : built.rows.map((r) => r.label),
      type: 'INT32' as const,
    },
    ...state.outputs.map((name, k) => ({
      name,
      data: Float32Array.from({ length: n }, (_, i) => matrix[i * width + k] as number),
      type: 'FLOAT' as const,
    })),
  ];
  const parquet = Buffer.from(parquetWriteBuffer({ columnData }));

  // The first rows (at least one, for the header) as rows, whichever way the table is held.
  const head = built.table
    ? rowsOfColumns(
        takeColumns(
          built.table,
          Int32Array.from({ length: Math.min(n, Math.max(1, options.sampleRows)) }, (_, i) => i),
        ),
      )
    : built.rows.slice(0, Math.max(1, options.sampleRows));
  // Raw fields keep their names; transformed columns are prefixed so the two never collide.
  const sampleHeader = [
    profile.idName,
    'split',
    'label',
    ...Object.keys(head[0]?.features ?? {}),
    ...state.outputs.map((o) => `out:${o}`),
  ];
  const sample = head
    .slice(0, options.sampleRows)
    .map((r, i) => [
      r.customerId,
      split[i] as string,
      r.label,
      ...Object.values(r.features).map((v) => (v === null ? '' : v)),
      ...Array.from(matrix.subarray(i * width, (i + 1) * width), (x) => Number(x.toPrecision(6))),
    ]);

  const splits = { train: 0, validation: 0, holdout: 0 };
  for (const s of split) splits[s]++;
  const transformJson = `${JSON.stringify(state, null, 2)}\n`;
  const manifest: FeaturesManifest = {
    format: FEATURES_FORMAT,
    dataset: options.dataset,
    id,
    snapshot: options.snapshot?.manifest.id ?? null,
    contract: { dataset: contract.dataset, version: contract.version, digest: contract.digest },
    cutoff: new Date(cutoff).toISOString(),
    horizonHours: options.horizonHours,
    seed: options.seed,
    fractions,
    rows: n,
    splits,
    outputs: state.outputs,
    dropped: state.dropped,
    files: { 'features.parquet': sha256(parquet), 'transform.json': sha256(transformJson) },
  };
  const files: [string, Buffer | string][] = [
    [`${prefix}/features.parquet`, parquet],
    [`${prefix}/transform.json`, transformJson],
    [`${prefix}/sample.csv`, toCsv(sampleHeader, sample)],
    // The manifest goes last: its presence says the folder is complete.
    [`${prefix}/manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`],
  ];
  for (const [key, body] of files) await deps.lake.put(key, body);
  deps.log.info({ prefix, rows: n, columns: width }, 'features: written');
  const result: FeaturesResult = {
    dataset: options.dataset,
    id,
    prefix,
    cutoff: manifest.cutoff,
    rows: n,
    splits,
    columns: width,
    dropped: state.dropped.map(({ name, reason }) => ({ name, reason })),
    files: files.map(([k]) => k),
  };
  return { result, rows: () => built.rows ?? rowsOfColumns(built.table) };
}

/** Formats a number as `JSON.stringify` does (non-finite numbers are null). */
const jsonNumber = (v: number): string => (Number.isFinite(v) ? String(v) : 'null');

/**
 * The sha256 (hex) of `JSON.stringify([...head, rowsOfColumns(table)])`, fed a block of rows at a
 * time instead of one string: the very bytes in the very order, so a folder built from columns has
 * the id the same rows give it (the features test holds the two equal).
 */
export function digestOfColumns(head: readonly unknown[], table: FeatureColumns): string {
  const hash = createHash('sha256');
  const opening = JSON.stringify(head);
  hash.update(`${opening.slice(0, -1)}${head.length > 0 ? ',' : ''}[`);
  // The same fields in the same key order as `rowsOfColumns` gives each row.
  const fields = table.order.map((name, k) => ({
    key: `${k === 0 ? '' : ','}${JSON.stringify(name)}:`,
    numeric: table.numeric[name],
    categorical: table.categorical[name],
  }));
  const BLOCK = 4096;
  for (let start = 0; start < table.rows; start += BLOCK) {
    const end = Math.min(table.rows, start + BLOCK);
    let text = '';
    for (let i = start; i < end; i++) {
      text += `${i === 0 ? '' : ','}{"customerId":${JSON.stringify(table.ids[i])},"features":{`;
      for (const f of fields) {
        if (f.numeric) text += f.key + jsonNumber(f.numeric[i] as number);
        else {
          const v = (f.categorical as (string | null)[])[i] ?? null;
          text += f.key + (v === null ? 'null' : JSON.stringify(v));
        }
      }
      text += `},"label":${table.labels[i]}`;
      if (table.time) text += `,"time":${jsonNumber(table.time[i] as number)}`;
      text += '}';
    }
    hash.update(text);
  }
  hash.update(']]');
  return hash.digest('hex');
}
