import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_CONTRACTS_DIR } from '../../tasks/src/contracts/index.js';
import type { TrainResult } from '../../tasks/src/train/index.js';
import type { Selection } from '../../tasks/src/train/select.js';
import { landAndIngest, mlflowClient, runCli, tempHome, uniqueName } from '../support/env.js';

/**
 * Training and features read a data snapshot: `train --snapshot <id> --seed S` twice gives the same
 * metrics, the run names the snapshot (tag and MLflow dataset input), the features folder is named
 * after it, training reads that folder (written first by the features step when missing) and refuses
 * one that was altered or belongs to another snapshot or contract, and a snapshot whose data was
 * altered is refused.
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
  /** The first `train` result: the default model kind, `auto`. */
  let first: TrainResult;

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
    // The same candidates, figures and choice (fit times aside).
    const noTimes = (r: TrainResult) => r.selection?.candidates.map(({ fitSeconds: _, ...c }) => c);
    expect(noTimes(b)).toEqual(noTimes(a));
    first = a;
  });

  it('by default fits the candidates, keeps the best on validation, and says which and why', async () => {
    const selection = first.selection as Selection;
    expect(selection).toMatchObject({ requested: 'auto', kind: first.modelKind });
    const { candidates } = selection;
    expect(candidates.map((c) => c.name)).toEqual(['logistic-exact', 'logistic-adam', 'gbdt']);
    const kept = candidates.filter((c) => c.chosen);
    expect(kept.map((c) => c.name)).toEqual([selection.chosen]);
    const passing = candidates.filter((c) => c.failedChecks.length === 0);
    const pool = passing.length > 0 ? passing : candidates;
    expect(kept[0]?.validationRocAuc).toBe(Math.max(...pool.map((c) => c.validationRocAuc)));
    // The registered model is the kept candidate: its validation figure is the run's.
    expect(first.validationMetrics.roc_auc).toBe(kept[0]?.validationRocAuc);

    const mlflow = mlflowClient(inject('mlflowUri'));
    const run = await mlflow.getRun(first.runId);
    const params = Object.fromEntries((run.data.params ?? []).map((p) => [p.key, p.value]));
    expect(params).toMatchObject({
      model_selection: 'auto',
      auto_candidates: 'logistic-exact,logistic-adam,gbdt',
      model: first.modelKind === 'gbdt' ? 'gbdt' : 'logistic_regression',
      seed: '5',
    });
    const tags = Object.fromEntries((run.data.tags ?? []).map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({
      'driftwood.model_selection': 'auto',
      'driftwood.model_kind': first.modelKind,
      'driftwood.auto.chosen': selection.chosen,
      'driftwood.auto.reason': selection.reason,
    });
    expect(tags['mlflow.runName']).toMatch(new RegExp(`^churn ${first.modelKind} [0-9a-f]{8} `));
    const metrics = Object.fromEntries((run.data.metrics ?? []).map((m) => [m.key, m.value]));
    for (const c of candidates)
      expect(metrics[`auto_${c.name.replace('-', '_')}_validation_roc_auc`]).toBeCloseTo(
        c.validationRocAuc,
        12,
      );
    const table = JSON.parse(
      (await mlflow.downloadArtifact(run.info.artifact_uri, 'selection/auto.json')).toString(),
    );
    expect(table).toEqual(selection);
    // An ordinary version of the kind kept: serving and the gate load it by this tag.
    const mv = await mlflow.getModelVersion(env.DRIFTWOOD_MODEL_NAME, first.modelVersion);
    expect(mv.tags?.find((t) => t.key === 'driftwood.model_kind')?.value).toBe(first.modelKind);
  });

  it('names the features folder after the snapshot', async () => {
    const f = await cli(['features', '--dataset', 'churn', '--snapshot', snapshotId]);
    expect(f.id).toBe(snapshotId);
    expect(f.prefix).toBe(`features/churn/${snapshotId}`);
  });

  it("trains on the features step's artifact: the same bytes whether train or the features step wrote it", async () => {
    const dir = path.join(home, 'lake', 'features', 'churn', snapshotId);
    const written = readFileSync(path.join(dir, 'features.parquet'));
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ format: 'driftwood.features/v2', snapshot: snapshotId });
    expect(manifest.contract).toMatchObject({ dataset: 'churn', version: expect.any(Number) });
    expect(Object.keys(manifest.files)).toEqual(['features.parquet', 'transform.json']);

    await cli(['features', '--dataset', 'churn', '--snapshot', snapshotId]);
    expect(readFileSync(path.join(dir, 'features.parquet')).equals(written)).toBe(true);

    const t = await cli(['train', '--dataset', 'churn', '--snapshot', snapshotId, '--epochs', '2']);
    expect(t.featuresId).toBe(snapshotId);
    const run = await mlflowClient(inject('mlflowUri')).getRun(t.runId);
    const tags = Object.fromEntries((run.data.tags ?? []).map((x) => [x.key, x.value]));
    expect(tags['driftwood.features_id']).toBe(snapshotId);
    // The run's fitted transform is the artifact's, byte for byte: nothing was refitted.
    const root = run.info.artifact_uri;
    const transform = await mlflowClient(inject('mlflowUri')).downloadArtifact(root, 'transform.json');
    expect(transform.equals(readFileSync(path.join(dir, 'transform.json')))).toBe(true);
  });

  it('refuses a features artifact that was altered, or made from another snapshot or contract version', async () => {
    const dir = path.join(home, 'lake', 'features', 'churn', snapshotId);
    const train = () =>
      runCli(['train', '--dataset', 'churn', '--snapshot', snapshotId, '--epochs', '2'], env);
    const refused = async (pattern: RegExp) => {
      const r = await train();
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(
        new RegExp(`SCHEMA_MISMATCH: features artifact features/churn/${snapshotId}: `),
      );
      expect(r.stderr).toMatch(pattern);
    };
    const restore = (file: string) => {
      const bytes = readFileSync(path.join(dir, file));
      return () => writeFileSync(path.join(dir, file), bytes);
    };

    // One flipped byte in the matrix.
    const parquet = path.join(dir, 'features.parquet');
    const undoParquet = restore('features.parquet');
    const bytes = readFileSync(parquet);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0xff;
    writeFileSync(parquet, bytes);
    await refused(/features\.parquet does not match the sha256 its manifest records/);
    undoParquet();

    // A digest in the manifest that the files do not have.
    const undoManifest = restore('manifest.json');
    const edit = (change: (m: Record<string, unknown>) => void) => {
      undoManifest();
      const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
      change(m);
      writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
    };
    edit((m) => {
      (m.files as Record<string, string>)['transform.json'] = '0'.repeat(64);
    });
    await refused(/transform\.json does not match the sha256/);
    edit((m) => {
      m.snapshot = 'a'.repeat(64);
    });
    await refused(new RegExp(`built from snapshot a{64}, not ${snapshotId}`));
    edit((m) => {
      (m.contract as { version: number }).version += 1;
    });
    await refused(/built under contract version \d+, the contract is now version \d+/);
    undoManifest();
    await cli(['train', '--dataset', 'churn', '--snapshot', snapshotId, '--epochs', '2']);
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

  it('takes a new snapshot of the same rows once the contract is edited, which the features step then takes', async () => {
    // Before, the edited contract found the old snapshot (same rows, same id) "already materialised",
    // and features refused it as taken under another contract: no step could get past.
    const contracts = mkdtempSync(path.join(os.tmpdir(), 'driftwood-edited-contract-'));
    const text = readFileSync(path.join(DEFAULT_CONTRACTS_DIR, 'churn.yaml'), 'utf8');
    const edited = text.replace('validation: 0.15', 'validation: 0.16');
    expect(edited).not.toBe(text);
    writeFileSync(path.join(contracts, 'churn.yaml'), edited);
    const withEdit = { ...env, DRIFTWOOD_CONTRACTS_DIR: contracts };
    const r = await runCli(['snapshot', '--dataset', 'churn', '--as-of', '2026-11-06T00:00Z'], withEdit);
    expect(r.code, r.stderr).toBe(0);
    const taken = JSON.parse(r.stdout);
    expect(taken.id).not.toBe(snapshotId);
    expect(taken.created).toBe(true);
    const f = await runCli(['features', '--dataset', 'churn', '--snapshot', taken.id], withEdit);
    expect(f.code, f.stderr).toBe(0);
    expect(JSON.parse(f.stdout).id).toBe(taken.id);
    // Under the contract it was taken with, the first snapshot is found again, unchanged.
    expect((await cli(['snapshot', '--dataset', 'churn', '--as-of', '2026-11-06T00:00Z'])).id).toBe(
      snapshotId,
    );
  });
});
