import { inputFields, type TransformState } from '@driftwood/tasks';
import { DEFAULT_ID_COLUMN } from './predictions/row-text.js';

/**
 * Checks a request row against the served model's fitted transform (its fields are the contract's
 * feature columns). Returns a message naming the first bad field, or undefined when the row is fine.
 * Numeric fields may be null or absent (they are imputed); categorical fields are required strings
 * (an unseen value goes to the unseen bucket, as in training).
 */
export function checkFeatureRow(
  state: TransformState,
  body: Record<string, unknown>,
  idColumn = DEFAULT_ID_COLUMN,
): string | undefined {
  // Fields the feature selection dropped are still accepted (and ignored), as the contract lists them.
  const fields = inputFields(state);
  const numeric = new Set(fields.numeric);
  const categorical = new Set(fields.categorical);
  for (const [key, value] of Object.entries(body)) {
    if (key === idColumn) {
      if (typeof value !== 'string' || value.length > 64)
        return `body.${idColumn} must be a string of at most 64 characters`;
    } else if (numeric.has(key)) {
      if (value !== null && (typeof value !== 'number' || !Number.isFinite(value)))
        return `body.${key} must be a number or null`;
    } else if (categorical.has(key)) {
      if (typeof value !== 'string' || value.length > 64)
        return `body.${key} must be a string of at most 64 characters`;
    } else {
      return `body.${key} is not a known field`;
    }
  }
  for (const c of categorical) if (!(c in body)) return `body.${c} is required`;
  return checkBounds(state, body);
}

/**
 * The first numeric field of the row whose value no feature can take (`outOfBounds`), named with
 * the reason; checked against the served model's fitted ranges, whether or not a schema ran first.
 */
export function checkBounds(state: TransformState, body: Record<string, unknown>): string | undefined {
  for (const n of state.numeric) {
    const value = body[n.name];
    if (typeof value !== 'number') continue;
    const bound = outOfBounds(n, value);
    if (bound) return `body.${n.name} ${bound}`;
  }
  return undefined;
}

/** How far past the training range a value may go (in training ranges) before it cannot be real. */
export const BOUND_RANGES = 100;

/**
 * Why a value is one no feature can take, or undefined: below 0 where training never saw a negative
 * value (counts, durations, amounts), or more than BOUND_RANGES training ranges past the training
 * values on either side (`sessions_30d: 1e9`). Inside that, drift is still let through: the drift
 * monitor is there to see it. States fitted before the range was kept are not checked.
 */
export function outOfBounds(
  fitted: { min?: number; max?: number } | undefined,
  value: number,
): string | undefined {
  if (fitted?.min === undefined || fitted.max === undefined) return undefined;
  const { min, max } = fitted;
  const short = (x: number) => Number(x.toPrecision(6));
  const seen = `training saw ${short(min)} to ${short(max)}`;
  if (min >= 0 && value < 0) return `must be at least 0 (${seen})`;
  const reach = BOUND_RANGES * Math.max(max - min, 1);
  if (value > max + reach) return `must be at most ${short(max + reach)} (${seen})`;
  if (value < min - reach) return `must be at least ${short(min - reach)} (${seen})`;
  return undefined;
}
