import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadContract } from '../contracts/index.js';
import type { Contract } from '../contracts/types.js';
import { sweepSpills } from '../ingest/rejected.js';
import { storedName } from '../ingest/schema.js';
import { type ObjectStore, processAlive } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import { tokenise } from '../pii.js';
import type { Warehouse } from '../warehouse/db.js';
import { forgetFeatures, forgetSnapshots } from './immutable.js';
import { forgetLakeFiles } from './lake-files.js';
import { forgetMlflowArtifacts } from './mlflow.js';
import { checkCustomerId, planJsonlRewrite, planTextRewrite, Subject, splitCsvRecords } from './plan.js';
import { emptyPlace, type PlaceReport } from './report.js';
import { forgetBatchScores, forgetScoresTable } from './scores.js';

export type { PlaceReport } from './report.js';

export interface ForgetOptions {
  customerId: string;
  dataset: string;
  /** Key of the PII tokeniser: the audit record names the customer by token, never by id. */
  piiKey: string | undefined;
  now: () => number;
  contract?: Contract;
  contractsDir?: string;
  /** The API's prediction log folder (`<DRIFTWOOD_HOME>/predictions`), if this host keeps one. */
  predictionsDir?: string;
  /** Step results (`<DRIFTWOOD_HOME>/results`), checked like any JSON file. */
  resultsDir?: string;
  /** Temporary folders of the steps (`<DRIFTWOOD_HOME>/tmp/ingest`): killed runs' partial files go. */
  tmpDirs?: string[];
  /** MLflow experiments whose run and model artifacts are checked (needs deps.mlflow). */
  experiments?: string[];
}

export interface ForgetResult {
  dataset: string;
  /** HMAC token of the customer id: lets an auditor confirm a request was served without storing the id. */
  subjectToken: string;
  /** Whether anything of the customer was found (and removed) by this run. */
  found: boolean;
  /** Whether every place was reached; when not, `unreached` says which, and a re-run is safe. */
  complete: boolean;
  unreached: string[];
  /** Whether every unreached place can be reached by running again later (MLflow down, a live spill). */
  retryable: boolean;
  summary: string;
  warehouse: { customers: number; events: number; labels: number } & Record<string, number>;
  /** Per place: files scanned and rewritten (or replaced), rows or lines removed, problems met. */
  places: {
    lakeRaw: PlaceReport;
    quarantine: PlaceReport;
    lakeOther: PlaceReport;
    snapshots: PlaceReport;
    features: PlaceReport;
    mlflowArtifacts: PlaceReport & { reachable: boolean; checked: boolean };
    predictionLogs: PlaceReport;
    stepResults: PlaceReport;
    /** Batch scores (`driftwood score`): the warehouse's rows and the lake's Parquet files, by token. */
    batchScores: PlaceReport;
    partialFiles: { filesRemoved: number; bytes: number; files: string[] };
  };
  /** Totals over the lake's raw and quarantined files (kept for readers of the earlier result). */
  lake: { filesScanned: number; filesRewritten: number; rowsRemoved: number; parquetNotRewritten: string[] };
  predictions: { filesRewritten: number; linesRemoved: number };
  auditKey: string;
}

const CORE_TABLES = ['customers', 'events', 'labels'];

/**
 * Erases one customer (GDPR art. 17) from every place Driftwood writes personal data
 * (docs/security.md lists them): raw and quarantined lake files (rows, rejected rows, reasons),
 * snapshots and feature sets (replaced under a new id, with a tombstone), MLflow run artifacts,
 * the warehouse, the API's prediction log, step results, and partial files of killed runs. A file
 * it cannot read is reported and the rest go on; the result says per place what changed.
 * Idempotent: a second request changes nothing and says so.
 */
