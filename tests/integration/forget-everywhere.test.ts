import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { ForgetResult } from '../../tasks/src/forget/index.js';
import { runCli } from '../support/env.js';
import {
  filesUnder,
  type SeededCustomer,
  seedCustomerEverywhere,
  tracesLeft,
  treeDigest,
} from '../support/forget-seed.js';

/**
 * Issue 20, problem 7: `forget` left the customer in snapshot and feature Parquet files, in the
 * MLflow artifact `config/train.json` (the whole snapshot, ids included), in `*.rejected.jsonl`
 * rows (the id inside `values`), and died with a stack trace on a malformed CSV. Problem 8: a
 * killed writer's partial copy of a raw file (`.customers.csv.<pid>.tmp`) stayed, unseen.
 * Here a customer is seeded in every place (tests/support/forget-seed.ts), `forget` runs once on
 * the built CLI, and every place (the whole home, the MLflow artifact store, the warehouse file as
 * raw bytes) is searched for the id, the email, the email's token and the prediction log's token.
 */

describe('driftwood forget: a customer seeded in every place is erased from each (built CLI, live MLflow)', () => {
  let s: SeededCustomer;
  let home = '';
  let lakeDir = '';
  let env: Record<string, string> = {};
  let victim = '';
  let snapshotId = '';
  let experimentDir = '';
  let traces: string[] = [];
  let first: { code: number; stdout: string; stderr: string };
  let result: ForgetResult;

  beforeAll(async () => {
    s = await seedCustomerEverywhere(inject('mlflowUri'), { customers: 200, seed: 11 });
    ({ home, lakeDir, env, victim, snapshotId, experimentDir, traces } = s);
    first = await runCli(['forget', '--customer', victim], env);
    result = JSON.parse(first.stdout || '{}');
  }, 600_000);

  it('every place held the customer before the request (positive controls for the search)', () => {
    const [id, mail, emailToken, customerToken] = traces;
    expect(s.seeded).toEqual({
      raw: [id, mail].sort(),
      quarantine: [id, mail, emailToken].sort(),
      snapshots: [id],
      features: [id],
      predictions: [customerToken],
      partialFiles: [id, mail].sort(),
      warehouse: [id, emailToken].sort(),
      mlflowArtifacts: [id],
    });
  });

  it('training configs record the snapshot by id, not its rows', async () => {
    const configs = filesUnder(experimentDir).filter((f) =>
      f.file.endsWith(path.join('config', 'train.json')),
    );
    expect(configs.length).toBe(2);
    for (const c of configs) {
      const config = JSON.parse(c.bytes.toString('utf8'));
      expect(config.snapshot).toMatchObject({ id: snapshotId });
      expect(config.snapshot.rows).toBeUndefined();
    }
  });

  it('finishes with exit 0, no stack trace, and reports per place what it changed', () => {
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).not.toMatch(/\n\s+at /);
    expect(result).toMatchObject({ found: true, complete: true, unreached: [] });
    const p = result.places;
    expect(p.snapshots).toMatchObject({ filesRewritten: 1, rowsRemoved: 1 });
    expect(p.features).toMatchObject({ filesRewritten: 1, rowsRemoved: 1 });
    // holdout.json of the trained run and the legacy config.
    expect(p.mlflowArtifacts.filesRewritten).toBeGreaterThanOrEqual(2);
    expect(p.mlflowArtifacts.files.join('\n')).toMatch(/evaluation\/holdout\.json/);
    expect(p.mlflowArtifacts.files.join('\n')).toMatch(/config\/train\.json/);
    // Rejected rows (2), the reason file's problem (1), the quarantined events copy (≥ 2 lines).
    expect(p.quarantine.rowsRemoved).toBeGreaterThanOrEqual(5);
    // The log (2 lines) and a dead API process's spill file (1 line).
    expect(p.predictionLogs).toMatchObject({ filesRewritten: 2, rowsRemoved: 3 });
    expect(p.partialFiles.filesRemoved).toBe(2);
    expect(p.lakeRaw.rowsRemoved).toBeGreaterThan(1);
    // The malformed files are named, not fatal.
    const problems = [...p.lakeRaw.problems, ...p.quarantine.problems].map((x: { file: string }) => x.file);
    expect(problems.some((f: string) => f.endsWith('events.csv') && f.startsWith('raw/'))).toBe(true);
    expect(problems.some((f: string) => f.startsWith('quarantine/') && f.endsWith('events.csv'))).toBe(true);
    expect(result.warehouse.customers).toBe(1);
    expect(first.stdout).not.toContain(victim);
  });

  it('no trace is left under the home, in the MLflow artifact store or in the warehouse', async () => {
    expect(await tracesLeft(s)).toEqual([]);
    // Others stay: the other customer's prediction line and rejected row.
    const log = path.join(home, 'predictions', 'churn', 'dt=2026-11-04', 'hr=10', 'predictions.jsonl');
    expect(readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(1);
    const rejected = path.join(
      lakeDir,
      'quarantine',
      'churn',
      'dt=2026-11-02',
      'hr=03',
      'customers.csv.rejected.jsonl',
    );
    expect(readFileSync(rejected, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('the rewritten snapshot and features are consistent: training reads them, the old id names its replacement', async () => {
    const newId = JSON.parse(
      readFileSync(path.join(lakeDir, 'snapshots', 'churn', snapshotId, 'tombstone.json'), 'utf8'),
    ).replacedBy as string;
    expect(newId).toMatch(/^[0-9a-f]{64}$/);
    expect(newId).not.toBe(snapshotId);
    const old = await runCli(['snapshot', '--show', snapshotId], env);
    expect(old.code).toBe(2);
    expect(old.stderr).toContain('DATA_MISSING');
    expect(old.stderr).toContain(`use snapshot ${newId}`);
    const train = await runCli(['train', '--snapshot', newId, '--epochs', '1'], env);
    expect(train.code, train.stderr).toBe(0);
    const shown = JSON.parse((await runCli(['snapshot', '--show', newId], env)).stdout);
    expect(shown).toMatchObject({ id: newId, replaces: snapshotId });
  });

  it('a second request changes nothing and says so', async () => {
    const before = treeDigest(home, ['lake/audit', 'results']);
    const snap = new Map(
      filesUnder(home).map((f) => [f.file, createHash('sha256').update(f.bytes).digest('hex')]),
    );
    const again = await runCli(['forget', '--customer', victim], env);
    expect(again.code, again.stderr).toBe(0);
    const r = JSON.parse(again.stdout);
    expect(r).toMatchObject({
      found: false,
      complete: true,
      summary: expect.stringMatching(/^nothing to erase/),
    });
    for (const place of [
      'lakeRaw',
      'quarantine',
      'snapshots',
      'features',
      'mlflowArtifacts',
      'predictionLogs',
    ])
      expect(r.places[place], place).toMatchObject({ filesRewritten: 0, rowsRemoved: 0 });
    expect(r.places.partialFiles.filesRemoved).toBe(0);
    // Only the new audit record and the step's result are written (the SQLite file is not vacuumed again).
    const changed = filesUnder(home)
      .filter((f) => snap.get(f.file) !== createHash('sha256').update(f.bytes).digest('hex'))
      .map((f) => path.relative(home, f.file));
    expect(changed.filter((f) => !f.startsWith(path.join('lake', 'audit')))).toEqual([
      path.join('results', 'forget.json'),
    ]);
    expect(treeDigest(home, ['lake/audit', 'results'])).toBe(before);
  });
});
