import path from 'node:path';
import { loadContract } from '../contracts/index.js';
import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import { buildColumnScoringRows, columnsLayout } from '../features/columns-builder.js';
import { type TabularProfile, tabularProfile } from '../features/profile.js';
import type { LabelledRow } from '../features/rows.js';
import { ensureContractTables } from '../ingest/schema.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { ModelVersion } from '../mlflow/types.js';
import { loadModelVersion } from '../models/serving-model.js';
import { tokenise } from '../pii.js';
import type { Warehouse } from '../warehouse/db.js';
import { type InputRow, inputParquet, readScoresParquet, type ScoreRow, scoresParquet } from './files.js';
import {
  INPUT_MANIFEST_FILE,
  INPUT_ROWS_FILE,
  labelAt,
  NODE_SCORES_FILE,
  type ScoringInputManifest,
  type ScoringPlan,
  scoringPlan,
  thresholdOf,
} from './plan.js';
import { replaceScores } from './table.js';

export { SCORES_TABLE, scoringPlan } from './plan.js';
export { readScores } from './table.js';

/**
 * `all`: the Node engine, everything in this process. The Spark engine splits the run around its job:
 * `inputs` writes the rows and the pinned version for Spark, `publish` loads what Spark wrote into the
 * warehouse.
 */
export const SCORE_STAGES = ['all', 'inputs', 'publish'] as const;
export type ScoreStage = (typeof SCORE_STAGES)[number];

export interface ScoreOptions {
  dataset: string;
  modelName: string;
  /** The registry alias whose version scores (`champion`). */
  alias: string;
  /** The run's logical time (epoch ms): whose entities, features and partition. */
  asOf: number;
  stage: ScoreStage;
  piiKey: string | undefined;
  contractsDir?: string;
}

export interface ScoreDeps {
  db: Warehouse;
  lake: ObjectStore;
  mlflow: MlflowClient;
  log: Logger;
}

export interface ScoreResult {
  dataset: string;
  stage: ScoreStage;
  asOf: string;
  model: { name: string; version: string; threshold: number };
  rows: number;
  positives: number;
  /** The lake objects the stage wrote. */
  written: string[];
  /** Warehouse rows of this as-of replaced (a rerun) and inserted; absent for `inputs`. */
  table?: { name: string; deleted: number; inserted: number };
}

/** Scores every active entity of the dataset as of the run's logical time with the alias's version. */
export async function runScore(options: ScoreOptions, deps: ScoreDeps): Promise<ScoreResult> {
  const plan = scoringPlan(options.dataset, options.asOf);
  if (options.stage === 'publish') return publishSparkScores(plan, deps);
  const mv = await aliasVersion(options, deps.mlflow);
  const threshold = thresholdOf(mv);
  const contract = await loadContract(options.dataset, options.contractsDir);
  const profile = tabularProfile(contract);
  const built = await activeRows(contract, profile, deps.db, options.asOf);
  const rows: InputRow[] = built.map((r) => ({
    entityToken: tokenise(r.customerId, options.piiKey),
    features: r.features,
  }));
  deps.log.info({ dataset: options.dataset, rows: rows.length, version: mv.version }, 'scoring rows built');
  const model = { name: mv.name, version: mv.version, threshold };

  if (options.stage === 'inputs') {
    const manifest: ScoringInputManifest = {
      format: 'driftwood.scoring-input/v1',
      dataset: options.dataset,
      asOf: options.asOf,
      modelName: mv.name,
      modelVersion: mv.version,
      modelUri: `models:/${mv.name}/${mv.version}`,
      threshold,
      rows: rows.length,
      numeric: [...profile.numeric],
      categorical: [...profile.categorical],
    };
    const written = [`${plan.inputPrefix}${INPUT_ROWS_FILE}`, `${plan.inputPrefix}${INPUT_MANIFEST_FILE}`];
    await deps.lake.put(written[0] as string, inputParquet(rows, profile.numeric, profile.categorical));
    await deps.lake.put(written[1] as string, `${JSON.stringify(manifest, null, 2)}\n`);
    return result(plan, 'inputs', model, rows.length, 0, written);
  }

  const serving = await loadModelVersion(deps.mlflow, mv, options.alias);
  let scores: ScoreRow[];
  try {
    scores = rows.map((r) => {
      const score = serving.score(r.features);
      return {
        entityToken: r.entityToken,
        score,
        label: labelAt(score, threshold),
        modelName: mv.name,
        modelVersion: mv.version,
        asOf: options.asOf,
      };
    });
  } finally {
    serving.dispose();
  }
  const key = `${plan.scoresPrefix}${NODE_SCORES_FILE}`;
  await replacePartition(deps.lake, plan.scoresPrefix, key, scoresParquet(scores));
  const table = await replaceScores(deps.db, options.dataset, options.asOf, scores);
  return result(plan, 'all', model, scores.length, positives(scores), [key], table);
}