export async function runForget(
  options: ForgetOptions,
  deps: { lake: ObjectStore; db: Warehouse; log: Logger; mlflow?: MlflowClient },
): Promise<ForgetResult> {
  const customerId = checkCustomerId(options.customerId);
  const subjectToken = tokenise(`customer:${customerId}`, options.piiKey);
  const startedAt = options.now();
  const at = new Date(startedAt).toISOString();
  const subject = new Subject(customerId);
  // The API logs predictions under this token; quarantined rows hold PII columns as tokens.
  subject.add(tokenise(customerId, options.piiKey));
  const contract = options.contract ?? (await loadContract(options.dataset, options.contractsDir));
  for (const token of await storedPii(deps.db, contract, customerId)) subject.add(token);
  const learn = learnPii(contract, subject, options.piiKey);

  // Partial files first: a killed ingest's copy of a raw file cannot be rewritten, only removed.
  const partials = [
    ...((await deps.lake.sweepPartials?.()) ?? []),
    ...(await Promise.all((options.tmpDirs ?? []).map((d) => sweepSpills(d)))).flat(),
  ];

  // The lake before the warehouse: if the process dies half-way, the warehouse rows are still there
  // and a re-run finishes the job; the other order would leave raw rows a later ingest could load.
  const files = await forgetLakeFiles(deps.lake, options.dataset, subject, { log: deps.log, learn });
  const rewrittenRaw = new Map(files.rewrittenRaw.map((f) => [f.key, f]));
  const snapshots = await forgetSnapshots(deps.lake, options.dataset, subject, at, rewrittenRaw);
  const features = await forgetFeatures(deps.lake, options.dataset, subject, at, snapshots.replaced);

  // Batch scores name the customer by the token the API logs under: files here, rows with the tables.
  const entityToken = tokenise(customerId, options.piiKey);
  const batchScores = await forgetBatchScores(deps.lake, options.dataset, entityToken);

  const warehouse = await forgetWarehouse(deps.db, contract, customerId, entityToken, files.rewrittenRaw);
  // The tables kept as Parquet for the DuckDB feature engine follow the warehouse they mirror.
  await forgetColumnar(
    deps,
    contract,
    files.rewrittenRaw.map((f) => f.key),
  );

  // The API's log files, and its spill files (`.spill/<pid>-….spill|claimed`): a dead process's
  // are rewritten (the next API start writes their lines to the log), a running one's are its own.
  const predictionLogs = options.predictionsDir
    ? await forgetLocalFiles(options.predictionsDir, subject, (f) => /\.(jsonl|spill|claimed)$/.test(f))
    : emptyPlace();
  const stepResults = options.resultsDir
    ? await forgetLocalFiles(options.resultsDir, subject, (f) => f.endsWith('.json'))
    : emptyPlace();
  const mlflowArtifacts =
    deps.mlflow && (options.experiments ?? []).length > 0
      ? { ...(await forgetMlflowArtifacts(deps.mlflow, options.experiments ?? [], subject)), checked: true }
      : { ...emptyPlace(), reachable: false, checked: false };

  const places: ForgetResult['places'] = {
    lakeRaw: files.raw,
    quarantine: files.quarantine,
    lakeOther: files.other,
    snapshots: snapshots.report,
    features,
    mlflowArtifacts,
    predictionLogs,
    stepResults,
    batchScores,
    partialFiles: {
      filesRemoved: partials.length,
      bytes: partials.reduce((a, p) => a + p.bytes, 0),
      files: partials.map((p) => p.path),
    },
  };
  const reports: [string, PlaceReport][] = [
    ['lakeRaw', files.raw],
    ['quarantine', files.quarantine],
    ['lakeOther', files.other],
    ['snapshots', snapshots.report],
    ['features', features],
    ['mlflowArtifacts', mlflowArtifacts],
    ['predictionLogs', predictionLogs],
    ['stepResults', stepResults],
    ['batchScores', batchScores],
  ];
  const failed = reports.flatMap(([name, r]) => r.problems.filter((p) => p.failed).map((p) => ({ name, p })));
  const unreached = failed.map(({ name, p }) => `${name}: ${p.file}: ${p.problem}`);
  const rowsRemoved =
    reports.reduce((a, [, r]) => a + r.rowsRemoved, 0) + Object.values(warehouse).reduce((a, n) => a + n, 0);
  const filesChanged = reports.reduce((a, [, r]) => a + r.filesRewritten, 0) + partials.length;
  const found = rowsRemoved > 0;
  const summary =
    rowsRemoved === 0 && filesChanged === 0
      ? 'nothing to erase: no place holds the customer; nothing was changed'
      : `${rowsRemoved} row(s) or line(s) removed, ${filesChanged} file(s) rewritten, replaced or removed`;
  const lake = {
    filesScanned: files.raw.filesScanned + files.quarantine.filesScanned,
    filesRewritten: files.raw.filesRewritten + files.quarantine.filesRewritten,
    rowsRemoved: files.raw.rowsRemoved + files.quarantine.rowsRemoved,
    parquetNotRewritten: [...files.raw.problems, ...files.quarantine.problems]
      .filter((p) => p.problem.startsWith('Parquet'))
      .map((p) => p.file),
  };
  const auditKey = `audit/forget/${at.replace(/[:.]/g, '-')}-${subjectToken.slice(0, 12)}.json`;
  const result: ForgetResult = {
    dataset: options.dataset,
    subjectToken,
    found,
    complete: unreached.length === 0,
    unreached,
    retryable: failed.every(({ p }) => p.retry === true),
    summary,
    warehouse,
    places,
    lake,
    predictions: { filesRewritten: predictionLogs.filesRewritten, linesRemoved: predictionLogs.rowsRemoved },
    auditKey,
  };
  await deps.lake.put(
    auditKey,
    `${JSON.stringify({ action: 'forget', at, completedAt: new Date(options.now()).toISOString(), ...result }, null, 2)}\n`,
  );
  if (unreached.length > 0)
    deps.log.warn({ unreached: unreached.length }, 'forget: some places were not reached; re-run when fixed');
  deps.log.info({ subjectToken, found, summary }, 'forget: done');
  return result;
}

