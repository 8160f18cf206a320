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
  return undefined;
}
