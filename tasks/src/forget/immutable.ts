import { parquetMetadata } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { type FeaturesManifest, featuresPrefix } from '../features/artifact.js';
import type { ObjectStore } from '../lake/object-store.js';
import { sha256 } from '../lake/object-store.js';
import { parquetReadObjects } from '../parquet.js';
import {
  type SnapshotManifest,
  snapshotIdentity,
  snapshotParquet,
  type Tombstone,
} from '../snapshot/index.js';
import { planCsvRewrite, type Subject } from './plan.js';
import { emptyPlace, type PlaceReport } from './report.js';

/**
 * Snapshots and feature sets are immutable and named by their content, so a customer is not
 * deleted from them in place: the folder is written again without the customer's rows under the id
 * of its new content, a tombstone (`tombstone.json`, naming the replacement) takes the old
 * folder's place, and the old files are deleted. Readers of the old id are told where to go; a
 * training run's tags still name the id it read. Every step can be repeated: a re-run after a crash
 * finds the new folder already written and finishes the old one's removal.
 */

const arrayBuffer = (b: Buffer): ArrayBuffer =>
  b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/** Folders (`<prefix><id>/`) of an artifact kind, with the file names each holds. */
async function folders(lake: ObjectStore, prefix: string): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const o of await lake.list(prefix)) {
    const rest = o.key.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash < 0) continue;
    const id = rest.slice(0, slash);
    if (!out.has(id)) out.set(id, new Set());
    out.get(id)?.add(rest.slice(slash + 1));
  }
  return out;
}

async function retire(
  lake: ObjectStore,
  prefix: string,
  files: Iterable<string>,
  tombstone: Tombstone,
): Promise<void> {
  if (!lake.delete) throw new Error(`the lake ${lake.uri} cannot delete objects`);
  await lake.put(`${prefix}/tombstone.json`, `${JSON.stringify(tombstone, null, 2)}\n`);
  // The manifest goes first: a folder without one is no snapshot, and a re-run that finds the
  // tombstone without a manifest deletes what is left.
  const names = [...files].filter((f) => f !== 'tombstone.json');
  names.sort((a, b) => Number(b === 'manifest.json') - Number(a === 'manifest.json'));
  for (const f of names) await lake.delete(`${prefix}/${f}`);
}

/** Finishes the removal of a folder a crashed erasure had already tombstoned (its manifest gone). */
async function finishRetired(
  lake: ObjectStore,
  prefix: string,
  files: Set<string>,
  report: PlaceReport,
): Promise<string | null> {
  const tomb = JSON.parse((await lake.get(`${prefix}/tombstone.json`)).toString('utf8')) as Tombstone;
  const left = [...files].filter((f) => f !== 'tombstone.json');
  if (left.length > 0 && lake.delete) {
    for (const f of left) await lake.delete(`${prefix}/${f}`);
    report.files.push(`${prefix}/ (leftovers of an interrupted erasure)`);
    report.filesRewritten++;
  }
  return tomb.replacedBy;
}

/**
 * Rewrites every snapshot of the dataset holding the customer's rows. Returns the report and the
 * replacements made now or by earlier erasures (old id → new id), which the feature sets follow.
 */
