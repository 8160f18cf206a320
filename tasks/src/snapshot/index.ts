import { createHash } from 'node:crypto';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { loadContract } from '../contracts/index.js';
import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import type { LabelledRow } from '../features/rows.js';
import type { Candle } from '../forecast/candles.js';
import { kindOf } from '../kinds/index.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import type { DatasetInput } from '../mlflow/types.js';
import { parquetReadObjects } from '../parquet.js';
import { hourOfKey } from '../time.js';
import type { Warehouse } from '../warehouse/db.js';
import type { SnapshotColumn } from './types.js';

export type * from './types.js';

export interface SnapshotOptions {
  dataset: string;
  /**
   * What the warehouse knew at this time: the training cutoff is asOf − (horizon + label delay).
   * `latest`: the newest time the loaded data allows (its last hour, or the cutoff whose labels are in).
   */
  asOf: number | 'latest';
  horizonHours: number;
  labelDelayHours: number;
  contract?: Contract;
  contractsDir?: string;
}

export interface SnapshotManifest {
  format: 'driftwood.snapshot/v1';
  id: string;
  dataset: string;
  asOf: string;
  cutoff: string;
  horizonHours: number;
  builder: string;
  rows: number;
  positives: number;
  schema: SnapshotColumn[];
  schemaHash: string;
  /** sha256 of the canonical rows (JSON lines in customer order): what the id is computed from. */
  rowsHash: string;
  dataKey: string;
  dataSha256: string;
  contract: { dataset: string; version: number; digest: string };
  sources: { key: string; sha256: string; rows: number }[];
  code: { commit: string | null };
  createdAt: string;
}

/** A snapshot's manifest and rows, and the lake it lives in (for the run's dataset input). */
export interface SnapshotRows {
  manifest: SnapshotManifest;
  rows: LabelledRow[];
  lakeUri: string;
}

export interface SnapshotResult {
  id: string;
  created: boolean;
  manifestKey: string;
  manifest: SnapshotManifest;
}

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

/** The training table's columns for a builder, in a fixed order: id, label, then the inputs. */

/**
 * Decides a snapshot's identity from its content: the schema, the cutoff and horizon, the rows in a
 * canonical order, and the digest of the contract it was taken under. Pure; the same inputs give the
 * same id on any machine or backend. The contract is part of it because the later steps refuse a
 * snapshot taken under another contract: the same rows under an edited contract (a new split
 * strategy, say) are a new snapshot, not the old one that no step would take any more.
 */
export function snapshotIdentity(
  schema: readonly SnapshotColumn[],
  cutoff: number,
  horizonHours: number,
  rows: readonly (readonly unknown[])[],
  contractDigest: string | undefined,
): { id: string; schemaHash: string; rowsHash: string } {
  const schemaHash = sha(JSON.stringify(schema));
  const h = createHash('sha256');
  for (const r of rows) h.update(`${JSON.stringify(r)}\n`);
  const rowsHash = h.digest('hex');
  const id = sha(
    JSON.stringify({
      format: 'driftwood.snapshot/v1',
      schemaHash,
      rowsHash,
      cutoff,
      horizonHours,
      ...(contractDigest ? { contract: contractDigest } : {}),
    }),
  );
  return { id, schemaHash, rowsHash };
}

/**
 * Why a labelled snapshot's rows can train no model: every label one class (no positive, or no
 * negative). Undefined when they can, or when the snapshot holds no labels (candles). Pure.
 */
export function untrainableLabels(
  m: Pick<SnapshotManifest, 'rows' | 'positives'> & { schema: readonly SnapshotColumn[] },
): string | undefined {
  if (m.schema[1]?.name !== 'label' || m.rows === 0) return undefined;
  if (m.positives === 0) return `${m.rows} rows, 0 positive labels`;
  if (m.positives === m.rows) return `${m.rows} rows, every label positive`;
  return undefined;
}

