import { loadConfig } from '@driftwood/tasks';
import { describe, expect, it } from 'vitest';
import { TtlCache } from '../../serving/src/features/by-id.js';

describe('the by-id feature cache', () => {
  it('keeps an entry until its TTL has passed', () => {
    let now = 1_000;
    const cache = new TtlCache<number>(60_000, 10, () => now);
    cache.set('a', 1);
    now += 59_999;
    expect(cache.get('a')).toBe(1);
    now += 1;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keeps at most its bound, dropping the entry set longest ago', () => {
    const cache = new TtlCache<number>(60_000, 2, () => 0);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('a', 3); // set again: now the newest
    cache.set('c', 4);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([3, undefined, 4]);
  });

  it('keeps nothing with a TTL of 0', () => {
    const cache = new TtlCache<number>(0, 10, () => 0);
    cache.set('a', 1);
    expect(cache.get('a')).toBeUndefined();
  });

  it('reads DRIFTWOOD_API_FEATURE_CACHE_TTL_MS: 60 s by default, named when bad', () => {
    expect(loadConfig({}, '/tmp').serving.featureCacheTtlMs).toBe(60_000);
    expect(loadConfig({ DRIFTWOOD_API_FEATURE_CACHE_TTL_MS: '0' }, '/tmp').serving.featureCacheTtlMs).toBe(0);
    expect(() => loadConfig({ DRIFTWOOD_API_FEATURE_CACHE_TTL_MS: '1m' }, '/tmp')).toThrow(
      "setting DRIFTWOOD_API_FEATURE_CACHE_TTL_MS: expected an integer from 0 to 3600000, got '1m'",
    );
  });
});