/**
 * Every entity active at `asOf`, with its inputs as of then (point in time, as training builds them).
 * Horizon 0: the inputs as of the time, for every entity the builder counts as active then. A
 * `columns` builder keeps only labelled rows for training; scoring takes every row, above all those
 * whose outcome is not in yet.
 */
async function activeRows(
  contract: Contract,
  profile: TabularProfile,
  db: Warehouse,
  asOf: number,
): Promise<LabelledRow[]> {
  if (profile.builder !== 'columns') return profile.build(db, asOf, 0);
  await ensureContractTables(db, contract);
  return buildColumnScoringRows(db, contract, columnsLayout(contract), asOf);
}

async function aliasVersion(options: ScoreOptions, mlflow: MlflowClient): Promise<ModelVersion> {
  const mv = await mlflow.getVersionByAlias(options.modelName, options.alias);
  if (!mv)
    throw new DriftwoodError(
      'NOTHING_NEW',
      `model '${options.modelName}' has no '${options.alias}' version yet: nothing to score until one is promoted`,
    );
  return mv;
}

/**
 * The partition holds this run's file alone afterwards: another engine's part files of the same
 * as-of are removed, so a reader of the folder never counts two runs.
 */
async function replacePartition(lake: ObjectStore, prefix: string, key: string, body: Buffer): Promise<void> {
  await lake.put(key, body);
  for (const other of await lake.list(prefix)) {
    if (other.key === key) continue;
    if (!lake.delete)
      throw new DriftwoodError('CONFIG_INVALID', `the lake ${lake.uri} cannot delete ${other.key}`);
    await lake.delete(other.key);
  }
}

/** Parquet files of a Spark output folder: its part files, not `_SUCCESS` or checksums. */
const isDataFile = (key: string) => {
  const name = path.posix.basename(key);
  return name.endsWith('.parquet') && !name.startsWith('.') && !name.startsWith('_');
};

/**
 * Loads the scores Spark wrote into the warehouse, after checking they are the run's: one per input
 * row, no entity twice, the pinned version, the as-of time.
 */
async function publishSparkScores(plan: ScoringPlan, deps: ScoreDeps): Promise<ScoreResult> {
  const manifestKey = `${plan.inputPrefix}${INPUT_MANIFEST_FILE}`;
  if (!(await deps.lake.exists(manifestKey)))
    throw new DriftwoodError(
      'DATA_MISSING',
      `${manifestKey} is missing: run 'driftwood score --stage inputs' for this as-of time first`,
    );
  const manifest = JSON.parse((await deps.lake.get(manifestKey)).toString('utf8')) as ScoringInputManifest;
  const files = (await deps.lake.list(plan.scoresPrefix)).map((o) => o.key).filter(isDataFile);
  let scores: ScoreRow[] = [];
  // concat, not push(...part): a part file of a million rows would overflow the call's arguments.
  for (const key of files) scores = scores.concat(await readScoresParquet(key, await deps.lake.get(key)));
  const problem = checkSparkScores(scores, manifest, plan.asOf);
  if (problem)
    throw new DriftwoodError('SCHEMA_MISMATCH', `${plan.scoresPrefix}: ${problem}; run the Spark job again`);
  const table = await replaceScores(deps.db, plan.dataset, plan.asOf, scores);
  const model = { name: manifest.modelName, version: manifest.modelVersion, threshold: manifest.threshold };
  return result(plan, 'publish', model, scores.length, positives(scores), [], table);
}

/** Why Spark's output is not this run's scores, or undefined when it is. */
export function checkSparkScores(
  scores: readonly ScoreRow[],
  manifest: ScoringInputManifest,
  asOf: number,
): string | undefined {
  if (scores.length !== manifest.rows) return `holds ${scores.length} scores for ${manifest.rows} input rows`;
  if (new Set(scores.map((s) => s.entityToken)).size !== scores.length) return 'an entity is scored twice';
  const stray = scores.find(
    (s) => s.asOf !== asOf || s.modelName !== manifest.modelName || s.modelVersion !== manifest.modelVersion,
  );
  if (stray)
    return `a score of ${stray.modelName} version ${stray.modelVersion} as of ${stray.asOf} is not this run's (${manifest.modelName} version ${manifest.modelVersion} as of ${asOf})`;
  return undefined;
}

const positives = (scores: readonly ScoreRow[]) => scores.reduce((n, s) => n + s.label, 0);

function result(
  plan: ScoringPlan,
  stage: ScoreStage,
  model: ScoreResult['model'],
  rows: number,
  positiveCount: number,
  written: string[],
  table?: { deleted: number; inserted: number },
): ScoreResult {
  return {
    dataset: plan.dataset,
    stage,
    asOf: new Date(plan.asOf).toISOString(),
    model,
    rows,
    positives: positiveCount,
    written,
    ...(table ? { table: { name: plan.table, ...table } } : {}),
  };
}
