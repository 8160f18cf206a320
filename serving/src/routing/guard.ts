/** What the canary guard has seen of one model since the challenger version was loaded. */
export interface SlotStats {
  requests: number;
  /** Scores that threw or were not a probability (the caller got the champion's answer instead). */
  failures: number;
  totalMs: number;
}

export interface RollbackPolicy {
  /** Requests the challenger must have answered before any verdict. */
  minRequests: number;
  /** Share of failed challenger scores above which the split is rolled back. */
  maxFailureRate: number;
  /** Challenger mean scoring time above this multiple of the champion's rolls the split back. */
  maxLatencyRatio: number;
  /** ...and above this many milliseconds: microsecond jitter (a GC pause) is not a slow model. */
  minLatencyMs: number;
}

export const DEFAULT_ROLLBACK: RollbackPolicy = {
  minRequests: 50,
  maxFailureRate: 0.02,
  maxLatencyRatio: 3,
  minLatencyMs: 1,
};

/** Why the canary split should be rolled back, or undefined while the challenger behaves. */
export function decideRollback(
  challenger: SlotStats,
  champion: SlotStats,
  policy: RollbackPolicy,
): string | undefined {
  if (challenger.requests < policy.minRequests) return undefined;
  const rate = challenger.failures / challenger.requests;
  if (rate > policy.maxFailureRate)
    return `challenger failure rate ${(rate * 100).toFixed(1)}% (${challenger.failures} of ${challenger.requests}) is over ${(policy.maxFailureRate * 100).toFixed(1)}%`;
  if (champion.requests >= policy.minRequests) {
    const mine = challenger.totalMs / challenger.requests;
    const theirs = champion.totalMs / champion.requests;
    if (mine > policy.minLatencyMs && mine > policy.maxLatencyRatio * theirs)
      return `challenger mean scoring time ${mine.toFixed(3)} ms is over ${policy.maxLatencyRatio}× the champion's ${theirs.toFixed(3)} ms`;
  }
  return undefined;
}

/**
 * Watches the canary's challenger version. Once `decideRollback` gives a reason, the split is off
 * for that version (all traffic to the champion) until the challenger alias moves to another one.
 */
export class CanaryGuard {
  private version: string | undefined;
  private stats = { champion: emptyStats(), challenger: emptyStats() };
  private reason: string | undefined;

  constructor(private readonly policy: RollbackPolicy = DEFAULT_ROLLBACK) {}

  /** Whether the challenger `version` may take canary traffic (a new version starts afresh). */
  allows(version: string): boolean {
    if (version !== this.version) {
      this.version = version;
      this.stats = { champion: emptyStats(), challenger: emptyStats() };
      this.reason = undefined;
    }
    return this.reason === undefined;
  }

  /** Records one score; returns the rollback reason the moment the split is rolled back. */
  record(slot: 'champion' | 'challenger', ms: number, ok: boolean): string | undefined {
    const s = this.stats[slot];
    s.requests++;
    s.totalMs += ms;
    if (!ok) s.failures++;
    if (this.reason !== undefined || slot !== 'challenger') return undefined;
    this.reason = decideRollback(this.stats.challenger, this.stats.champion, this.policy);
    return this.reason;
  }

  rolledBack(): { version: string; reason: string } | undefined {
    return this.reason !== undefined && this.version !== undefined
      ? { version: this.version, reason: this.reason }
      : undefined;
  }
}

function emptyStats(): SlotStats {
  return { requests: 0, failures: 0, totalMs: 0 };
}
