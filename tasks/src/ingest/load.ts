import { createHash, type Hash } from 'node:crypto';
import { pipeline, type Readable, Transform } from 'node:stream';
import { type AnomalyRule, checkColumns, type Problem, validateRow } from '../contracts/rows.js';
import type { ColumnContract, Contract, TableContract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import type { ObjectInfo, ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import { tokenise } from '../pii.js';
import { csvRow, type FileFormat, formatOfKey, openRows, ReaderError } from '../readers/index.js';
import type { Warehouse } from '../warehouse/db.js';
import { type BinaryType, binaryTypes } from './copy-binary.js';
import { isKeyClash, PgCopyLoader } from './pg-copy.js';
import { maskPii, maskProblem, RejectedRows } from './rejected.js';
import { storedName } from './schema.js';
import { BinaryCopySink, CopySink, type RowSink, UpsertSink } from './sinks.js';

/** Where a crash can happen during a load; the ingest tests kill the process at each of them. */
export type KillPoint = 'file_start' | 'mid_rows' | 'after_rows' | 'after_quarantine' | 'after_commit';

export interface FileReport {
  key: string;
  table: string | null;
  status: 'loaded' | 'duplicate' | 'quarantined' | 'unchanged';
  rowsRead: number;
  rowsGood: number;
  rowsCorrected: number;
  rowsQuarantined: number;
  /**
   * Accepted rows whose key a later row of the same file repeats: the later row is kept (last wins),
   * so the table holds `rowsGood + rowsCorrected − rowsDuplicate` rows of the file.
   */
  rowsDuplicate: number;
  /** (corrected + quarantined) / read: what the contract's alert threshold is compared with. */
  anomalyShare: number;
  anomalies: Partial<
    Record<
      AnomalyRule | 'missing_column' | 'extra_column' | 'type_change' | 'unreadable' | 'duplicate_key',
      number
    >
  >;
  extraColumns: string[];
  reason?: string;
}

export interface LoadContext {
  contract: Contract;
  dataset: string;
  piiKey: string | undefined;
  now: () => number;
  batchRows: number;
  /** Where rejected rows spill past their memory bound: outside the lake (see RejectedRows). */
  tmpDir?: string;
  /** Each PostgreSQL table's binary COPY types (null: CSV COPY), as found during this run. */
  binaryTypes?: Map<string, BinaryType[] | null>;
  /** Called at each kill point; the CLI wires it to a fault-injection setting, tests to SIGKILL. */
  checkpoint?: (point: KillPoint, key: string) => void;
}

/** Most detailed problems kept per file in a reason file; counts by rule are always complete. */
const MAX_PROBLEMS = 10_000;

class FileRejected extends Error {
  constructor(
    readonly rule: 'missing_column' | 'extra_column' | 'type_change' | 'unreadable' | AnomalyRule,
    message: string,
    readonly problems: Problem[] = [],
  ) {
    super(message);
  }
}
/** A key repeated within one file: the reason file names each one. */
export interface DuplicateKey {
  row: number;
  key: unknown;
  /** The row of the file that holds the same key first. */
  firstRow: number;
}

/** A direct COPY met a key already in the table: the file is loaded again through a merge. */
class KeyClash extends Error {}
class NotLoaded extends Error {
  constructor(
    readonly outcome: 'duplicate' | 'unchanged',
    readonly twin: string,
  ) {
    super(outcome);
  }
}

function hashing(hash: Hash): Transform {
  return new Transform({
    transform(chunk, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

async function sha256Of(lake: ObjectStore, key: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of lake.stream(key)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const quarantineKey = (key: string): string => key.replace(/^raw\//, 'quarantine/');

/**
 * Loads one lake object into its table inside one transaction (the staging area): the rows, the
 * ledger entry and nothing else are committed together, so a crash at any point leaves either the
 * whole file recorded or nothing, and the next run loads it once. Rows are streamed and inserted in
 * batches; memory holds one batch. Outcomes that must not load (a duplicate, a rejected file) are
 * found while streaming and roll the transaction back.
 */
export async function loadObject(
  obj: ObjectInfo,
  ctx: LoadContext,
  deps: { lake: ObjectStore; db: Warehouse; log: Logger },
): Promise<FileReport> {
  const started = ctx.now();
  const table = tableOf(ctx.contract, obj.key);
  const report: FileReport = {
    key: obj.key,
    table: table?.name ?? null,
    status: 'loaded',
    rowsRead: 0,
    rowsGood: 0,
    rowsCorrected: 0,
    rowsQuarantined: 0,
    rowsDuplicate: 0,
    anomalyShare: 0,
    anomalies: {},
    extraColumns: [],
  };
  const problems: Problem[] = [];
  const keys = { track: true, seen: new Map<string, number>(), duplicates: [] as DuplicateKey[] };
  const bump = (rule: keyof FileReport['anomalies'], n = 1) => {
    report.anomalies[rule] = (report.anomalies[rule] ?? 0) + n;
  };
  const typeErrors = new Map<string, number>();
  const rejected = new RejectedRows(table, ctx.piiKey, ctx.tmpDir);
  /** Forgets a pass over the rows, before the file is read again. */
  const resetCounts = () => {
    report.rowsRead = report.rowsGood = report.rowsCorrected = report.rowsQuarantined = 0;
    report.rowsDuplicate = 0;
    report.anomalies = {};
    report.extraColumns = [];
    problems.length = 0;
    keys.seen.clear();
    keys.duplicates.length = 0;
    typeErrors.clear();
    void rejected.discard();
  };
  let hash: Hash | undefined;
  const format = formatOfKey(obj.key);
  ctx.checkpoint?.('file_start', obj.key);

  let digest = '';
  const record = async (trx: Warehouse): Promise<void> => {
    await trx('ingest_ledger')
      .insert({
        object_key: obj.key,
        dataset: ctx.dataset,
        etag: obj.etag,
        sha256: digest,
        size: obj.size,
        status: report.status,
        rows_read: report.rowsRead,
        rows_loaded: report.rowsGood + report.rowsCorrected - report.rowsDuplicate,
        rows_duplicate: report.rowsDuplicate,
        rows_corrected: report.rowsCorrected,
        rows_quarantined: report.rowsQuarantined,
        contract_version: ctx.contract.version,
        extra_columns: report.extraColumns.length > 0 ? report.extraColumns.join(',').slice(0, 2000) : null,
        reason: report.reason?.slice(0, 2000) ?? null,
        started_at: started,
        loaded_at: ctx.now(),
      })
      .onConflict('object_key')
      .merge();
  };

  try {
    if (!table || !format)
      throw new FileRejected(
        'unreadable',
        `no table of contract '${ctx.contract.dataset}' takes files named like ${obj.key}`,
      );
    await deps.db.transaction(async (trx) => {
      // A changed object replaces what it loaded before (idempotent by object); a new one has nothing
      // to replace, which spares a scan of the table by source key.
      if (await trx('ingest_ledger').where({ object_key: obj.key, status: 'loaded' }).first('object_key'))
        await trx(table.name).where({ source_key: obj.key }).delete();
      const columns = [...table.columns.map(storedName), 'source_key'];
      const keyColumn = storedName(table.columns.find((c) => c.name === table.key) as ColumnContract);
      const pass = (sink: RowSink) =>
        readRows(obj, format, table, ctx, deps.lake, sink, { report, problems, typeErrors, rejected, keys });
      if (!isPostgres(trx)) {
        // SQLite: batched multi-row upserts in the file's transaction.
        hash = await pass(new UpsertSink(trx, table.name, columns, keyColumn));
      } else {
        // PostgreSQL: one COPY straight into the table; a key already there (or repeated in the file)
        // makes it fail, and the file is loaded again through a staging table and a merge.
        // Binary when every column pairs naturally with its table type, else CSV text.
        // Looked up once per table and run: a run's files mostly share a few tables.
        let types = ctx.binaryTypes?.get(table.name);
        if (types === undefined) {
          types = (await binaryTypes(trx, table, columns)) ?? null;
          ctx.binaryTypes?.set(table.name, types);
        }
        const copySink = (mode: 'direct' | 'staged'): RowSink =>
          types
            ? new BinaryCopySink(
                new PgCopyLoader(trx, table.name, columns, keyColumn, mode, 'binary'),
                columns,
                types,
                table.name,
              )
            : new CopySink(new PgCopyLoader(trx, table.name, columns, keyColumn, mode), columns);
        await trx.raw('SAVEPOINT dw_direct_copy');
        try {
          // A key repeated in the file fails the direct COPY, so it needs no memory of keys seen;
          // the staged pass that follows a clash counts the repeats.
          keys.track = false;
          hash = await pass(copySink('direct'));
          await trx.raw('RELEASE SAVEPOINT dw_direct_copy');
        } catch (err) {
          if (!(err instanceof KeyClash)) throw err;
          await trx.raw('ROLLBACK TO SAVEPOINT dw_direct_copy');
          deps.log.debug({ key: obj.key }, 'ingest: keys already loaded, merging through a staging table');
          resetCounts();
          keys.track = true;
          hash = await pass(copySink('staged'));
        }
      }
      ctx.checkpoint?.('after_rows', obj.key);

      const rules = ctx.contract.file_rules;
      if (rules.type_change === 'quarantine_file' && report.rowsRead > 0) {
        for (const [column, n] of typeErrors) {
          if (n / report.rowsRead > rules.type_change_share)
            throw new FileRejected(
              'type_change',
              `column ${column}: ${n} of ${report.rowsRead} values have the wrong type (type change; more than ${rules.type_change_share})`,
              problems,
            );
        }
      }
      digest = format === 'parquet' || !hash ? await sha256Of(deps.lake, obj.key) : hash.digest('hex');
      const same = await trx('ingest_ledger').where({ object_key: obj.key, sha256: digest }).first('status');
      if (same) throw new NotLoaded('unchanged', obj.key);
      const twin = await trx('ingest_ledger')
        .where({ sha256: digest, status: 'loaded' })
        .whereNot({ object_key: obj.key })
        .first('object_key');
      if (twin) throw new NotLoaded('duplicate', twin.object_key);

      // Anything the load changed (a row dropped, corrected, or merged with a later row of the same
      // key) gets a reason file, so every such row can be traced to its row of the raw file.
      if (report.rowsQuarantined > 0 || report.rowsCorrected > 0 || report.rowsDuplicate > 0) {
        // The rejected rows themselves (PII tokenised), so a dropped row can be looked at and replayed.
        const rejectedKey = `${quarantineKey(obj.key)}.rejected.jsonl`;
        if (report.rowsQuarantined > 0) await rejected.save(deps.lake, rejectedKey);
        await writeReason(deps.lake, obj.key, {
          source: obj.key,
          sha256: digest,
          file_status: 'loaded',
          rows: {
            read: report.rowsRead,
            good: report.rowsGood,
            corrected: report.rowsCorrected,
            quarantined: report.rowsQuarantined,
            duplicate_key: report.rowsDuplicate,
            loaded: report.rowsGood + report.rowsCorrected - report.rowsDuplicate,
          },
          ...(report.rowsQuarantined > 0 ? { rejected_rows: rejectedKey } : {}),
          problems,
          ...(report.rowsDuplicate > 0
            ? {
                duplicate_keys: {
                  column: table.key,
                  action: 'merged: the last row with the key is loaded, the earlier ones are not',
                  rows: keys.duplicates,
                },
              }
            : {}),
        });
        report.reason = reasonOf(report);
      }
      ctx.checkpoint?.('after_quarantine', obj.key);
      await record(trx);
    });
  } catch (err) {
    await rejected.discard();
    if (err instanceof NotLoaded) {
      report.rowsRead = report.rowsGood = report.rowsCorrected = report.rowsQuarantined = 0;
      report.rowsDuplicate = 0;
      report.anomalies = {};
      if (err.outcome === 'unchanged') {
        // Rewritten with the same bytes (a new etag, same content): note the etag, load nothing.
        await deps.db('ingest_ledger').where({ object_key: obj.key }).update({ etag: obj.etag });
        report.status = 'unchanged';
        return report;
      }
      report.status = 'duplicate';
      report.reason = `same content as ${err.twin}`;
      await record(deps.db);
      deps.log.warn({ key: obj.key, original: err.twin }, 'ingest: duplicate file recorded, not loaded');
      return report;
    }
    if (!(err instanceof FileRejected)) throw err;
    if (!digest) digest = await sha256Of(deps.lake, obj.key);
    // The whole file goes to quarantine: every row read counts as quarantined, none as loaded.
    report.status = 'quarantined';
    report.reason = err.message;
    if (err.rule === 'missing_column' || err.rule === 'type_change' || err.rule === 'unreadable')
      bump(err.rule);
    report.rowsQuarantined = report.rowsRead;
    report.rowsGood = report.rowsCorrected = report.rowsDuplicate = 0;
    await pipelineCopy(deps.lake, obj.key, quarantineKey(obj.key));
    await writeReason(deps.lake, obj.key, {
      source: obj.key,
      sha256: digest,
      file_status: 'quarantined',
      rule: err.rule,
      reason: err.message,
      rows: { read: report.rowsRead, quarantined: report.rowsRead },
      problems:
        err.problems.length > 0
          ? err.problems
          : [
              {
                row: null,
                column: null,
                value: null,
                rule: err.rule,
                action: 'quarantined_file',
                detail: err.message,
              },
            ],
    });
    await record(deps.db);
    deps.log.warn({ key: obj.key, reason: err.message }, 'ingest: file quarantined');
  }
  report.anomalyShare =
    report.rowsRead > 0 ? (report.rowsCorrected + report.rowsQuarantined) / report.rowsRead : 0;
  if (report.status === 'loaded') ctx.checkpoint?.('after_commit', obj.key);
  return report;
}

/** The ledger's one-line reason for a loaded file that the load changed. */
function reasonOf(r: FileReport): string {
  const parts = [
    r.rowsQuarantined > 0 ? `${r.rowsQuarantined} row(s) quarantined` : '',
    r.rowsCorrected > 0 ? `${r.rowsCorrected} row(s) corrected` : '',
    r.rowsDuplicate > 0 ? `${r.rowsDuplicate} duplicate key(s) merged (last row wins)` : '',
  ];
  return parts.filter((p) => p !== '').join('; ');
}

const isPostgres = (db: Warehouse): boolean => (db.client.config as { client?: string }).client === 'pg';

interface PassState {
  report: FileReport;
  problems: Problem[];
  typeErrors: Map<string, number>;
  rejected: RejectedRows;
  keys: { track: boolean; seen: Map<string, number>; duplicates: DuplicateKey[] };
}

/**
 * One pass over a file's rows into a sink: opens the object (hashing it as it streams), checks its
 * columns, validates each row per the contract and sends the accepted ones on in batches. CSV rows
 * are read a chunk at a time, and a row whose every value is clean is written by the per-column
 * functions the sink compiles from the contract (a binary tuple or a CSV line), with no record per
 * row; any other row goes through validateRow. Throws FileRejected when the file must be quarantined.
 */
async function readRows(
  obj: ObjectInfo,
  format: FileFormat,
  table: TableContract,
  ctx: LoadContext,
  lake: ObjectStore,
  sink: RowSink,
  { report, problems, typeErrors, rejected, keys }: PassState,
): Promise<Hash> {
  const bump = (rule: keyof FileReport['anomalies'], n = 1) => {
    report.anomalies[rule] = (report.anomalies[rule] ?? 0) + n;
  };
  const hash = createHash('sha256');
  // CSV and JSON Lines are hashed as they stream by; Parquet is read by range, so hashed apart.
  const source = await openRows(format, {
    stream: () => {
      // pipeline, not pipe: a failed read (S3 reset) fails the load instead of hanging it, and a
      // reader that stops early (a rejected file) closes the object's stream too.
      const hashed = hashing(hash);
      pipeline(lake.stream(obj.key), hashed, () => {});
      return hashed;
    },
    size: obj.size,
    range: (s, e) => lake.getRange(obj.key, s, e),
  }).catch((err) => {
    throw err instanceof ReaderError
      ? new FileRejected('unreadable', `unreadable ${format}: ${err.message}`)
      : err;
  });
  const cols = checkColumns(source.columns, table, ctx.contract.file_rules.extra_columns);
  report.extraColumns = cols.extra;
  if (cols.extra.length > 0) bump('extra_column', cols.extra.length);
  if (cols.reject)
    throw new FileRejected(cols.missing.length > 0 ? 'missing_column' : 'extra_column', cols.reject);

  const pii = new Set(table.columns.filter((c) => c.role === 'pii').map((c) => c.name));
  const refused = (err: unknown): Error => {
    if (sink.copies && isKeyClash(err)) return new KeyClash();
    // The driver's message carries the whole statement with its values: keep it out of logs.
    return new DriftwoodError(
      'SCHEMA_MISMATCH',
      `table ${table.name}: the warehouse refused rows from ${obj.key} (${String((err as Error).message)
        .split(' - ')
        .at(-1)
        ?.slice(0, 300)})`,
    );
  };
  // Keys seen in this file (first row of each): a repeated one is merged by the sink (last wins),
  // and counted here so the report and the reason file say so.
  const keyIsPii = pii.has(table.key);
  const noteKey = (key: unknown, row: number): void => {
    if (!keys.track || key === null || key === undefined) return;
    const k = String(key);
    const first = keys.seen.get(k);
    if (first === undefined) {
      keys.seen.set(k, row);
      return;
    }
    report.rowsDuplicate++;
    bump('duplicate_key');
    if (keys.duplicates.length < MAX_PROBLEMS)
      keys.duplicates.push({ row, key: keyIsPii ? maskPii(key, ctx.piiKey) : key, firstRow: first });
  };
  let batches = 0;
  const flush = async (): Promise<void> => {
    if (sink.size === 0) return;
    await sink.flush().catch((err) => {
      throw refused(err);
    });
    if (++batches === 2) ctx.checkpoint?.('mid_rows', obj.key);
  };
  const malformed = (row: number, detail: string | undefined, fields?: readonly string[]): void => {
    report.rowsQuarantined++;
    bump('malformed_row');
    if (problems.length < MAX_PROBLEMS)
      problems.push({ row, column: null, value: null, rule: 'malformed_row', action: 'dropped_row', detail });
    rejected.addMalformed(row, detail, source.columns, fields);
  };
  const take = (values: Record<string, unknown>, row: number): void => {
    const verdict = validateRow(values, row, table, source.textual);
    for (const p of verdict.problems) {
      bump(p.rule);
      if (p.rule === 'type' && p.column) typeErrors.set(p.column, (typeErrors.get(p.column) ?? 0) + 1);
      if (problems.length < MAX_PROBLEMS) problems.push(maskProblem(p, pii, ctx.piiKey));
    }
    if (verdict.status === 'dropped') {
      report.rowsQuarantined++;
      rejected.add(row, values, verdict.problems);
      return;
    }
    if (verdict.status === 'quarantine_file') {
      const p = maskProblem(verdict.problems[verdict.problems.length - 1] as Problem, pii, ctx.piiKey);
      throw new FileRejected(
        p.rule,
        `row ${p.row}: column ${p.column}: ${p.detail ?? p.rule} (got ${JSON.stringify(p.value)}); policy quarantine_file`,
        problems,
      );
    }
    if (verdict.status === 'corrected') report.rowsCorrected++;
    else report.rowsGood++;
    noteKey(verdict.values[table.key], row);
    const out: Record<string, unknown> = { source_key: obj.key };
    for (const c of table.columns) {
      const v = verdict.values[c.name];
      // PII is tokenised before it is stored; the raw value never reaches the warehouse.
      out[storedName(c)] =
        c.role === 'pii' && v !== null && v !== undefined ? tokenise(String(v), ctx.piiKey) : v;
    }
    sink.add(verdict.values[table.key], out);
  };

  try {
    if (source.textBatches) {
      const header = source.columns;
      const fast = sink.fastRecords?.(table, header, obj.key, ctx.piiKey);
      const keyAt = header.indexOf(table.key);
      for await (const b of source.textBatches) {
        for (let k = 0; k < b.records.length; k++) {
          const fields = b.records[k] as string[];
          const row = b.lines[k] as number;
          report.rowsRead++;
          if (fields.length === header.length && fast?.(fields)) {
            report.rowsGood++;
            noteKey(fields[keyAt], row);
          } else {
            const raw = csvRow(header, row, fields);
            if (raw.values) take(raw.values, row);
            else malformed(row, raw.error, fields);
          }
          if (sink.size >= ctx.batchRows) await flush();
        }
      }
    } else {
      for await (const raw of source.rows) {
        report.rowsRead++;
        if (raw.values) take(raw.values, raw.row);
        else malformed(raw.row, raw.error);
        if (sink.size >= ctx.batchRows) await flush();
      }
    }
    await flush();
    await sink.finish().catch((err) => {
      throw refused(err);
    });
  } catch (err) {
    // An open COPY must end before the transaction can roll back.
    await sink.abort();
    throw err instanceof ReaderError
      ? new FileRejected('unreadable', `unreadable ${format}: ${err.message}`, problems)
      : err;
  }
  return hash;
}

function tableOf(contract: Contract, key: string): TableContract | undefined {
  const file = key.slice(key.lastIndexOf('/') + 1);
  return contract.tables.find((t) => t.files.includes(file));
}

async function pipelineCopy(lake: ObjectStore, from: string, to: string): Promise<void> {
  await lake.putStream(to, lake.stream(from) as Readable);
}

async function writeReason(lake: ObjectStore, key: string, body: Record<string, unknown>): Promise<void> {
  await lake.put(`${quarantineKey(key)}.reason.json`, `${JSON.stringify(body, null, 2)}\n`);
}