/** The customer's PII as the warehouse stores it (the email's token), before the rows go. */
async function storedPii(db: Warehouse, contract: Contract, customerId: string): Promise<string[]> {
  const out: string[] = [];
  for (const table of contract.tables) {
    const pii = table.columns.filter((c) => c.role === 'pii').map(storedName);
    if (pii.length === 0 || !table.columns.some((c) => c.name === 'customer_id')) continue;
    if (!(await db.schema.hasTable(table.name))) continue;
    for (const row of await db(table.name).where({ customer_id: customerId }).select(pii))
      for (const v of Object.values(row as Record<string, unknown>)) if (typeof v === 'string') out.push(v);
  }
  return out;
}

/**
 * Reads the customer's PII values (the raw email) from a raw file before it is rewritten: the
 * quarantine holds them only as tokens, in rows that may not carry the customer id.
 */
function learnPii(contract: Contract, subject: Subject, piiKey: string | undefined) {
  return (key: string, text: string): void => {
    if (!subject.mayBeIn(text) || !key.endsWith('.csv')) return;
    const file = key.slice(key.lastIndexOf('/') + 1);
    const table = contract.tables.find((t) => t.files.includes(file));
    const pii = table?.columns.filter((c) => c.role === 'pii').map((c) => c.name) ?? [];
    if (pii.length === 0) return;
    const [header, ...body] = splitCsvRecords(text) ?? [];
    if (!header) return;
    const names = header.fields.map((h) => h.trim());
    const id = names.indexOf('customer_id');
    for (const r of body) {
      if (id < 0 || !subject.has(r.fields[id]) || r.fields.length !== names.length) continue;
      for (const name of pii) {
        const v = r.fields[names.indexOf(name)];
        if (v === undefined || v.trim() === '') continue;
        subject.add(v);
        subject.add(tokenise(v, piiKey));
      }
    }
  };
}

/** Rewrites the Parquet files (warehouse/columnar.ts) of every table that has some in the lake. */
async function forgetColumnar(
  deps: { lake: ObjectStore; db: Warehouse; log: Logger },
  contract: Contract,
  rewritten: string[],
): Promise<void> {
  const { columnarPrefix, syncColumnar } = await import('../warehouse/columnar.js');
  for (const table of contract.tables) {
    if ((await deps.lake.list(columnarPrefix(contract.dataset, table.name))).length === 0) continue;
    const sync = await syncColumnar(deps.db, deps.lake, contract, table.name, rewritten);
    deps.log.info(
      { table: table.name, ...sync },
      'forget: Parquet files of the table in step with the warehouse',
    );
  }
}