/** The newest as-of time the warehouse's data of the dataset allows. */
export async function latestAsOf(
  contract: Contract,
  options: Pick<SnapshotOptions, 'dataset' | 'horizonHours' | 'labelDelayHours'>,
  db: Warehouse,
): Promise<number> {
  const asOf = await kindOf(contract).latestAsOf(contract, db, options);
  if (asOf === undefined)
    throw new DriftwoodError('DATA_MISSING', `no ${options.dataset} data in the warehouse: ingest first`);
  return asOf;
}

/**
 * Materialises the training table as of a time as an immutable, content-addressed snapshot:
 * `snapshots/<dataset>/<id>/data.parquet`, then `manifest.json` (written last: a snapshot without a
 * manifest is incomplete and is rewritten by the next run). An existing snapshot is never rewritten.
 */
export async function runSnapshot(
  options: SnapshotOptions,
  deps: { db: Warehouse; lake: ObjectStore; log: Logger; commit: string | null; now: () => number },
): Promise<SnapshotResult> {
  const contract = options.contract ?? (await loadContract(options.dataset, options.contractsDir));
  const asOf = options.asOf === 'latest' ? await latestAsOf(contract, options, deps.db) : options.asOf;
  const { schema, rows, cutoff, horizonHours, positives, required } = await kindOf(contract).snapshotTable(
    contract,
    { ...options, asOf },
    deps.db,
  );
  if (rows.length === 0)
    throw new DriftwoodError(
      'DATA_MISSING',
      `no ${options.dataset} rows as of ${new Date(asOf).toISOString()}: ingest first`,
    );
  // A snapshot no model can train on would become `latest` and outlive the failed run that made it.
  const untrainable = untrainableLabels({ schema, rows: rows.length, positives });
  if (untrainable)
    throw new DriftwoodError(
      'DATA_MISSING',
      `no ${options.dataset} snapshot as of ${new Date(asOf).toISOString()}: ${untrainable} (cutoff ${new Date(cutoff).toISOString()}); the labels of that window have not arrived in the warehouse: ingest newer data or take the snapshot as of an earlier time`,
      { rows: rows.length, positives },
    );
  const { id, schemaHash, rowsHash } = snapshotIdentity(schema, cutoff, horizonHours, rows, contract.digest);
  const prefix = `snapshots/${options.dataset}/${id}`;
  const manifestKey = `${prefix}/manifest.json`;
  if (await deps.lake.exists(manifestKey)) {
    deps.log.info({ id }, 'snapshot: already materialised, left as it is');
    return { id, created: false, manifestKey, manifest: await readManifest(deps.lake, options.dataset, id) };
  }

  const parquet = snapshotParquet(schema, rows, required);
  const sources = (
    await deps
      .db('ingest_ledger')
      .where({ dataset: options.dataset, status: 'loaded' })
      .orderBy('object_key')
      .select('object_key', 'sha256', 'rows_loaded')
  )
    .filter((e: { object_key: string }) => (hourOfKey(e.object_key) ?? Number.POSITIVE_INFINITY) < asOf)
    .map((e: { object_key: string; sha256: string; rows_loaded: number }) => ({
      key: e.object_key,
      sha256: e.sha256,
      rows: Number(e.rows_loaded),
    }));
  const manifest: SnapshotManifest = {
    format: 'driftwood.snapshot/v1',
    id,
    dataset: options.dataset,
    asOf: new Date(asOf).toISOString(),
    cutoff: new Date(cutoff).toISOString(),
    horizonHours,
    builder: contract.builder,
    rows: rows.length,
    positives,
    schema,
    schemaHash,
    rowsHash,
    dataKey: `${prefix}/data.parquet`,
    dataSha256: sha(parquet),
    contract: { dataset: contract.dataset, version: contract.version, digest: contract.digest },
    sources,
    code: { commit: deps.commit },
    createdAt: new Date(deps.now()).toISOString(),
  };
  await deps.lake.put(manifest.dataKey, parquet);
  await deps.lake.put(manifestKey, `${JSON.stringify(manifest, null, 2)}\n`);
  deps.log.info({ id, rows: rows.length, sources: sources.length }, 'snapshot: materialised');
  return { id, created: true, manifestKey, manifest };
}

