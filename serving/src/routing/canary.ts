import { createHash } from 'node:crypto';

export type ChallengerMode = 'off' | 'canary' | 'shadow';

export interface RoutePlan {
  /** Which model answers the request. */
  serve: 'champion' | 'challenger';
  /** Whether the challenger also scores the request, unseen by the caller. */
  shadow: boolean;
}

/**
 * A customer's stable place in [0, 1): the first 32 bits of SHA-256 of the id. The same customer
 * always lands in the same place, so a canary is sticky per customer across requests and replicas.
 */
export function customerBucket(customerId: string): number {
  return createHash('sha256').update(customerId).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * Decides which model answers. Canary: customers whose bucket is below `percent`/100 get the
 * challenger; requests without a customer id go to the champion (they cannot be sticky). Shadow:
 * the champion answers and the challenger scores in the background. No challenger loaded: champion.
 */
export function planRoute(input: {
  mode: ChallengerMode;
  percent: number;
  customerId: string | undefined;
  hasChallenger: boolean;
}): RoutePlan {
  if (!input.hasChallenger || input.mode === 'off') return { serve: 'champion', shadow: false };
  if (input.mode === 'shadow') return { serve: 'champion', shadow: true };
  if (input.customerId === undefined || input.percent <= 0) return { serve: 'champion', shadow: false };
  const serve = customerBucket(input.customerId) < input.percent / 100 ? 'challenger' : 'champion';
  return { serve, shadow: false };
}
