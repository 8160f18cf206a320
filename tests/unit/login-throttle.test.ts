import { describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../serving/src/auth/login-throttle.js';

describe('LoginThrottle', () => {
  it('refuses once any key has used its allowance, counting nothing for a refused attempt', () => {
    const t = new LoginThrottle(2, 60_000);
    expect(t.begin(['user:a', 'ip:1'], 0)).toBeUndefined();
    expect(t.begin(['user:b', 'ip:1'], 1_000)).toBeUndefined();
    // ip:1 has used its two; user:c is refused with it and not counted.
    expect(t.begin(['user:c', 'ip:1'], 2_000)).toEqual({ retryAfter: 58 });
    expect(t.begin(['user:c', 'ip:2'], 2_000)).toBeUndefined();
    expect(t.begin(['user:c', 'ip:3'], 2_000)).toBeUndefined();
    expect(t.begin(['user:c', 'ip:4'], 2_000)).toEqual({ retryAfter: 60 });
  });

  it('does not count an attempt that succeeded', () => {
    const t = new LoginThrottle(1, 60_000);
    expect(t.begin(['user:a'], 0)).toBeUndefined();
    t.succeeded(['user:a'], 10);
    expect(t.begin(['user:a'], 20)).toBeUndefined();
    expect(t.begin(['user:a'], 30)).toEqual({ retryAfter: 60 });
  });

  it('starts afresh when the window ends, and sweeps ended windows', () => {
    const t = new LoginThrottle(1, 1_000);
    t.begin(['ip:1'], 0);
    expect(t.begin(['ip:1'], 999)).toEqual({ retryAfter: 1 });
    expect(t.begin(['ip:1'], 1_000)).toBeUndefined();
    t.sweep(5_000);
    expect(t.begin(['ip:1'], 5_000)).toBeUndefined();
  });
});
