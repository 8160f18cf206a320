import { loadContract } from '../contracts/index.js';
import type { Contract } from '../contracts/types.js';
import { registeredProfile } from '../datasets/index.js';
import { DriftwoodError } from '../errors.js';
import type { HttpOptions } from '../http.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import type { Warehouse } from '../warehouse/db.js';
import { engineOf } from '../warehouse/engine.js';
import { alertMessage, decideAlerts, postAlert } from './alert.js';
import type { BinaryType } from './copy-binary.js';
import { type FileReport, type KillPoint, loadObject } from './load.js';
import { type LedgerEntry, planIngest } from './plan.js';
import { sweepSpills } from './rejected.js';
import { ensureContractTables, migrateIngest } from './schema.js';

export type { FileReport, KillPoint } from './load.js';

export interface IngestOptions {
  dataset: string;
  interval?: { start: number; end: number };
  piiKey: string | undefined;
  now: () => number;
  /** The dataset's contract; read from contracts/<dataset>.yaml when not given. */
  contract?: Contract;
  contractsDir?: string;
  /** Slack incoming-webhook URL for anomaly alerts; no alert is sent without one. */
  alertWebhook?: string;
  /** Rows per insert batch (bounded by the database's bind-parameter limit per statement). */
  batchRows?: number;
  checkpoint?: (point: KillPoint, key: string) => void;
  /**
   * Folder for this run's temporary files (rejected rows past their memory bound), outside the lake:
   * the CLI passes `<DRIFTWOOD_HOME>/tmp/ingest`. Leftovers of killed runs are removed at start.
   */
  tmpDir?: string;
}

export interface IngestResult {
  dataset: string;
  contract: { version: number; digest: string };
  objectsSeen: number;
  loaded: number;
  skipped: number;
  duplicates: number;
  quarantined: number;
  rowsRead: number;
  rowsLoaded: number;
  rowsCorrected: number;
  /** Rows merged into a later row with the same key in the same file (not in rowsLoaded). */
  rowsDuplicate: number;
  /** Rows not loaded: dropped per policy, malformed, or in a quarantined file. */
  rowsRejected: number;
  /** Partial files of killed earlier runs, removed before this run started. */
  leftoversRemoved: { files: number; bytes: number };
  anomalies: Record<string, number>;
  alerts: { sent: boolean; files: string[] };
  files: FileReport[];
  reportKey: string;
  durationMs: number;
  rowsPerSecond: number;
}

/**
 * Loads new raw objects of a dataset into the warehouse exactly once, per its contract. Every object
 * is loaded in its own transaction together with its ledger entry (see loadObject), oldest hour
 * first, so a missed hour is caught up in order. The run's report goes to the lake under
 * `reports/ingest/<dataset>/` and an alert to the webhook when a file passes the anomaly threshold.
 */
