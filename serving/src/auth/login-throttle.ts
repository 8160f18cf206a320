/**
 * Failed logins per key (a user name, an address) in fixed windows. An attempt is counted when it
 * starts, so a burst of concurrent guesses cannot all start before the first one fails, and uncounted
 * when it succeeds: only failures use up the allowance. Keys live in one Map in order of window end
 * (as the rate limiter's do); at `maxKeys` the oldest window is forgotten.
 */
export class LoginThrottle {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  constructor(
    readonly max: number,
    readonly windowMs: number,
    private readonly maxKeys = 10_000,
  ) {}

  /**
   * Starts an attempt for all `keys` at `now`: `{ retryAfter }` (seconds) when one of them has used
   * its allowance, and nothing is counted; else the attempt is counted for each key.
   */
  begin(keys: readonly string[], now: number): { retryAfter: number } | undefined {
    let until = 0;
    for (const key of keys) {
      const w = this.live(key, now);
      if (w && w.count >= this.max) until = Math.max(until, w.resetAt);
    }
    if (until > 0) return { retryAfter: Math.max(1, Math.ceil((until - now) / 1000)) };
    for (const key of keys) {
      let w = this.live(key, now);
      if (!w) {
        if (this.windows.size >= this.maxKeys)
          this.windows.delete(this.windows.keys().next().value as string);
        w = { count: 0, resetAt: now + this.windowMs };
        this.windows.set(key, w);
      }
      w.count++;
    }
    return undefined;
  }

  /** The attempt begun for `keys` succeeded: it does not count. */
  succeeded(keys: readonly string[], now: number): void {
    for (const key of keys) {
      const w = this.live(key, now);
      if (w && w.count > 0) w.count--;
    }
  }

  /** Forgets windows that have ended. */
  sweep(now: number): void {
    for (const [key, w] of this.windows) {
      if (w.resetAt > now) return;
      this.windows.delete(key);
    }
  }

  private live(key: string, now: number) {
    const w = this.windows.get(key);
    if (w && w.resetAt <= now) {
      this.windows.delete(key);
      return undefined;
    }
    return w;
  }
}
