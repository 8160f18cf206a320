import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../serving/src/plugins/latency-histogram.js';

const NAME = 'driftwood_http_request_duration_seconds';
const HELP = 'Time from request to response, by method and route pattern';
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** mulberry32: a small seeded generator, so a failure can be replayed. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const pair = () => {
  const ours = new Registry();
  const theirs = new Registry();
  const histogram = new LatencyHistogram({ name: NAME, help: HELP, buckets: BUCKETS, registers: [ours] });
  const reference = new Histogram({
    name: NAME,
    help: HELP,
    labelNames: ['method', 'route'],
    buckets: BUCKETS,
    registers: [theirs],
  });
  return { ours, theirs, histogram, reference };
};

const at = <T>(xs: readonly T[], i: number): T => {
  const x = xs[i];
  if (x === undefined) throw new RangeError(`no element ${i}`);
  return x;
};

const lines = async (registry: Registry) => (await registry.metrics()).split('\n');

describe('LatencyHistogram', () => {
  it('exposes the same text as prom-client Histogram fed the same observations', async () => {
    const { ours, theirs, histogram, reference } = pair();
    const labelSets = [
      { method: 'POST', route: '/v1/predict' },
      { method: 'GET', route: '/v1/models/:alias' },
      { method: 'GET', route: 'a "quoted" \\ route\nwith a newline' },
    ];
    // Created but never observed: exposed by neither.
    histogram.series('DELETE', '/v1/never');
    const series = labelSets.map((l) => histogram.series(l.method, l.route));
    const random = seeded(20240611);
    for (let i = 0; i < 1000; i++) {
      const k = random() < 0.6 ? 0 : random() < 0.8 ? 1 : 2;
      const r = random();
      const seconds =
        r < 0.2
          ? at(BUCKETS, Math.floor(random() * BUCKETS.length)) // exactly on a bound
          : r < 0.25
            ? 2.5 + random() * 10 // above the last bound
            : r < 0.27
              ? 0
              : 10 ** (-4.5 + random() * 4.5);
      at(series, k).observe(seconds);
      reference.observe(at(labelSets, k), seconds);
    }
    const expected = await lines(theirs);
    expect(expected.some((l) => l.includes('le="+Inf"'))).toBe(true);
    expect(expected.filter((l) => l.startsWith(`${NAME}_count{`))).toHaveLength(labelSets.length);
    expect(await lines(ours)).toEqual(expected);
    // prom-client adds `exemplar: null` to each bucket; there are no exemplars to expose here.
    const withoutExemplars = async (registry: Registry) =>
      (await registry.getMetricsAsJSON()).map((m) => ({
        ...m,
        values: m.values.map((v) => {
          const { exemplar: _, ...rest } = v as typeof v & { exemplar?: unknown };
          return rest;
        }),
      }));
    expect(await withoutExemplars(ours)).toEqual(await withoutExemplars(theirs));
  });

  it('exposes only HELP and TYPE before any observation, and again after a reset', async () => {
    const { ours, theirs, histogram, reference } = pair();
    histogram.series('GET', '/health');
    expect(await lines(ours)).toEqual(await lines(theirs));

    histogram.series('GET', '/health').observe(0.003);
    reference.observe({ method: 'GET', route: '/health' }, 0.003);
    ours.resetMetrics();
    theirs.resetMetrics();
    expect(await lines(ours)).toEqual(await lines(theirs));

    // After a reset, series come back in the order they are observed again.
    for (const [method, route, seconds] of [
      ['POST', '/v1/predict', 0.001],
      ['GET', '/health', 0.0004],
      ['POST', '/v1/predict', 3],
    ] as const) {
      histogram.series(method, route).observe(seconds);
      reference.observe({ method, route }, seconds);
    }
    expect(await lines(ours)).toEqual(await lines(theirs));
  });

  it('shares one series among callers asking for the same labels', () => {
    const { histogram } = pair();
    expect(histogram.series('GET', '/a')).toBe(histogram.series('GET', '/a'));
    expect(histogram.series('GET', '/a')).not.toBe(histogram.series('POST', '/a'));
  });
});
