import { describe, expect, it } from 'vitest';
import { parseCsv, toCsv } from '../../tasks/src/csv.js';
import { planIngest } from '../../tasks/src/ingest/plan.js';
import { chunkBatch, LOG_BATCH_LIMITS } from '../../tasks/src/mlflow/client.js';
import { binaryMetrics, rocAuc } from '../../tasks/src/models/metrics.js';

describe('rocAuc', () => {
  it.each([
    [[0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75],
    [[0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], 1],
    [[0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1], 0],
    [[0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5],
  ])('scores %j with labels %j → %d', (scores, labels, auc) => {
    expect(rocAuc(scores, labels)).toBeCloseTo(auc, 12);
  });

  it('is NaN with one class only', () => {
    expect(rocAuc([0.1, 0.2], [1, 1])).toBeNaN();
  });
});

describe('binaryMetrics', () => {
  it('counts the confusion matrix at the threshold', () => {
    const m = binaryMetrics([0.9, 0.8, 0.3, 0.2, 0.6], [1, 0, 1, 0, 1]);
    // tp=2 (0.9, 0.6), fp=1 (0.8), fn=1 (0.3), tn=1 (0.2)
    expect(m.accuracy).toBeCloseTo(3 / 5);
    expect(m.precision).toBeCloseTo(2 / 3);
    expect(m.recall).toBeCloseTo(2 / 3);
    expect(m.f1).toBeCloseTo(2 / 3);
    expect(m.log_loss).toBeGreaterThan(0);
  });
});

describe('chunkBatch', () => {
  const kv = (n: number, p: string) => Array.from({ length: n }, (_, i) => ({ key: `${p}${i}`, value: 'v' }));
  const metric = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ key: 'loss', value: i, timestamp: 0, step: i }));

  it('keeps every request within MLflow log-batch limits and loses nothing', () => {
    const chunks = chunkBatch(kv(250, 'p'), metric(2500), kv(130, 't'));
    for (const c of chunks) {
      expect(c.params.length).toBeLessThanOrEqual(LOG_BATCH_LIMITS.params);
      expect(c.tags.length).toBeLessThanOrEqual(LOG_BATCH_LIMITS.tags);
      expect(c.metrics.length).toBeLessThanOrEqual(LOG_BATCH_LIMITS.metrics);
      expect(c.params.length + c.tags.length + c.metrics.length).toBeLessThanOrEqual(LOG_BATCH_LIMITS.total);
    }
    expect(chunks.flatMap((c) => c.params)).toHaveLength(250);
    expect(chunks.flatMap((c) => c.tags)).toHaveLength(130);
    expect(chunks.flatMap((c) => c.metrics).map((m) => m.step)).toEqual(
      Array.from({ length: 2500 }, (_, i) => i),
    );
  });

  it('sends nothing for an empty batch', () => {
    expect(chunkBatch([], [], [])).toEqual([]);
  });
});

// decidePromotion's table lives in promote.test.ts, with the evidence it now decides from.

describe('planIngest', () => {
  const o = (key: string, etag = 'e1') => ({ key, size: 10, etag });
  const objects = [
    o('raw/churn/dt=2026-11-01/hr=01/events.csv'),
    o('raw/churn/dt=2026-11-01/hr=00/events.csv'),
    o('raw/churn/dt=2026-11-01/hr=00/customers.csv'),
    o('raw/churn/dt=2026-11-01/hr=02/events.csv', 'e2'),
    o('raw/churn/notes.txt'),
  ];

  it('loads oldest hour first, customers before events, and skips what the ledger has with the same etag', () => {
    const ledger = new Map([
      [
        'raw/churn/dt=2026-11-01/hr=01/events.csv',
        {
          object_key: 'raw/churn/dt=2026-11-01/hr=01/events.csv',
          etag: 'e1',
          sha256: 'x',
          status: 'loaded' as const,
        },
      ],
      [
        'raw/churn/dt=2026-11-01/hr=02/events.csv',
        {
          object_key: 'raw/churn/dt=2026-11-01/hr=02/events.csv',
          etag: 'old',
          sha256: 'y',
          status: 'loaded' as const,
        },
      ],
    ]);
    const plan = planIngest(objects, ledger);
    expect(plan.load.map((x) => x.key)).toEqual([
      'raw/churn/dt=2026-11-01/hr=00/customers.csv',
      'raw/churn/dt=2026-11-01/hr=00/events.csv',
      'raw/churn/dt=2026-11-01/hr=02/events.csv',
    ]);
    expect(plan.skip.map((x) => x.key)).toEqual(['raw/churn/dt=2026-11-01/hr=01/events.csv']);
  });

  it('keeps to the interval', () => {
    const plan = planIngest(objects, new Map(), {
      start: Date.parse('2026-11-01T01:00Z'),
      end: Date.parse('2026-11-01T02:00Z'),
    });
    expect(plan.load.map((x) => x.key)).toEqual(['raw/churn/dt=2026-11-01/hr=01/events.csv']);
  });
});

describe('csv', () => {
  it('round-trips quotes, commas and newlines', () => {
    const text = toCsv(
      ['a', 'b'],
      [
        ['x,y', 'say "hi"'],
        ['line\nbreak', null],
      ],
    );
    expect(parseCsv(text).rows).toEqual([
      { a: 'x,y', b: 'say "hi"' },
      { a: 'line\nbreak', b: '' },
    ]);
  });

  it('names the row with the wrong number of fields', () => {
    expect(() => parseCsv('a,b\n1,2\n3\n')).toThrow(/row 3: expected 2 fields, got 1/);
  });
});