/** A snapshot's rows as Parquet: the first `required` columns may not be null. */
export function snapshotParquet(
  schema: readonly SnapshotColumn[],
  rows: readonly (readonly unknown[])[],
  required: number,
): Buffer {
  return Buffer.from(
    parquetWriteBuffer({
      columnData: schema.map((c, k) => ({
        name: c.name,
        data: rows.map((r) => r[k] as never),
        type:
          c.type === 'string'
            ? ('STRING' as const)
            : c.type === 'integer'
              ? ('INT32' as const)
              : ('DOUBLE' as const),
        nullable: k >= required,
      })),
    }),
  );
}

/**
 * Left where an immutable snapshot or features folder was, when an erasure replaced it by a copy
 * without the erased customer's rows (under a new id): readers are told where to go.
 */
export interface Tombstone {
  format: 'driftwood.tombstone/v1';
  kind: 'snapshot' | 'features';
  id: string;
  replacedBy: string | null;
  reason: 'erasure';
  at: string;
}

export async function readManifest(
  lake: ObjectStore,
  dataset: string,
  id: string,
): Promise<SnapshotManifest> {
  if (!/^[0-9a-f]{64}$/.test(id))
    throw new DriftwoodError('USAGE', `snapshot id: expected 64 hex digits, got '${id}'`);
  const key = `snapshots/${dataset}/${id}/manifest.json`;
  const tombstone = `snapshots/${dataset}/${id}/tombstone.json`;
  if (!(await lake.exists(key)) && (await lake.exists(tombstone))) {
    const t = JSON.parse((await lake.get(tombstone)).toString('utf8')) as Tombstone;
    throw new DriftwoodError(
      'DATA_MISSING',
      `snapshot ${id} of ${dataset} was replaced on ${t.at} by an erasure${t.replacedBy ? `: use snapshot ${t.replacedBy}` : ''}`,
    );
  }
  if (!(await lake.exists(key)))
    throw new DriftwoodError('DATA_MISSING', `no snapshot ${id} of ${dataset} (looked for ${key})`);
  return JSON.parse((await lake.get(key)).toString('utf8')) as SnapshotManifest;
}

/**
 * Every complete snapshot of a dataset (one with a manifest), oldest as-of first. `untrainable`
 * says why one can train no model (one made before the snapshot step refused such labels).
 */
export async function listSnapshots(
  lake: ObjectStore,
  dataset: string,
): Promise<
  (Pick<SnapshotManifest, 'id' | 'asOf' | 'cutoff' | 'rows' | 'positives' | 'createdAt'> & {
    untrainable?: string;
  })[]
> {
  const keys = (await lake.list(`snapshots/${dataset}/`)).filter((o) => o.key.endsWith('/manifest.json'));
  const out = [];
  for (const k of keys) {
    const m = JSON.parse((await lake.get(k.key)).toString('utf8')) as SnapshotManifest;
    const untrainable = untrainableLabels(m);
    out.push({
      id: m.id,
      asOf: m.asOf,
      cutoff: m.cutoff,
      rows: m.rows,
      positives: m.positives,
      createdAt: m.createdAt,
      ...(untrainable ? { untrainable } : {}),
    });
  }
  return out.sort((a, b) => (a.asOf < b.asOf ? -1 : a.asOf > b.asOf ? 1 : 0));
}

/** The MLflow dataset input of a snapshot (name, digest, source), for the training run that read it. */
export function snapshotDatasetInput(m: SnapshotManifest, lakeUri: string): DatasetInput {
  const toMlflow = (t: SnapshotColumn['type']) =>
    t === 'string' ? 'string' : t === 'integer' ? 'long' : 'double';
  return {
    tags: [{ key: 'mlflow.data.context', value: 'training' }],
    dataset: {
      name: `${m.dataset}-snapshot`,
      // MLflow caps digests at 36 characters; the full id is in the source.
      digest: m.id.slice(0, 36),
      source_type: lakeUri.startsWith('s3://') ? 's3' : 'local',
      source: JSON.stringify({ uri: `${lakeUri}/${m.dataKey}`, snapshot_id: m.id }),
      schema: JSON.stringify({
        mlflow_colspec: m.schema.map((c) => ({
          type: toMlflow(c.type),
          name: c.name,
          required: c.name === m.schema[0]?.name || c.name === 'label',
        })),
      }),
      profile: JSON.stringify({ num_rows: m.rows, positives: m.positives, as_of: m.asOf }),
    },
  };
}

