import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseCsv, parseTransformState, transformRow } from '@driftwood/tasks';
import { beforeAll, describe, expect, it } from 'vitest';
import { parquetReadObjects } from '../../tasks/src/parquet.js';
import { landAndIngest, runCli, tempHome } from '../support/env.js';

/**
 * `driftwood features` on real simulated data: the lake folder holds a Parquet matrix that readers
 * other than ours can open, the fitted transform and a sample; the stored vectors are exactly what
 * the single-row transform (the one serving runs) computes from the sample's raw fields.
 */
describe('driftwood features', () => {
  const home = tempHome('driftwood-features-step-');
  const env = { DRIFTWOOD_HOME: home, DRIFTWOOD_PII_KEY: 'features-key-0123456789abcdef', LOG_LEVEL: 'warn' };
  const lake = path.join(home, 'lake');
  let result: {
    id: string;
    prefix: string;
    rows: number;
    columns: number;
    files: string[];
    splits: Record<string, number>;
  };

  beforeAll(async () => {
    await landAndIngest(env, { hours: 120, seed: 5, customers: 300 });
    const r = await runCli(['features', '--dataset', 'churn'], env);
    expect(r.code, r.stderr).toBe(0);
    result = JSON.parse(r.stdout);
  });

  it('writes the matrix, the fitted transform, a sample and a manifest under features/churn/<id>/', async () => {
    expect(result.prefix).toBe(`features/churn/${result.id}`);
    expect(result.files.map((f) => path.basename(f))).toEqual([
      'features.parquet',
      'transform.json',
      'sample.csv',
      'manifest.json',
    ]);
    const manifest = JSON.parse(readFileSync(path.join(lake, result.prefix, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ format: 'driftwood.features/v2', rows: result.rows, dataset: 'churn' });
    expect(manifest.snapshot).toBeNull();
    expect(manifest.contract).toMatchObject({ dataset: 'churn', version: expect.any(Number) });
    expect(manifest.files['features.parquet']).toMatch(/^[0-9a-f]{64}$/);
    expect(result.splits.train + result.splits.validation + result.splits.holdout).toBe(result.rows);
    expect(result.splits.train).toBeGreaterThan(result.splits.holdout);
  });

  it('stores exactly the vectors the single-row transform computes from the raw fields', async () => {
    const dir = path.join(lake, result.prefix);
    const state = parseTransformState(JSON.parse(readFileSync(path.join(dir, 'transform.json'), 'utf8')));
    const file = readFileSync(path.join(dir, 'features.parquet'));
    const records = await parquetReadObjects({
      file: file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength),
    });
    expect(records).toHaveLength(result.rows);
    expect(Object.keys(records[0] ?? {})).toEqual(['customer_id', 'split', 'label', ...state.outputs]);

    const sample = parseCsv(readFileSync(path.join(dir, 'sample.csv'), 'utf8')).rows;
    expect(sample.length).toBeGreaterThan(0);
    const raw = Object.keys(sample[0] ?? {}).filter(
      (k) => !['customer_id', 'split', 'label'].includes(k) && !k.startsWith('out:'),
    );
    for (const [i, row] of sample.entries()) {
      // The sample's raw fields arrive as strings, as they would in a request; empty means missing.
      const fields = Object.fromEntries(raw.map((k) => [k, row[k] === '' ? null : row[k]]));
      const vector = transformRow(state, fields);
      const stored = records[i] as Record<string, unknown>;
      expect(stored.customer_id).toBe(row.customer_id);
      expect(state.outputs.map((o) => stored[o])).toEqual(Array.from(vector));
    }
  });

  it('is idempotent: a re-run names the same id and writes the same bytes', async () => {
    const parquet = readFileSync(path.join(lake, result.prefix, 'features.parquet'));
    const again = await runCli(['features', '--dataset', 'churn'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).id).toBe(result.id);
    expect(readFileSync(path.join(lake, result.prefix, 'features.parquet')).equals(parquet)).toBe(true);
  });

  it('refuses a snapshot id that could escape its folder', async () => {
    const r = await runCli(['features', '--dataset', 'churn', '--snapshot', '../../etc'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/snapshot id: expected 64 hex digits, got '..\/..\/etc'/);
  });
});
