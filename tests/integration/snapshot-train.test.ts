import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { landAndIngest, mlflowClient, runCli, tempHome, uniqueName } from '../support/env.js';

/**
 * Training and features read a data snapshot: `train --snapshot <id> --seed S` twice gives the same
 * metrics, the run names the snapshot (tag and MLflow dataset input), the features folder is named
 * after it, and a snapshot whose data was altered is refused.
 */
describe('training from a snapshot', () => {
  const home = tempHome('driftwood-snapshot-train-');
  const env = {
    DRIFTWOOD_HOME: home,
    MLFLOW_TRACKING_URI: inject('mlflowUri'),
    DRIFTWOOD_MODEL_NAME: uniqueName('churn-snap'),
    DRIFTWOOD_EXPERIMENT: uniqueName('snap'),
    DRIFTWOOD_PII_KEY: 'snapshot-key-0123456789abcdef',
    LOG_LEVEL: 'warn',
  };
  let snapshotId: string;

  const cli = async (args: string[]) => {
    const r = await runCli(args, env);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };

  beforeAll(async () => {
    await landAndIngest(env, { hours: 120, seed: 3, customers: 450 });
    snapshotId = (await cli(['snapshot', '--dataset', 'churn', '--as-of', '2026-11-06T00:00Z'])).id;
  });

  it('gives identical metrics twice from the same snapshot and seed, and names the snapshot on the run', async () => {
    const a = await cli(['train', '--dataset', 'churn', '--snapshot', snapshotId, '--seed', '5']);
    const b = await cli(['train', '--dataset', 'churn', '--snapshot', 'latest', '--seed', '5']);
    expect(b.metrics).toEqual(a.metrics);
    expect(b.dataDigest).toBe(a.dataDigest);
    expect(b.modelVersion).not.toBe(a.modelVersion);

    const run = await mlflowClient(inject('mlflowUri')).getRun(a.runId);
    expect(run.data.tags?.find((t) => t.key === 'driftwood.snapshot_id')?.value).toBe(snapshotId);
    const inputs = (run as unknown as { inputs?: { dataset_inputs?: { dataset: { source: string } }[] } })
      .inputs?.dataset_inputs;
    expect(inputs?.map((i) => JSON.parse(i.dataset.source).snapshot_id)).toContain(snapshotId);
  });

  it('names the features folder after the snapshot', async () => {
    const f = await cli(['features', '--dataset', 'churn', '--snapshot', snapshotId]);
    expect(f.id).toBe(snapshotId);
    expect(f.prefix).toBe(`features/churn/${snapshotId}`);
  });

  it('refuses an unknown snapshot and one whose data no longer matches its manifest', async () => {
    const unknown = await runCli(['train', '--dataset', 'churn', '--snapshot', 'f'.repeat(64)], env);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no snapshot f{64} of churn/);

    const data = path.join(home, 'lake', 'snapshots', 'churn', snapshotId, 'data.parquet');
    const bytes = readFileSync(data);
    writeFileSync(data, Buffer.concat([bytes, Buffer.from('tampered')]));
    const tampered = await runCli(['train', '--dataset', 'churn', '--snapshot', snapshotId], env);
    expect(tampered.code).toBe(2);
    expect(tampered.stderr).toMatch(/does not match the manifest's sha256/);
  });
});
