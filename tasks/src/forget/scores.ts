import type { Knex } from 'knex';
import type { RawFeatures } from '../features/rows.js';
import type { ObjectStore } from '../lake/object-store.js';
import { parquetReadObjects } from '../parquet.js';
import { inputParquet, readScoresParquet, scoresParquet } from '../score/files.js';
import {
  INPUT_MANIFEST_FILE,
  INPUT_ROWS_FILE,
  SCORES_TABLE,
  type ScoringInputManifest,
} from '../score/plan.js';
import { emptyPlace, type PlaceReport } from './report.js';

/** Lake prefixes batch scoring writes (score/plan.ts): its scores, and the Spark engine's inputs. */
export const SCORING_PREFIXES = ['scores/', 'scoring/'];

const toArrayBuffer = (b: Buffer): ArrayBuffer =>
  b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/**
 * Removes the customer's batch scores from the lake: the dataset's score and scoring-input Parquet
 * files, which name entities by token only (the warehouse's `batch_scores` rows go with the other
 * tables, in forgetScoresTable). A file rewritten keeps every other entity's row as it was; a file
 * that cannot be read is reported and the rest go on.
 */
export async function forgetBatchScores(
  lake: ObjectStore,
  dataset: string,
  entityToken: string,
): Promise<PlaceReport> {
  const out = emptyPlace();
  const prefixes = SCORING_PREFIXES.map((p) => `${p}${dataset}/`);
  for (const prefix of prefixes) {
    for (const obj of await lake.list(prefix)) {
      const name = obj.key.slice(obj.key.lastIndexOf('/') + 1);
      if (!name.endsWith('.parquet') || name.startsWith('.') || name.startsWith('_')) continue;
      out.filesScanned++;
      try {
        const removed = prefix.startsWith('scores/')
          ? await rewriteScores(lake, obj.key, entityToken)
          : await rewriteInputs(lake, obj.key, entityToken);
        if (removed === 0) continue;
        out.filesRewritten++;
        out.rowsRemoved += removed;
        out.files.push(obj.key);
      } catch (err) {
        out.problems.push({
          file: obj.key,
          problem: `not rewritten: ${(err as Error).message}`,
          failed: true,
        });
      }
    }
  }
  return out;
}

/** The customer's rows of the warehouse's `batch_scores`, inside the caller's transaction (undefined: no table). */
export async function forgetScoresTable(
  trx: Knex.Transaction,
  dataset: string,
  entityToken: string,
): Promise<number | undefined> {
  if (!(await trx.schema.hasTable(SCORES_TABLE))) return undefined;
  return trx(SCORES_TABLE).where({ dataset, entity_token: entityToken }).delete();
}

async function rewriteScores(lake: ObjectStore, key: string, token: string): Promise<number> {
  const rows = await readScoresParquet(key, await lake.get(key));
  const kept = rows.filter((r) => r.entityToken !== token);
  if (kept.length < rows.length) await lake.put(key, scoresParquet(kept));
  return rows.length - kept.length;
}

/** The Spark engine's input rows: rewritten with the columns and count its manifest names. */
async function rewriteInputs(lake: ObjectStore, key: string, token: string): Promise<number> {
  if (!key.endsWith(`/${INPUT_ROWS_FILE}`)) return 0;
  const objects = (await parquetReadObjects({ file: toArrayBuffer(await lake.get(key)) })) as Record<
    string,
    unknown
  >[];
  const kept = objects.filter((o) => o.entity_token !== token);
  if (kept.length === objects.length) return 0;
  const manifestKey = `${key.slice(0, key.lastIndexOf('/') + 1)}${INPUT_MANIFEST_FILE}`;
  const manifest = JSON.parse((await lake.get(manifestKey)).toString('utf8')) as ScoringInputManifest;
  const rows = kept.map((o) => {
    const { entity_token, ...features } = o;
    return { entityToken: String(entity_token), features: features as RawFeatures };
  });
  await lake.put(key, inputParquet(rows, manifest.numeric, manifest.categorical));
  await lake.put(manifestKey, `${JSON.stringify({ ...manifest, rows: rows.length }, null, 2)}\n`);
  return objects.length - kept.length;
}
