import { DriftwoodError } from '../errors.js';
import { inputFields, type Row, type TransformState } from '../features/transform.js';

/**
 * A few holdout rows and the probabilities the freshly trained model gave them, saved next to the
 * model files. Whoever loads the version later (the API, on every alias move) scores the rows again
 * and refuses the version unless every answer is a probability equal to the recorded one: a model
 * whose weights were damaged after training, or files swapped under the alias, cannot pass.
 * The rows hold the model's input fields only (no id column, no label).
 */
export const SERVING_SAMPLE_FILE = 'serving-sample.json';
export const SERVING_SAMPLE_FORMAT = 'driftwood.serving-sample/v1';
/** How far a re-scored row may drift from the recorded probability (float32 round-off is ~1e-7). */
export const SAMPLE_TOLERANCE = 1e-6;

export interface ServingSample {
  format: typeof SERVING_SAMPLE_FORMAT;
  rows: Row[];
  predictions: number[];
}

/**
 * Up to `size` rows, chosen so that every category of every categorical input appears when the rows
 * hold it (a damaged one-hot weight shows only on rows of its category), then filled in order.
 * Only the transform's input fields are kept. Pure.
 */
export function pickSampleRows(rows: readonly Row[], state: TransformState, size = 32): Row[] {
  const fields = inputFields(state);
  const keep = [...fields.numeric, ...fields.categorical];
  const chosen = new Set<number>();
  for (const c of state.categorical)
    for (const category of c.categories) {
      if (chosen.size >= size) break;
      const i = rows.findIndex((r) => String(r[c.name]) === category);
      if (i !== -1) chosen.add(i);
    }
  for (let i = 0; i < rows.length && chosen.size < size; i++) chosen.add(i);
  return [...chosen]
    .sort((a, b) => a - b)
    .map((i) =>
      Object.fromEntries(keep.filter((k) => k in (rows[i] as Row)).map((k) => [k, (rows[i] as Row)[k]])),
    );
}

export function parseServingSample(json: unknown, where: string): ServingSample {
  const s = json as Partial<ServingSample> | null;
  if (
    !s ||
    s.format !== SERVING_SAMPLE_FORMAT ||
    !Array.isArray(s.rows) ||
    !Array.isArray(s.predictions) ||
    s.rows.length !== s.predictions.length ||
    s.rows.length === 0
  )
    throw new DriftwoodError(
      'MODEL_INVALID',
      `${where}: ${SERVING_SAMPLE_FILE} is not a ${SERVING_SAMPLE_FORMAT} document with as many predictions as rows`,
    );
  return s as ServingSample;
}

const isProbability = (p: number) => Number.isFinite(p) && p >= 0 && p <= 1;

/** Why the scorer fails the sample (the first bad row and how many are bad), or undefined. Pure. */
export function sampleProblem(
  sample: ServingSample,
  score: (row: Row) => number,
  tolerance = SAMPLE_TOLERANCE,
): string | undefined {
  let bad = 0;
  let first: string | undefined;
  sample.rows.forEach((row, i) => {
    const got = score(row);
    const want = sample.predictions[i] as number;
    const why = !isProbability(got)
      ? `answers ${got}, not a probability`
      : Math.abs(got - want) > tolerance
        ? `answers ${got}, training recorded ${want}`
        : undefined;
    if (why === undefined) return;
    bad++;
    first ??= `sample row ${i} ${why}`;
  });
  return first && `${bad} of ${sample.rows.length} holdout sample rows fail: ${first}`;
}

/**
 * Rows for a version without a sample (trained before samples were recorded): the empty row (every
 * field imputed), then one row per category of every categorical input, and an unseen category.
 * They prove only that every one-hot column yields a probability, not that the answers are right.
 */
export function probeRows(state: TransformState): Row[] {
  const rows: Row[] = [{}];
  for (const c of state.categorical) {
    for (const category of c.categories) rows.push({ [c.name]: category });
    rows.push({ [c.name]: '\u0000unseen' });
  }
  return rows;
}

/** Why the scorer fails the probe rows, or undefined. Pure. */
export function probeProblem(rows: readonly Row[], score: (row: Row) => number): string | undefined {
  for (const row of rows) {
    const p = score(row);
    if (!isProbability(p)) return `probe ${JSON.stringify(row)} answers ${p}, not a probability`;
  }
  return undefined;
}
