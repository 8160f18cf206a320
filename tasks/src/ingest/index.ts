import { parseCsv } from '../csv.js';
import { type ObjectInfo, type ObjectStore, sha256 } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import type { Warehouse } from '../warehouse/db.js';
import { type LedgerEntry, planIngest } from './plan.js';
import { specForKey } from './rows.js';

export interface IngestOptions {
  dataset: string;
  interval?: { start: number; end: number };
  piiKey: string | undefined;
  now: () => number;
}

export interface IngestResult {
  dataset: string;
  objectsSeen: number;
  loaded: number;
  skipped: number;
  duplicates: number;
  quarantined: number;
  rowsRead: number;
  rowsLoaded: number;
  rowsRejected: number;
  durationMs: number;
  rowsPerSecond: number;
}

type FileOutcome = {
  status: 'loaded' | 'duplicate' | 'quarantined' | 'unchanged';
  rowsRead: number;
  rowsLoaded: number;
  reason?: string;
};

/**
 * Loads new raw objects into the warehouse exactly once. Each object's rows and its ledger entry are
 * written in one transaction, so a crash leaves either the whole file loaded and recorded, or neither.
 * Files that cannot be parsed are copied to `quarantine/` with a reason file; rows that fail
 * validation are quarantined the same way, the rest of the file still loads.
 */
export async function runIngest(
  options: IngestOptions,
  deps: { lake: ObjectStore; db: Warehouse; log: Logger },
): Promise<IngestResult> {
  const t0 = performance.now();
  const objects = await deps.lake.list(`raw/${options.dataset}/`);
  const ledgerRows: LedgerEntry[] = await deps
    .db('ingest_ledger')
    .where({ dataset: options.dataset })
    .select('object_key', 'etag', 'sha256', 'status');
  const ledger = new Map(ledgerRows.map((r) => [r.object_key, r]));
  const plan = planIngest(objects, ledger, options.interval);
  deps.log.info(
    { dataset: options.dataset, toLoad: plan.load.length, alreadyLoaded: plan.skip.length },
    'ingest: plan ready',
  );

  const result: IngestResult = {
    dataset: options.dataset,
    objectsSeen: objects.length,
    loaded: 0,
    skipped: plan.skip.length,
    duplicates: 0,
    quarantined: 0,
    rowsRead: 0,
    rowsLoaded: 0,
    rowsRejected: 0,
    durationMs: 0,
    rowsPerSecond: 0,
  };
  let done = 0;
  for (const obj of plan.load) {
    const outcome = await ingestObject(obj, options, deps);
    result.rowsRead += outcome.rowsRead;
    result.rowsLoaded += outcome.rowsLoaded;
    result.rowsRejected += outcome.rowsRead - outcome.rowsLoaded;
    if (outcome.status === 'unchanged') result.skipped++;
    else if (outcome.status === 'loaded') result.loaded++;
    else if (outcome.status === 'duplicate') result.duplicates++;
    else result.quarantined++;
    if (++done % 24 === 0)
      deps.log.info({ done, total: plan.load.length, rows: result.rowsLoaded }, 'ingest: progress');
  }
  result.durationMs = Math.round(performance.now() - t0);
  result.rowsPerSecond =
    result.durationMs > 0 ? Math.round((result.rowsLoaded / result.durationMs) * 1000) : 0;
  return result;
}

async function ingestObject(
  obj: ObjectInfo,
  options: IngestOptions,
  deps: { lake: ObjectStore; db: Warehouse; log: Logger },
): Promise<FileOutcome> {
  const body = await deps.lake.get(obj.key);
  const digest = sha256(body);
  const record = async (trx: Warehouse, outcome: FileOutcome): Promise<void> => {
    await trx('ingest_ledger')
      .insert({
        object_key: obj.key,
        dataset: options.dataset,
        etag: obj.etag,
        sha256: digest,
        size: obj.size,
        status: outcome.status,
        rows_read: outcome.rowsRead,
        rows_loaded: outcome.rowsLoaded,
        reason: outcome.reason ?? null,
        loaded_at: options.now(),
      })
      .onConflict('object_key')
      .merge();
  };

  // Rewritten with the same bytes (a new etag, same content): note the etag, load nothing.
  const same = await deps.db('ingest_ledger').where({ object_key: obj.key, sha256: digest }).first('status');
  if (same) {
    await deps.db('ingest_ledger').where({ object_key: obj.key }).update({ etag: obj.etag });
    return { status: 'unchanged', rowsRead: 0, rowsLoaded: 0 };
  }

  const twin = await deps
    .db('ingest_ledger')
    .where({ sha256: digest, status: 'loaded' })
    .whereNot({ object_key: obj.key })
    .first('object_key');
  if (twin) {
    const outcome: FileOutcome = {
      status: 'duplicate',
      rowsRead: 0,
      rowsLoaded: 0,
      reason: `same content as ${twin.object_key}`,
    };
    await record(deps.db, outcome);
    deps.log.warn({ key: obj.key, original: twin.object_key }, 'ingest: duplicate file recorded, not loaded');
    return outcome;
  }

  const spec = specForKey(obj.key);
  let parsed: ReturnType<typeof parseCsv> | undefined;
  let fileReason: string | undefined;
  if (!spec) fileReason = 'unknown file kind (expected customers.csv, events.csv or labels.csv)';
  else {
    try {
      parsed = parseCsv(body.toString('utf8'));
      const missing = spec.required.filter((c) => !parsed?.header.includes(c));
      if (missing.length > 0) fileReason = `missing required column(s): ${missing.join(', ')}`;
    } catch (err) {
      fileReason = `unreadable CSV: ${(err as Error).message}`;
    }
  }
  if (fileReason || !spec || !parsed) {
    const reason = fileReason ?? 'unreadable';
    await quarantine(deps.lake, obj.key, body, [{ row: null, reason }]);
    const outcome: FileOutcome = {
      status: 'quarantined',
      rowsRead: parsed?.rows.length ?? 0,
      rowsLoaded: 0,
      reason,
    };
    await record(deps.db, outcome);
    deps.log.warn({ key: obj.key, reason }, 'ingest: file quarantined');
    return outcome;
  }

  const good: Record<string, unknown>[] = [];
  const rejected: { row: number; reason: string }[] = [];
  parsed.rows.forEach((raw, i) => {
    const p = spec.parse(raw, options.piiKey);
    if (p.ok) good.push({ ...p.row, source_key: obj.key });
    else rejected.push({ row: i + 2, reason: p.reason });
  });
  if (rejected.length > 0) await quarantine(deps.lake, obj.key, body, rejected);
  const outcome: FileOutcome = { status: 'loaded', rowsRead: parsed.rows.length, rowsLoaded: good.length };
  if (rejected.length > 0) outcome.reason = `${rejected.length} row(s) quarantined`;
  await deps.db.transaction(async (trx) => {
    // A re-load of a changed object replaces what that object loaded before (idempotent by object).
    await trx(spec.table).where({ source_key: obj.key }).delete();
    for (let i = 0; i < good.length; i += 500) {
      await trx(spec.table)
        .insert(good.slice(i, i + 500))
        .onConflict(spec.key)
        .merge();
    }
    await record(trx, outcome);
  });
  return outcome;
}

async function quarantine(
  lake: ObjectStore,
  key: string,
  body: Buffer,
  problems: { row: number | null; reason: string }[],
): Promise<void> {
  const target = key.replace(/^raw\//, 'quarantine/');
  await lake.put(target, body);
  await lake.put(`${target}.reason.json`, `${JSON.stringify({ source: key, problems }, null, 2)}\n`);
}
