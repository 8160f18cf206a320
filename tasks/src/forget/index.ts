import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type ObjectStore, sha256 } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import { tokenise } from '../pii.js';
import type { Warehouse } from '../warehouse/db.js';
import { checkCustomerId, customerFileFormat, planFileRewrite, planJsonlRewrite } from './plan.js';

export interface ForgetOptions {
  customerId: string;
  dataset: string;
  /** Key of the PII tokeniser: the audit record names the customer by token, never by id. */
  piiKey: string | undefined;
  now: () => number;
  /** The API's prediction log folder (`<DRIFTWOOD_HOME>/predictions`), if this host keeps one. */
  predictionsDir?: string;
}

export interface ForgetResult {
  dataset: string;
  /** HMAC token of the customer id: lets an auditor confirm a request was served without storing the id. */
  subjectToken: string;
  found: boolean;
  warehouse: { customers: number; events: number; labels: number };
  lake: { filesScanned: number; filesRewritten: number; rowsRemoved: number; parquetNotRewritten: string[] };
  predictions: { filesRewritten: number; linesRemoved: number };
  auditKey: string;
}

const TABLES = ['customers', 'events', 'labels'] as const;

/**
 * Erases one customer (GDPR art. 17): their rows in the warehouse and in every raw or quarantined lake
 * file (CSV, JSON Lines), their lines in the prediction log, then writes an audit record that holds counts and a token, not the id or any PII.
 * Idempotent: a second request finds nothing and records that it found nothing.
 */
export async function runForget(
  options: ForgetOptions,
  deps: { lake: ObjectStore; db: Warehouse; log: Logger },
): Promise<ForgetResult> {
  const customerId = checkCustomerId(options.customerId);
  const subjectToken = tokenise(`customer:${customerId}`, options.piiKey);
  const startedAt = options.now();

  // The lake first: if the process dies half-way, the warehouse rows are still there and a re-run
  // finishes the job; the other order would leave raw rows a later re-ingest could load again.
  const lake = { filesScanned: 0, filesRewritten: 0, rowsRemoved: 0, parquetNotRewritten: [] as string[] };
  const rewritten: { key: string; sha256: string; etag: string; size: number; removed: number }[] = [];
  const objects = [
    ...(await deps.lake.list(`raw/${options.dataset}/`)),
    ...(await deps.lake.list(`quarantine/${options.dataset}/`)),
  ];
  for (const obj of objects) {
    const format = customerFileFormat(obj.key, options.dataset);
    if (format === undefined) continue;
    lake.filesScanned++;
    // No Parquet writer ships with the tasks: such files are named in the result for a manual rewrite.
    if (format === 'parquet') {
      lake.parquetNotRewritten.push(obj.key);
      continue;
    }
    const text = (await deps.lake.get(obj.key)).toString('utf8');
    const plan =
      format === 'csv'
        ? planFileRewrite(text, customerId)
        : planJsonlRewrite(text, customerId, 'customer_id');
    if (!plan.changed) continue;
    const info = await deps.lake.put(obj.key, plan.text);
    lake.filesRewritten++;
    lake.rowsRemoved += plan.removed;
    rewritten.push({
      key: obj.key,
      sha256: sha256(plan.text),
      etag: info.etag,
      size: info.size,
      removed: plan.removed,
    });
  }

  const warehouse = { customers: 0, events: 0, labels: 0 };
  const sqlite = deps.db.client.config.client === 'better-sqlite3';
  await deps.db.transaction(async (trx) => {
    for (const table of TABLES)
      warehouse[table] = await trx(table).where({ customer_id: customerId }).delete();
    // The ledger follows the rewritten files, so the next ingest sees them as already loaded
    // (their remaining rows are in the warehouse) instead of re-reading every touched hour.
    for (const f of rewritten) {
      await trx('ingest_ledger')
        .where({ object_key: f.key })
        .update({
          sha256: f.sha256,
          etag: f.etag,
          size: f.size,
          rows_read: trx.raw('rows_read - ?', [f.removed]),
          rows_loaded: trx.raw('rows_loaded - ?', [f.removed]),
        });
    }
  });

  // SQLite leaves deleted rows in free space inside pages (secure_delete does not reach them all) and
  // old page images in the write-ahead log: VACUUM rewrites the file, the checkpoint empties the log.
  // PostgreSQL: dead tuples go at the next (auto)vacuum, see docs/security.md.
  if (sqlite) {
    await deps.db.raw('VACUUM');
    await deps.db.raw('PRAGMA wal_checkpoint(TRUNCATE)');
  }

  const predictions = options.predictionsDir
    ? await forgetPredictions(options.predictionsDir, tokenise(customerId, options.piiKey))
    : { filesRewritten: 0, linesRemoved: 0 };

  const found =
    lake.rowsRemoved > 0 || predictions.linesRemoved > 0 || Object.values(warehouse).some((n) => n > 0);
  const auditKey = `audit/forget/${new Date(startedAt).toISOString().replace(/[:.]/g, '-')}-${subjectToken.slice(0, 12)}.json`;
  const result: ForgetResult = {
    dataset: options.dataset,
    subjectToken,
    found,
    warehouse,
    lake,
    predictions,
    auditKey,
  };
  await deps.lake.put(
    auditKey,
    `${JSON.stringify({ action: 'forget', at: new Date(startedAt).toISOString(), completedAt: new Date(options.now()).toISOString(), ...result }, null, 2)}\n`,
  );
  if (lake.parquetNotRewritten.length > 0)
    deps.log.warn(
      { files: lake.parquetNotRewritten.length },
      'forget: Parquet lake files were not rewritten (no Parquet writer): rewrite them by hand',
    );
  deps.log.info({ subjectToken, found, warehouse, lake }, 'forget: customer erased from warehouse and lake');
  return result;
}

/**
 * The API logs predictions with the customer's token (the same HMAC as here), never the id: lines
 * carrying that token are removed from every `predictions.jsonl` under the folder.
 */
async function forgetPredictions(
  dir: string,
  customerToken: string,
): Promise<{ filesRewritten: number; linesRemoved: number }> {
  const out = { filesRewritten: 0, linesRemoved: 0 };
  let files: string[];
  try {
    files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('predictions.jsonl'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw err;
  }
  for (const rel of files.sort()) {
    const file = path.join(dir, rel);
    // The API may append while we rewrite: if the file grew after it was read, read it again.
    for (;;) {
      const text = await readFile(file, 'utf8');
      const plan = planJsonlRewrite(text, customerToken);
      if (!plan.changed) break;
      const tmp = `${file}.forget.${process.pid}.tmp`;
      await writeFile(tmp, plan.text);
      if ((await stat(file)).size !== Buffer.byteLength(text)) continue;
      await rename(tmp, file);
      out.filesRewritten++;
      out.linesRemoved += plan.removed;
      break;
    }
  }
  return out;
}
