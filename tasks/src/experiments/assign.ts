import { createHash } from 'node:crypto';

/**
 * A customer's variant: the first 32 bits of SHA-256 of `<experiment>\n<customer id>` place the
 * customer in [0, 1), and the variants' allocations cut that interval in declaration order. The
 * experiment's name is in the hash so that two experiments split customers independently of each
 * other and of the canary bucket (routing/canary.ts hashes the id alone).
 */
export function experimentBucket(experiment: string, customerId: string): number {
  return createHash('sha256').update(`${experiment}\n${customerId}`).digest().readUInt32BE(0) / 2 ** 32;
}

export function assignVariant<V extends { name: string; allocation: number }>(
  experiment: string,
  customerId: string,
  variants: readonly V[],
): V {
  const u = experimentBucket(experiment, customerId);
  let edge = 0;
  for (const v of variants) {
    edge += v.allocation;
    if (u < edge) return v;
  }
  // Allocations add up to 1 within rounding: the last variant takes what rounding leaves.
  return variants[variants.length - 1] as V;
}
