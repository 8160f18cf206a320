import { DriftwoodError } from '../errors.js';
import type { ModelVersion } from '../mlflow/types.js';
import { partitionOf } from '../time.js';

/**
 * Where one batch scoring run reads and writes, named by the dataset and the hour of its as-of time
 * (the run's logical time): a rerun of the same logical date lands in the same places and replaces
 * what it finds there.
 */
export interface ScoringPlan {
  dataset: string;
  asOf: number;
  /** The lake folder of the scores: one or more Parquet files (one from Node, part files from Spark). */
  scoresPrefix: string;
  /** The lake folder of the Spark engine's inputs: `rows.parquet` and `manifest.json`. */
  inputPrefix: string;
  /** The warehouse table every dataset's scores go to, keyed by dataset, as-of and entity token. */
  table: typeof SCORES_TABLE;
}

export const SCORES_TABLE = 'batch_scores';
export const INPUT_ROWS_FILE = 'rows.parquet';
export const INPUT_MANIFEST_FILE = 'manifest.json';
/** The file the Node engine writes, named as Spark names its first part file. */
export const NODE_SCORES_FILE = 'part-00000-node.parquet';

export function scoringPlan(dataset: string, asOf: number): ScoringPlan {
  if (!/^[\w-]{1,80}$/.test(dataset))
    throw new DriftwoodError('USAGE', `--dataset: expected letters, digits, '_' or '-', got '${dataset}'`);
  if (!Number.isSafeInteger(asOf) || asOf < 0)
    throw new DriftwoodError('USAGE', `--as-of: expected a time after 1970, got ${asOf}`);
  const partition = partitionOf(asOf);
  return {
    dataset,
    asOf,
    scoresPrefix: `scores/${dataset}/${partition}/`,
    inputPrefix: `scoring/${dataset}/${partition}/input/`,
    table: SCORES_TABLE,
  };
}

/**
 * The version's decision threshold (the tag train sets): what the label is, as the API labels a
 * probability. A version without a usable tag is refused rather than labelled at a guess.
 */
export function thresholdOf(mv: ModelVersion): number {
  const raw = mv.tags?.find((t) => t.key === 'driftwood.threshold')?.value;
  const t = Number(raw);
  if (raw === undefined || !Number.isFinite(t) || t <= 0 || t >= 1)
    throw new DriftwoodError(
      'MODEL_INVALID',
      `model '${mv.name}' version ${mv.version}: tag driftwood.threshold is ${raw === undefined ? 'missing' : `'${raw}'`}, expected a number in (0, 1); train the version again`,
    );
  return t;
}

/** The API's label: the probability at the version's threshold. */
export const labelAt = (score: number, threshold: number): 0 | 1 => (score >= threshold ? 1 : 0);

/** What the Spark engine needs beside the rows: the very version the run resolved, and its threshold. */
export interface ScoringInputManifest {
  format: 'driftwood.scoring-input/v1';
  dataset: string;
  asOf: number;
  modelName: string;
  modelVersion: string;
  /** `models:/<name>/<version>`: pinned, so a moved alias cannot change the model mid-run. */
  modelUri: string;
  threshold: number;
  rows: number;
  numeric: string[];
  categorical: string[];
}