/**
 * The manifest named by `ref`: a snapshot id, or `latest` (the newest as-of whose labels can train;
 * the hourly DAG runs one at a time, so its snapshot step's output is the latest when the next steps
 * read it). The snapshot step refuses labels no model can train on; `latest` also passes over such
 * a snapshot left in the lake by an older version, so it never picks the output of a doomed run.
 */
export async function resolveSnapshot(
  lake: ObjectStore,
  dataset: string,
  ref: string,
): Promise<SnapshotManifest> {
  if (ref !== 'latest') return readManifest(lake, dataset, ref);
  const all = await listSnapshots(lake, dataset);
  const newest = all.filter((s) => s.untrainable === undefined).at(-1);
  if (!newest) {
    const skipped = all.at(-1);
    throw new DriftwoodError(
      'DATA_MISSING',
      skipped
        ? `no snapshot of ${dataset} that can train: the newest, ${skipped.id} as of ${skipped.asOf}, has ${skipped.untrainable}; run 'driftwood snapshot' as of a time whose labels have arrived`
        : `no snapshot of ${dataset} yet: run 'driftwood snapshot' first`,
    );
  }
  return readManifest(lake, dataset, newest.id);
}

/**
 * The labelled rows of a snapshot, exactly as they were materialised: the Parquet file is checked
 * against the manifest's sha256 first, so a training run never reads data other than what it names.
 */
export async function readSnapshotRows(lake: ObjectStore, m: SnapshotManifest): Promise<LabelledRow[]> {
  if (m.schema[1]?.name !== 'label')
    throw new DriftwoodError('USAGE', `snapshot ${m.id} holds ${m.builder} rows, not labelled rows`);
  const records = await readSnapshotRecords(lake, m);
  const features = m.schema.slice(2).filter((c) => c.role !== 'time');
  const timeName = m.schema.find((c) => c.role === 'time')?.name;
  const idName = m.schema[0]?.name ?? 'customer_id';
  const timeOf = (r: Record<string, unknown>) => {
    const v = timeName === undefined ? null : r[timeName];
    return v === null || v === undefined ? {} : { time: Number(v) };
  };
  return records.map((r) => ({
    customerId: String(r[idName]),
    label: Number(r.label) === 1 ? 1 : 0,
    ...timeOf(r),
    features: Object.fromEntries(
      features.map((c) => {
        const v = r[c.name];
        if (v === null || v === undefined) return [c.name, null];
        return [c.name, c.type === 'string' ? String(v) : Number(v)];
      }),
    ),
  }));
}

/**
 * A snapshot's records, exactly as they were materialised: the Parquet file is checked against the
 * manifest's sha256 first, so a run never reads data other than what it names.
 */
async function readSnapshotRecords(
  lake: ObjectStore,
  m: SnapshotManifest,
): Promise<Record<string, unknown>[]> {
  const file = await lake.get(m.dataKey);
  if (sha(file) !== m.dataSha256)
    throw new DriftwoodError(
      'SCHEMA_MISMATCH',
      `snapshot ${m.id}: ${m.dataKey} does not match the manifest's sha256; the snapshot was altered`,
    );
  return (await parquetReadObjects({
    file: file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer,
  })) as Record<string, unknown>[];
}

/** The candles of a `time_windows` snapshot, checked against the manifest's sha256 like any snapshot. */
export async function readSnapshotCandles(lake: ObjectStore, m: SnapshotManifest): Promise<Candle[]> {
  if (m.schema[0]?.name !== 'open_time')
    throw new DriftwoodError('USAGE', `snapshot ${m.id} holds ${m.builder} rows, not candles`);
  return (await readSnapshotRecords(lake, m)).map((r) => ({
    openTime: Date.parse(String(r.open_time)),
    open: Number(r.open),
    high: Number(r.high),
    low: Number(r.low),
    close: Number(r.close),
    volume: Number(r.volume),
  }));
}
