import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../tasks/src/csv.js';
import { simulateChurn } from '../../tasks/src/datasets/churn/simulate.js';

const base = { start: Date.parse('2026-11-01T00:00:00Z'), hours: 48, customers: 300, labelDelayHours: 24 };
const digest = (files: Map<string, string>) => {
  const h = createHash('sha256');
  for (const [k, v] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(k).update('\0').update(v);
  return h.digest('hex');
};

describe('simulateChurn', () => {
  it('gives byte-identical files for the same seed', () => {
    expect(digest(simulateChurn({ ...base, seed: 7 }))).toBe(digest(simulateChurn({ ...base, seed: 7 })));
  });

  it('gives different data for another seed', () => {
    expect(digest(simulateChurn({ ...base, seed: 7 }))).not.toBe(digest(simulateChurn({ ...base, seed: 8 })));
  });

  it('writes hourly partitions with customers, events and delayed labels', () => {
    const files = simulateChurn({ ...base, seed: 1 });
    const keys = [...files.keys()];
    expect(keys).toContain('raw/churn/dt=2026-11-01/hr=00/customers.csv');
    expect(keys.filter((k) => k.endsWith('events.csv'))).toHaveLength(48);
    expect(
      keys.every((k) =>
        /^raw\/churn\/dt=\d{4}-\d{2}-\d{2}\/hr=\d{2}\/(customers|events|labels)\.csv$/.test(k),
      ),
    ).toBe(true);
    const customers = parseCsv(files.get('raw/churn/dt=2026-11-01/hr=00/customers.csv') as string);
    // The initial population, then the first hour's sign-ups.
    expect(customers.rows.length).toBeGreaterThanOrEqual(300);
    expect(customers.rows.slice(0, 300).map((r) => r.customer_id)).toEqual(
      Array.from({ length: 300 }, (_, i) => `C${String(i + 1).padStart(6, '0')}`),
    );
    expect(customers.header).toEqual([
      'customer_id',
      'email',
      'signup_at',
      'plan',
      'region',
      'monthly_charges',
    ]);
    // Labels arrive after the delay: none can be reported in the first 24 hours.
    const earlyLabels = keys.filter((k) => k.endsWith('labels.csv') && /dt=2026-11-01\//.test(k));
    expect(earlyLabels).toHaveLength(0);
    for (const key of keys.filter((k) => k.endsWith('labels.csv'))) {
      for (const row of parseCsv(files.get(key) as string).rows) {
        expect(Date.parse(row.reported_at as string) - Date.parse(row.churned_at as string)).toBe(
          24 * 3_600_000,
        );
      }
    }
  });

  it('makes events whose times fall inside their partition hour', () => {
    const files = simulateChurn({ ...base, hours: 6, seed: 3 });
    for (const [key, body] of files) {
      if (!key.endsWith('events.csv')) continue;
      const m = /dt=(\d{4}-\d{2}-\d{2})\/hr=(\d{2})/.exec(key) as RegExpExecArray;
      const start = Date.parse(`${m[1]}T${m[2]}:00:00Z`);
      for (const row of parseCsv(body).rows) {
        const t = Date.parse(row.event_time as string);
        expect(t).toBeGreaterThanOrEqual(start);
        expect(t).toBeLessThan(start + 3_600_000);
      }
    }
  });
});
