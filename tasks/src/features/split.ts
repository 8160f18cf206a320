import { createHash } from 'node:crypto';

/**
 * Assigns a row to a split by a hash of its id, so a customer stays in the same split across runs
 * and the holdout never leaks into training.
 */
export function splitOf(
  id: string,
  seed: number,
  fractions: { holdout: number; validation: number },
): 'train' | 'validation' | 'holdout' {
  const h = createHash('sha256').update(`${seed}:${id}`).digest().readUInt32BE(0) / 2 ** 32;
  if (h < fractions.holdout) return 'holdout';
  if (h < fractions.holdout + fractions.validation) return 'validation';
  return 'train';
}
