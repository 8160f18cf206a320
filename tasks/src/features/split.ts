import { createHash } from 'node:crypto';
import { DriftwoodError } from '../errors.js';

export type Split = 'train' | 'validation' | 'holdout';

/**
 * How rows are shared out (the contract's `training.split.strategy`): `hash` by a hash of the row id,
 * so an entity stays in the same part across runs; `time` by the row's time, the newest rows being
 * the holdout and the ones just before them the validation part (a test of the future, not of a
 * random sample of the past).
 */
export type SplitStrategy = 'hash' | 'time';

export interface SplitPolicy {
  strategy: SplitStrategy;
  holdout: number;
  validation: number;
}

const unitHash = (id: string, seed: number): number =>
  createHash('sha256').update(`${seed}:${id}`).digest().readUInt32BE(0) / 2 ** 32;

/**
 * Assigns a row to a split by a hash of its id, so a customer stays in the same split across runs
 * and the holdout never leaks into training.
 */
export function splitOf(id: string, seed: number, fractions: { holdout: number; validation: number }): Split {
  const h = unitHash(id, seed);
  if (h < fractions.holdout) return 'holdout';
  if (h < fractions.holdout + fractions.validation) return 'validation';
  return 'train';
}

/**
 * The split of every row, in the rows' order. `hash`: each row by its id alone (splitOf). `time`: the
 * newest round(n × holdout) rows are the holdout, the round(n × validation) before them validation,
 * the rest train; rows of the same time are ordered by the hash of their id, so a tie at a boundary
 * is broken the same way on every run. The input order never matters.
 */
export function assignSplits(
  rows: readonly { id: string; time?: number | undefined }[],
  seed: number,
  policy: SplitPolicy,
): Split[] {
  if (policy.strategy === 'hash') return rows.map((r) => splitOf(r.id, seed, policy));
  const missing = rows.findIndex((r) => r.time === undefined || !Number.isFinite(r.time));
  if (missing >= 0)
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `split strategy 'time': row '${rows[missing]?.id}' has no time; every row needs one (the table's timestamp column), or use strategy 'hash'`,
    );
  const keys = rows.map((r) => ({ time: r.time as number, h: unitHash(r.id, seed), id: r.id }));
  const order = keys
    .map((_, i) => i)
    .sort((a, b) => {
      const x = keys[a] as (typeof keys)[number];
      const y = keys[b] as (typeof keys)[number];
      return x.time - y.time || x.h - y.h || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0);
    });
  const n = rows.length;
  const holdout = Math.round(n * policy.holdout);
  const validation = Math.round(n * policy.validation);
  const split = new Array<Split>(n);
  order.forEach((row, rank) => {
    split[row] = rank >= n - holdout ? 'holdout' : rank >= n - holdout - validation ? 'validation' : 'train';
  });
  return split;
}
