import type { Warehouse } from '../warehouse/db.js';
import type { ScoreRow } from './files.js';
import { SCORES_TABLE } from './plan.js';

/** Made on first use: the scores of every dataset, one row per entity and as-of time. */
async function ensureScoresTable(db: Warehouse): Promise<void> {
  if (await db.schema.hasTable(SCORES_TABLE)) return;
  await db.schema.createTable(SCORES_TABLE, (t) => {
    t.string('dataset').notNullable();
    t.bigInteger('as_of').notNullable();
    t.string('entity_token').notNullable();
    t.double('score').notNullable();
    t.integer('label').notNullable();
    t.string('model_name').notNullable();
    t.string('model_version').notNullable();
    t.primary(['dataset', 'as_of', 'entity_token']);
  });
}

/**
 * Replaces the dataset's scores of one as-of time by `rows` in one transaction: a rerun of the same
 * logical date leaves exactly its own rows, never two runs' worth, and a reader never sees half.
 */
export async function replaceScores(
  db: Warehouse,
  dataset: string,
  asOf: number,
  rows: readonly ScoreRow[],
): Promise<{ deleted: number; inserted: number }> {
  await ensureScoresTable(db);
  return db.transaction(async (trx) => {
    const deleted = await trx(SCORES_TABLE).where({ dataset, as_of: asOf }).delete();
    const records = rows.map((r) => ({
      dataset,
      as_of: asOf,
      entity_token: r.entityToken,
      score: r.score,
      label: r.label,
      model_name: r.modelName,
      model_version: r.modelVersion,
    }));
    // 7 values a row: 128 rows stay under SQLite's 999 bound variables on old builds.
    await trx.batchInsert(SCORES_TABLE, records, 128);
    return { deleted, inserted: records.length };
  });
}

/** The stored scores of one as-of time, by entity token (tests and the bench read them back). */
export async function readScores(db: Warehouse, dataset: string, asOf: number): Promise<ScoreRow[]> {
  if (!(await db.schema.hasTable(SCORES_TABLE))) return [];
  const rows = (await db(SCORES_TABLE).where({ dataset, as_of: asOf }).orderBy('entity_token')) as Record<
    string,
    unknown
  >[];
  return rows.map((r) => ({
    entityToken: String(r.entity_token),
    score: Number(r.score),
    label: Number(r.label) === 1 ? 1 : 0,
    modelName: String(r.model_name),
    modelVersion: String(r.model_version),
    asOf: Number(r.as_of),
  }));
}