async function forgetWarehouse(
  db: Warehouse,
  contract: Contract,
  customerId: string,
  entityToken: string,
  rewritten: { key: string; sha256: string; etag: string; size: number; removed: number }[],
): Promise<ForgetResult['warehouse']> {
  const tables = [
    ...new Set([
      ...CORE_TABLES,
      ...contract.tables.filter((t) => t.columns.some((c) => c.name === 'customer_id')).map((t) => t.name),
    ]),
  ];
  const warehouse: Record<string, number> = { customers: 0, events: 0, labels: 0 };
  await db.transaction(async (trx) => {
    for (const table of tables) {
      if (!(await trx.schema.hasTable(table))) continue;
      warehouse[table] = await trx(table).where({ customer_id: customerId }).delete();
    }
    const scores = await forgetScoresTable(trx, contract.dataset, entityToken);
    if (scores !== undefined) warehouse.batch_scores = scores;
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
  // Only when something is left to clean, so a repeated request leaves the file as it was: rows
  // deleted now, free pages, or the id still in the file's bytes (a run killed before its VACUUM).
  if (db.client.config.client === 'better-sqlite3') {
    const deleted = Object.values(warehouse).some((n) => n > 0);
    const free = Number(
      ((await db.raw('PRAGMA freelist_count')) as { freelist_count: number }[])[0]?.freelist_count ?? 0,
    );
    const file = (db.client.config.connection as { filename?: string } | undefined)?.filename;
    const lingering = async () =>
      file !== undefined &&
      file !== ':memory:' &&
      [file, `${file}-wal`].some((f) => existsSync(f) && readFileSync(f).includes(customerId));
    if (deleted || free > 0 || (await lingering())) {
      await db.raw('VACUUM');
      await db.raw('PRAGMA wal_checkpoint(TRUNCATE)');
    }
  }
  return warehouse as ForgetResult['warehouse'];
}

/**
 * Local files under a folder that may name the customer: the API's prediction log (lines carry the
 * customer's token, never the id) and step results. A file that grows while it is rewritten (the
 * API appending) is read again; one that cannot be read is reported and the rest go on.
 */
async function forgetLocalFiles(
  dir: string,
  subject: Subject,
  wanted: (file: string) => boolean,
): Promise<PlaceReport> {
  const out = emptyPlace();
  let files: string[];
  try {
    files = (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
      .filter(wanted);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw err;
  }
  for (const rel of files.sort()) {
    const file = path.join(dir, rel);
    out.filesScanned++;
    const owner = /(?:^|\/)(\d+)-[^/]*\.(?:spill|claimed)$/.exec(rel)?.[1];
    if (owner !== undefined && processAlive(Number(owner))) {
      // A running API reads its spill file by offset: rewriting it would break that. Its lines go to
      // the log when drained, where a later run finds them.
      if (subject.mayBeIn(await readFile(file, 'utf8').catch(() => '')))
        out.problems.push({
          file,
          problem: `spill file of a running API process (${owner}): its lines reach the log when drained; run forget again`,
          failed: true,
          retry: true,
        });
      continue;
    }
    try {
      for (;;) {
        const text = await readFile(file, 'utf8');
        const plan = /\.(jsonl|spill|claimed)$/.test(file)
          ? planJsonlRewrite(text, subject)
          : planTextRewrite(file, text, subject);
        if (!plan?.changed) break;
        const tmp = `${file}.forget.${process.pid}.tmp`;
        await writeFile(tmp, plan.text);
        if ((await stat(file)).size !== Buffer.byteLength(text)) continue;
        await rename(tmp, file);
        out.filesRewritten++;
        out.rowsRemoved += plan.removed;
        out.files.push(file);
        break;
      }
    } catch (err) {
      out.problems.push({ file, problem: `not rewritten: ${(err as Error).message}`, failed: true });
    }
  }
  return out;
}
