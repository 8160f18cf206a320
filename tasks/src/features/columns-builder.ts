import type { ColumnContract, Contract, TableContract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import { storedName } from '../ingest/schema.js';
import { HOUR_MS, hourOfKey, partitionOf } from '../time.js';
import type { Warehouse } from '../warehouse/db.js';
import type { LabelledRow, RawFeatures } from './rows.js';

/**
 * The `columns` builder: a flat table whose feature columns go to the model as they are. Its shape
 * comes from the contract alone — the id column names the rows, the target column gives the label,
 * numeric and boolean features are numeric inputs, strings are categorical; PII, ids and timestamps
 * never become features.
 */
export interface ColumnsLayout {
  table: TableContract;
  id: ColumnContract;
  target: ColumnContract;
  timestamp: ColumnContract | undefined;
  numeric: string[];
  categorical: string[];
  /** Categorical features with a closed list of values: where per-segment metrics make sense. */
  segments: string[];
}

export function columnsLayout(contract: Contract): ColumnsLayout {
  const bad = (msg: string): never => {
    throw new DriftwoodError('CONFIG_INVALID', `contract ${contract.dataset}: builder 'columns': ${msg}`);
  };
  const withTarget = contract.tables.filter((t) => t.columns.some((c) => c.role === 'target'));
  if (withTarget.length !== 1)
    bad(`expected exactly one table with a 'target' column, found ${withTarget.length}`);
  const table = withTarget[0] as TableContract;
  const targets = table.columns.filter((c) => c.role === 'target');
  if (targets.length !== 1) bad(`table '${table.name}' has ${targets.length} target columns, expected one`);
  const target = targets[0] as ColumnContract;
  if (contract.task === 'binary_classification' && target.type === 'string' && target.positive === undefined)
    bad(`target '${target.name}' is a string: name its positive class with 'positive'`);
  const id = table.columns.find((c) => c.name === table.key) as ColumnContract;
  const features = table.columns.filter((c) => c.role === 'feature');
  const numeric = features.filter((c) => c.type !== 'string').map((c) => c.name);
  const categorical = features.filter((c) => c.type === 'string').map((c) => c.name);
  if (numeric.length + categorical.length === 0) bad(`table '${table.name}' has no feature columns`);
  return {
    table,
    id,
    target,
    timestamp: table.columns.find((c) => c.role === 'timestamp'),
    numeric,
    categorical,
    segments: features.filter((c) => c.type === 'string' && c.allowed !== undefined).map((c) => c.name),
  };
}

/** 1 for the positive class, 0 for the other, undefined for a row without a label. */
export function labelOf(target: ColumnContract, value: unknown): 0 | 1 | undefined {
  if (value === null || value === undefined) return undefined;
  if (target.positive !== undefined) return String(value) === String(target.positive) ? 1 : 0;
  if (target.type === 'boolean') return value === true || value === 1 || value === '1' ? 1 : 0;
  const n = Number(value);
  if (n === 1) return 1;
  if (n === 0) return 0;
  return undefined;
}

/**
 * Rows as of `cutoff`: those from lake partitions before the cutoff's hour (what the warehouse knew
 * then) and, when the table has a timestamp column, stamped before the cutoff. Rows without a label
 * are left out. Ordered by id, so the same data gives the same rows on SQLite and PostgreSQL.
 * `id` builds that row alone, by the same statement filtered to it, and keeps it without a label
 * too (label 0): it is a row to score, whose outcome is not known yet. `keepUnlabelled` keeps every
 * such row the same way (`buildColumnScoringRows`).
 */
export async function buildColumnRows(
  db: Warehouse,
  contract: Contract,
  layout: ColumnsLayout,
  cutoff: number,
  id?: string,
  keepUnlabelled = id !== undefined,
): Promise<LabelledRow[]> {
  const partitionEnd = `raw/${contract.dataset}/${partitionOf(Math.floor(cutoff / HOUR_MS) * HOUR_MS)}/`;
  const q = db(layout.table.name)
    .select(
      `${storedName(layout.id)} as __id`,
      `${storedName(layout.target)} as __target`,
      ...layout.numeric,
      ...layout.categorical,
      ...(layout.timestamp ? [`${storedName(layout.timestamp)} as __time`] : []),
    )
    .where('source_key', '<', partitionEnd)
    .orderBy(storedName(layout.id));
  if (layout.timestamp) q.where(storedName(layout.timestamp), '<', cutoff);
  if (id !== undefined) q.where(storedName(layout.id), id);
  const records = (await q) as Record<string, unknown>[];
  const rows: LabelledRow[] = [];
  for (const r of records) {
    const label = labelOf(layout.target, r.__target) ?? (keepUnlabelled ? 0 : undefined);
    if (label === undefined) continue;
    const features: RawFeatures = {};
    for (const name of layout.numeric) {
      const v = r[name];
      features[name] = v === null || v === undefined ? null : Number(v);
    }
    for (const name of layout.categorical) {
      const v = r[name];
      features[name] = v === null || v === undefined ? null : String(v);
    }
    // The row's time is what a `time` split orders by; it never becomes a feature.
    const time = r.__time === null || r.__time === undefined ? undefined : Number(r.__time);
    rows.push({ customerId: String(r.__id), features, label, ...(time === undefined ? {} : { time }) });
  }
  return rows;
}

/**
 * Every row as of `cutoff`, labelled or not: what batch scoring scores. The rows whose outcome is not
 * in yet are the ones a list of risks is for; they carry label 0, which no scorer reads. Each row's
 * inputs are the ones `buildColumnRows` gives it for training, by the same statement.
 */
export function buildColumnScoringRows(
  db: Warehouse,
  contract: Contract,
  layout: ColumnsLayout,
  cutoff: number,
): Promise<LabelledRow[]> {
  return buildColumnRows(db, contract, layout, cutoff, undefined, true);
}

/**
 * The default cutoff of a `columns` dataset: the end of the newest hour loaded, so a run sees all the
 * data ingested so far and the same data always gives the same cutoff (never the wall clock).
 */
export async function latestPartitionEnd(db: Warehouse, layout: ColumnsLayout): Promise<number | undefined> {
  if (!(await db.schema.hasTable(layout.table.name))) return undefined;
  const row = await db(layout.table.name).max({ latest: 'source_key' }).first();
  const hour = row?.latest ? hourOfKey(String(row.latest)) : undefined;
  return hour === undefined ? undefined : hour + HOUR_MS;
}