export async function forgetSnapshots(
  lake: ObjectStore,
  dataset: string,
  subject: Subject,
  at: string,
  rewrittenRaw: ReadonlyMap<string, { sha256: string; removed: number }>,
): Promise<{ report: PlaceReport; replaced: Map<string, string> }> {
  const report = emptyPlace();
  const replaced = new Map<string, string>();
  const root = `snapshots/${dataset}/`;
  for (const [id, files] of await folders(lake, root)) {
    const prefix = `${root}${id}`;
    try {
      if (files.has('tombstone.json') && !files.has('manifest.json')) {
        const to = await finishRetired(lake, prefix, files, report);
        if (to) replaced.set(id, to);
        continue;
      }
      if (!files.has('manifest.json')) continue;
      report.filesScanned++;
      const m = JSON.parse((await lake.get(`${prefix}/manifest.json`)).toString('utf8')) as SnapshotManifest;
      // Only labelled rows (id, label, inputs) belong to customers; candles do not.
      if (m.schema[1]?.name !== 'label') continue;
      const data = await lake.get(m.dataKey);
      if (sha256(data) !== m.dataSha256)
        report.problems.push({
          file: m.dataKey,
          problem: "does not match its manifest's sha256; rewritten all the same",
        });
      const buffer = arrayBuffer(data);
      const meta = parquetMetadata(buffer);
      const records = (await parquetReadObjects({ file: buffer })) as Record<string, unknown>[];
      const idName = m.schema[0]?.name ?? 'customer_id';
      const kept = records.filter((r) => !subject.has(String(r[idName])));
      const removed = records.length - kept.length;
      if (removed === 0) continue;

      const rows = kept.map((r) => m.schema.map((c) => (r[c.name] === undefined ? null : r[c.name])));
      const required = meta.schema.slice(1).findIndex((e) => e.repetition_type !== 'REQUIRED');
      const parquet = snapshotParquet(m.schema, rows, required < 0 ? m.schema.length : required);
      const identity = snapshotIdentity(
        m.schema,
        Date.parse(m.cutoff),
        m.horizonHours,
        rows,
        m.contract?.digest,
      );
      const next = `${root}${identity.id}`;
      const manifest: SnapshotManifest & { replaces: string; erasedAt: string } = {
        ...m,
        id: identity.id,
        rows: rows.length,
        positives: kept.filter((r) => Number(r.label) === 1).length,
        rowsHash: identity.rowsHash,
        dataKey: `${next}/data.parquet`,
        dataSha256: sha256(parquet),
        sources: m.sources.map((s) => {
          const raw = rewrittenRaw.get(s.key);
          return raw ? { ...s, sha256: raw.sha256, rows: s.rows - raw.removed } : s;
        }),
        replaces: id,
        erasedAt: at,
      };
      if (!(await lake.exists(`${next}/manifest.json`))) {
        await lake.put(manifest.dataKey, parquet);
        await lake.put(`${next}/manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
      }
      await retire(lake, prefix, files, {
        format: 'driftwood.tombstone/v1',
        kind: 'snapshot',
        id,
        replacedBy: identity.id,
        reason: 'erasure',
        at,
      });
      replaced.set(id, identity.id);
      report.filesRewritten++;
      report.rowsRemoved += removed;
      report.files.push(`${prefix} -> ${next}`);
    } catch (err) {
      report.problems.push({
        file: prefix,
        problem: `not rewritten: ${(err as Error).message}`,
        failed: true,
      });
    }
  }
  return { report, replaced };
}

const PARQUET_TYPES: Record<string, 'STRING' | 'INT32' | 'INT64' | 'FLOAT' | 'DOUBLE' | 'BOOLEAN'> = {
  BYTE_ARRAY: 'STRING',
  INT32: 'INT32',
  INT64: 'INT64',
  FLOAT: 'FLOAT',
  DOUBLE: 'DOUBLE',
  BOOLEAN: 'BOOLEAN',
};

/**
 * Rewrites every feature set of the dataset holding the customer's rows: the matrix without them,
 * the sample without them, the same fitted transform, and a manifest whose sha256 digests are the
 * new files'. A feature set of a snapshot follows its snapshot to the new id (training finds the
 * features of a snapshot by its id); one built from the warehouse gets an id from its new content.
 */
export async function forgetFeatures(
  lake: ObjectStore,
  dataset: string,
  subject: Subject,
  at: string,
  snapshots: ReadonlyMap<string, string>,
): Promise<PlaceReport> {
  const report = emptyPlace();
  const root = `features/${dataset}/`;
  for (const [id, files] of await folders(lake, root)) {
    const prefix = featuresPrefix(dataset, id);
    try {
      if (files.has('tombstone.json') && !files.has('manifest.json')) {
        await finishRetired(lake, prefix, files, report);
        continue;
      }
      if (!files.has('manifest.json')) continue;
      report.filesScanned++;
      const m = JSON.parse((await lake.get(`${prefix}/manifest.json`)).toString('utf8')) as FeaturesManifest;
      const data = await lake.get(`${prefix}/features.parquet`);
      const buffer = arrayBuffer(data);
      const meta = parquetMetadata(buffer);
      const columns = meta.schema.slice(1);
      const idName = columns[0]?.name ?? 'customer_id';
      const records = (await parquetReadObjects({ file: buffer })) as Record<string, unknown>[];
      const kept = records.filter((r) => !subject.has(String(r[idName])));
      const sampleText = files.has('sample.csv')
        ? (await lake.get(`${prefix}/sample.csv`)).toString('utf8')
        : '';
      const sample = planCsvRewrite(sampleText, subject);
      const removed = records.length - kept.length;
      if (removed === 0 && !sample.changed) continue;

      const parquet = Buffer.from(
        parquetWriteBuffer({
          columnData: columns.map((c) => {
            const type = PARQUET_TYPES[c.type ?? 'BYTE_ARRAY'] ?? 'STRING';
            const values = kept.map((r) => r[c.name]);
            return {
              name: c.name,
              data: (type === 'FLOAT' ? Float32Array.from(values as number[]) : values) as never,
              type,
              nullable: c.repetition_type !== 'REQUIRED',
            };
          }),
        }),
      );
      const newId = m.snapshot
        ? (snapshots.get(m.snapshot) ?? sha256(`${id}:${sha256(parquet)}`).slice(0, 16))
        : sha256(`${id}:${sha256(parquet)}`).slice(0, 16);
      const next = featuresPrefix(dataset, newId);
      const splits = { train: 0, validation: 0, holdout: 0 };
      for (const r of kept) splits[r.split as keyof typeof splits]++;
      const transform = await lake.get(`${prefix}/transform.json`);
      const manifest: FeaturesManifest & { replaces: string; erasedAt: string } = {
        ...m,
        id: newId,
        snapshot: m.snapshot ? (snapshots.get(m.snapshot) ?? m.snapshot) : null,
        rows: kept.length,
        splits,
        files: { 'features.parquet': sha256(parquet), 'transform.json': sha256(transform) },
        replaces: id,
        erasedAt: at,
      };
      if (!(await lake.exists(`${next}/manifest.json`))) {
        await lake.put(`${next}/features.parquet`, parquet);
        await lake.put(`${next}/transform.json`, transform);
        await lake.put(`${next}/sample.csv`, sample.changed ? sample.text : sampleText);
        await lake.put(`${next}/manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
      }
      await retire(lake, prefix, files, {
        format: 'driftwood.tombstone/v1',
        kind: 'features',
        id,
        replacedBy: newId,
        reason: 'erasure',
        at,
      });
      report.filesRewritten++;
      report.rowsRemoved += removed;
      report.files.push(`${prefix} -> ${next}`);
    } catch (err) {
      report.problems.push({
        file: prefix,
        problem: `not rewritten: ${(err as Error).message}`,
        failed: true,
      });
    }
  }
  return report;
}