export async function runIngest(
  options: IngestOptions,
  deps: { lake: ObjectStore; db: Warehouse; log: Logger; http?: HttpOptions },
): Promise<IngestResult> {
  const t0 = performance.now();
  const contract = options.contract ?? (await loadContract(options.dataset, options.contractsDir));
  // A killed run may have left partial copies of raw files (PII inside): remove them first.
  const leftovers = [
    ...((await deps.lake.sweepPartials?.()) ?? []),
    ...(options.tmpDir ? await sweepSpills(options.tmpDir) : []),
  ];
  if (leftovers.length > 0)
    deps.log.warn({ files: leftovers.length }, 'ingest: removed partial files left by a killed run');
  await migrateIngest(deps.db);
  await ensureContractTables(deps.db, contract);
  const objects = await deps.lake.list(`raw/${options.dataset}/`);
  if (objects.length === 0) {
    // An empty lake is almost always a wrong DRIFTWOOD_LAKE_URI or data not landed yet: say so, and
    // let the DAG skip the run's steps rather than build a snapshot of nothing.
    const message = `no objects under raw/${options.dataset}/ in the lake ${deps.lake.uri}: nothing to ingest (is DRIFTWOOD_LAKE_URI the lake the data lands in?)`;
    deps.log.warn({ dataset: options.dataset, lake: deps.lake.uri }, `ingest: ${message}`);
    throw new DriftwoodError('NOTHING_NEW', message, {
      result: { dataset: options.dataset, objectsSeen: 0 },
    });
  }
  const ledgerRows: LedgerEntry[] = await deps
    .db('ingest_ledger')
    .where({ dataset: options.dataset })
    .select('object_key', 'etag', 'sha256', 'status');
  const ledger = new Map(ledgerRows.map((r) => [r.object_key, r]));
  const order = (file: string): number => {
    const i = contract.tables.findIndex((t) => t.files.includes(file));
    return i < 0 ? contract.tables.length : i;
  };
  const plan = planIngest(objects, ledger, options.interval, order);
  deps.log.info(
    { dataset: options.dataset, toLoad: plan.load.length, alreadyLoaded: plan.skip.length },
    'ingest: plan ready',
  );

  const batchRows = options.batchRows ?? 1000;
  const files: FileReport[] = [];
  const result: IngestResult = {
    dataset: options.dataset,
    contract: { version: contract.version, digest: contract.digest },
    objectsSeen: objects.length,
    loaded: 0,
    skipped: plan.skip.length,
    duplicates: 0,
    quarantined: 0,
    rowsRead: 0,
    rowsLoaded: 0,
    rowsCorrected: 0,
    rowsDuplicate: 0,
    rowsRejected: 0,
    leftoversRemoved: { files: leftovers.length, bytes: leftovers.reduce((a, f) => a + f.bytes, 0) },
    anomalies: {},
    alerts: { sent: false, files: [] },
    files,
    reportKey: '',
    durationMs: 0,
    rowsPerSecond: 0,
  };
  const binaryTypes = new Map<string, BinaryType[] | null>();
  for (const obj of plan.load) {
    const f = await loadObject(
      obj,
      {
        contract,
        dataset: options.dataset,
        piiKey: options.piiKey,
        now: options.now,
        batchRows,
        binaryTypes,
        ...(options.tmpDir ? { tmpDir: options.tmpDir } : {}),
        ...(options.checkpoint ? { checkpoint: options.checkpoint } : {}),
      },
      deps,
    );
    if (f.status === 'unchanged') {
      result.skipped++;
      continue;
    }
    files.push(f);
    result.rowsRead += f.rowsRead;
    result.rowsLoaded += f.rowsGood + f.rowsCorrected - f.rowsDuplicate;
    result.rowsCorrected += f.rowsCorrected;
    result.rowsDuplicate += f.rowsDuplicate;
    result.rowsRejected += f.rowsQuarantined;
    for (const [rule, n] of Object.entries(f.anomalies))
      result.anomalies[rule] = (result.anomalies[rule] ?? 0) + n;
    if (f.status === 'loaded') result.loaded++;
    else if (f.status === 'duplicate') result.duplicates++;
    else result.quarantined++;
    if (files.length % 24 === 0)
      deps.log.info(
        { done: files.length, total: plan.load.length, rows: result.rowsLoaded },
        'ingest: progress',
      );
  }

  // With the DuckDB feature engine, the tables it reads are kept in the lake as Parquet too, written
  // here from what the warehouse now holds (tokenised as stored); the loaded objects go first.
  if (engineOf(deps.db) === 'duckdb') {
    const { syncColumnar } = await import('../warehouse/columnar.js');
    for (const table of registeredProfile(contract)?.parquetTables ?? []) {
      const changed = files.filter((f) => f.table === table && f.status === 'loaded').map((f) => f.key);
      const sync = await syncColumnar(deps.db, deps.lake, contract, table, changed);
      deps.log.info({ table, ...sync }, 'ingest: Parquet files of the table in step with the warehouse');
    }
  }

  const over = decideAlerts(files, contract.alert_threshold);
  result.alerts.files = over.map((f) => f.key);
  if (over.length > 0) {
    deps.log.warn(
      { files: result.alerts.files, threshold: contract.alert_threshold },
      'ingest: anomaly threshold passed',
    );
    if (options.alertWebhook) {
      await postAlert(
        options.alertWebhook,
        alertMessage(options.dataset, contract.alert_threshold, over),
        deps.http ?? { timeoutMs: 10_000, retries: 2, backoffMs: 250 },
      );
      result.alerts.sent = true;
    }
  }
  result.durationMs = Math.round(performance.now() - t0);
  result.rowsPerSecond =
    result.durationMs > 0 ? Math.round((result.rowsLoaded / result.durationMs) * 1000) : 0;
  if (files.length > 0) {
    result.reportKey = `reports/ingest/${options.dataset}/${new Date(options.now()).toISOString().replace(/[:.]/g, '-')}.json`;
    await deps.lake.put(result.reportKey, `${JSON.stringify(result, null, 2)}\n`);
  }
  return result;
}

const KILL_POINTS: readonly KillPoint[] = [
  'file_start',
  'mid_rows',
  'after_rows',
  'after_quarantine',
  'after_commit',
];

/**
 * Reads a fault-injection setting `<point>[:<nth>]`: the process kills itself (SIGKILL, no cleanup)
 * the nth time it reaches the point. Used by the crash tests to prove a killed run loads nothing twice.
 */
export function killAt(setting: string | undefined): { checkpoint?: (point: KillPoint) => void } {
  if (!setting) return {};
  const [point, nth = '1'] = setting.split(':');
  if (!KILL_POINTS.includes(point as KillPoint) || !/^\d+$/.test(nth))
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `setting DRIFTWOOD_INGEST_KILL_AT: expected <${KILL_POINTS.join('|')}>[:<n>], got '${setting}'`,
    );
  let seen = 0;
  return {
    checkpoint: (p) => {
      if (p === point && ++seen === Number(nth)) process.kill(process.pid, 'SIGKILL');
    },
  };
}
