import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parquetReadObjects } from '../../tasks/src/parquet.js';
import { mlflowClient, runCli, tempHome } from '../support/env.js';

/**
 * `training.split.strategy: time` through the built CLI, on a dataset made of a contract and files
 * alone: the features step (from the warehouse, and from a snapshot) puts the newest applications in
 * the holdout and the ones just before them in validation, the same rows either way; and training
 * reads that very split, so its holdout is the one evaluation scores on.
 */
const ROWS = 200;
const T0 = Date.parse('2026-11-20T00:00:00Z');
const contract = `
dataset: loans
version: 1
task: binary_classification
builder: columns
training:
  split: { validation: 0.1, test: 0.2, strategy: time }
tables:
  - name: applications
    files: [applications.csv]
    key: application_id
    columns:
      - { name: application_id, type: string, role: id, nullable: false }
      - { name: submitted_at, type: timestamp, role: timestamp, nullable: false }
      - { name: income, type: number, role: feature, nullable: false }
      - { name: purpose, type: string, role: feature, nullable: false, allowed: [car, home, study] }
      - { name: defaulted, type: integer, role: target, nullable: false }
`;

/** Ids run against time (a-199 is the oldest), so an id-ordered split could not pass for a time one. */
const idOf = (i: number) => `a-${String(ROWS - 1 - i).padStart(3, '0')}`;
// Every row inside the two loaded hours (the default cutoff is the end of the newest one).
const submittedAt = (i: number) => T0 + i * 30_000;

describe('the time split from the contract', () => {
  const home = tempHome('driftwood-split-time-');
  const contracts = mkdtempSync(path.join(os.tmpdir(), 'driftwood-split-contracts-'));
  const env = {
    DRIFTWOOD_HOME: home,
    DRIFTWOOD_CONTRACTS_DIR: contracts,
    MLFLOW_TRACKING_URI: inject('mlflowUri'),
    LOG_LEVEL: 'warn',
  };
  const lake = path.join(home, 'lake');
  let snapshotId = '';
  const cli = async (args: string[]) => {
    const r = await runCli(args, env);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };
  const splitOfFolder = async (prefix: string): Promise<Map<string, string>> => {
    const file = readFileSync(path.join(lake, prefix, 'features.parquet'));
    const records = (await parquetReadObjects({
      file: file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength),
    })) as { application_id: string; split: string }[];
    return new Map(records.map((r) => [r.application_id, r.split]));
  };

  beforeAll(async () => {
    writeFileSync(path.join(contracts, 'loans.yaml'), contract);
    // Two hourly files, rows in no particular time order within them.
    for (const hr of ['00', '01']) {
      const dir = path.join(lake, 'raw/loans/dt=2026-11-20', `hr=${hr}`);
      mkdirSync(dir, { recursive: true });
      const lines: string[] = [];
      for (let k = 0; k < ROWS / 2; k++) {
        const i = hr === '00' ? 2 * k : 2 * k + 1;
        const purpose = ['car', 'home', 'study'][i % 3];
        const at = new Date(submittedAt(i)).toISOString();
        lines.push(`${idOf(i)},${at},${1000 + ((i * 37) % 500)},${purpose},${i % 3 === 0 ? 1 : 0}`);
      }
      const header = 'application_id,submitted_at,income,purpose,defaulted';
      writeFileSync(path.join(dir, 'applications.csv'), `${[header, ...lines.reverse()].join('\n')}\n`);
    }
    const ingest = await cli(['ingest', '--dataset', 'loans']);
    expect(ingest.rowsLoaded).toBe(ROWS);
  });

  it('puts the newest 20% in the holdout and the 10% before them in validation, from the warehouse and from a snapshot', async () => {
    const built = await cli(['features', '--dataset', 'loans']);
    expect(built.splits).toEqual({ train: 140, validation: 20, holdout: 40 });
    const split = await splitOfFolder(built.prefix);
    for (let i = 0; i < ROWS; i++)
      expect([idOf(i), split.get(idOf(i))]).toEqual([
        idOf(i),
        i >= 160 ? 'holdout' : i >= 140 ? 'validation' : 'train',
      ]);
    const manifest = JSON.parse(readFileSync(path.join(lake, built.prefix, 'manifest.json'), 'utf8'));
    expect(manifest.fractions).toEqual({ holdout: 0.2, validation: 0.1, strategy: 'time' });

    const snap = await cli(['snapshot', '--dataset', 'loans', '--as-of', built.cutoff]);
    expect(snap.manifest.schema.at(-1)).toEqual({ name: '__time', type: 'double', role: 'time' });
    const fromSnapshot = await cli(['features', '--dataset', 'loans', '--snapshot', snap.id]);
    expect(fromSnapshot.splits).toEqual(built.splits);
    expect(await splitOfFolder(fromSnapshot.prefix)).toEqual(split);
    snapshotId = snap.id;
  });

  it('trains on that split: the holdout the run keeps for evaluation is the newest rows', async () => {
    const trained = await cli(['train', '--dataset', 'loans', '--snapshot', snapshotId, '--seed', '3']);
    expect(trained.rows).toMatchObject({ train: 140, validation: 20, holdout: 40 });
    const mlflow = mlflowClient(inject('mlflowUri'));
    const run = await mlflow.getRun(trained.runId);
    const holdout = JSON.parse(
      (await mlflow.downloadArtifact(run.info.artifact_uri, 'evaluation/holdout.json')).toString('utf8'),
    ) as { rows: { customer_id: string }[] };
    const newest = Array.from({ length: 40 }, (_, k) => idOf(160 + k));
    expect(holdout.rows.map((r) => r.customer_id).sort()).toEqual(newest.sort());
  });
});
