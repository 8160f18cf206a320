import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_CONTRACTS_DIR } from '../../tasks/src/contracts/index.js';
import { mlflowClient, runCli, tempHome } from '../support/env.js';

/**
 * The built CLI picks the forecast steps from the dataset's contract (`task: sequence_forecast`):
 * simulate, ingest, train and promote a btc-like dataset, and the gate's refusal exits 99. The dataset
 * gets a unique name (a copy of contracts/btc.yaml) so that its model, named after it, is this test's.
 * The gate's margin over persistence is read from that contract at each promote
 * (forecast.persistence_margin): a margin no model reaches refuses the version, the shipped one passes it.
 */
describe('driftwood CLI on a sequence_forecast dataset', () => {
  const dataset = `btc_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const contracts = mkdtempSync(path.join(os.tmpdir(), 'driftwood-forecast-contracts-'));
  const home = tempHome('driftwood-forecast-cli-');
  const env = {
    DRIFTWOOD_HOME: home,
    DRIFTWOOD_CONTRACTS_DIR: contracts,
    MLFLOW_TRACKING_URI: inject('mlflowUri'),
    LOG_LEVEL: 'warn',
  };
  const cli = async (args: string[]) => {
    const r = await runCli(args, env);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };

  const btc = readFileSync(path.join(DEFAULT_CONTRACTS_DIR, 'btc.yaml'), 'utf8');
  const writeContract = (margin: string) => {
    expect(btc).toMatch(/^ {2}persistence_margin: 0\.01$/m);
    writeFileSync(
      path.join(contracts, `${dataset}.yaml`),
      btc
        .replace(/^dataset: btc$/m, `dataset: ${dataset}`)
        .replace(/^ {2}persistence_margin: 0\.01$/m, `  persistence_margin: ${margin}`),
    );
  };

  beforeAll(async () => {
    writeContract('0.5');
    const sim = await cli([
      'simulate',
      '--dataset',
      dataset,
      '--start',
      '2026-01-01T00:00Z',
      '--hours',
      '2200',
      '--seed',
      '42',
    ]);
    expect(sim.firstKey).toMatch(new RegExp(`^raw/${dataset}/dt=2026-01-01/hr=00/candles\\.csv$`));
    const ingest = await cli(['ingest', '--dataset', dataset]);
    expect(ingest.rowsLoaded).toBe(sim.files);
  });

  it('trains the LSTM, holds it to the contract margin, promotes it past persistence, and exits 99 when the next one does not beat it', async () => {
    const first = await cli(['train', '--dataset', dataset, '--seed', '42']);
    expect(first).toMatchObject({ modelName: dataset, modelKind: 'lstm', modelVersion: expect.any(String) });
    const mlflow = mlflowClient(inject('mlflowUri'));

    // A margin of 50 % over persistence: refused, exit 99, the result still written, no champion.
    const missed = await runCli(['promote', '--dataset', dataset], env);
    expect(missed.code, missed.stderr).toBe(99);
    expect(missed.stderr).toMatch(
      /beats_persistence failed \(challenger RMSE \S+ >= persistence RMSE \S+ less 50\.00%/,
    );
    expect(JSON.parse(readFileSync(path.join(home, 'results', 'promote.json'), 'utf8'))).toMatchObject({
      promoted: false,
      version: first.modelVersion,
    });
    expect(await mlflow.getVersionByAlias(dataset, 'champion')).toBeUndefined();

    // The shipped margin (1 %): the same version passes.
    writeContract('0.01');
    const promoted = await cli(['promote', '--dataset', dataset]);
    expect(promoted).toMatchObject({ promoted: true, version: first.modelVersion, previous: null });
    expect(promoted.reason).toMatch(/persistence RMSE \S+ less 1\.00%/);
    expect((await mlflow.getVersionByAlias(dataset, 'champion'))?.version).toBe(first.modelVersion);

    // The next one trains from a snapshot of the same candles: the same data and seed, the same model.
    const snap = await cli(['snapshot', '--dataset', dataset, '--as-of', first.cutoff]);
    expect(snap.manifest).toMatchObject({ builder: 'time_windows', rows: first.candles });
    expect(snap.manifest.schema.map((c: { name: string }) => c.name)).toEqual([
      'open_time',
      'open',
      'high',
      'low',
      'close',
      'volume',
    ]);
    const second = await cli(['train', '--dataset', dataset, '--snapshot', snap.id, '--seed', '42']);
    expect(second.dataDigest).toBe(first.dataDigest);
    expect(second.metrics).toEqual(first.metrics);
    const run = await mlflow.getRun(second.runId);
    expect(run.data.tags?.find((t) => t.key === 'driftwood.snapshot_id')?.value).toBe(snap.id);
    const refused = await runCli(['promote', '--dataset', dataset], env);
    expect(refused.code, refused.stderr).toBe(99);
    expect(refused.stderr).toMatch(
      new RegExp(
        `GATE_NOT_PASSED: version ${second.modelVersion} not promoted to champion: .*beats_champion failed`,
      ),
    );
    const result = JSON.parse(readFileSync(path.join(home, 'results', 'promote.json'), 'utf8'));
    expect(result).toMatchObject({
      promoted: false,
      version: second.modelVersion,
      previous: first.modelVersion,
    });
  });

  it('refuses churn-only training flags for a forecast dataset, naming them', async () => {
    const r = await runCli(['train', '--dataset', dataset, '--l2', '0.1'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--l2: not used by the forecast \(LSTM\) training/);
    const both = await runCli(
      ['train', '--dataset', dataset, '--cutoff', '2026-02-01T00:00Z', '--snapshot', 'latest'],
      env,
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--snapshot and --cutoff: give one/);
  });

  it('trains on a home that never ingested prices: data missing, exit 2 (no retry), not a crash', async () => {
    const empty = { ...env, DRIFTWOOD_HOME: tempHome('driftwood-forecast-empty-') };
    const r = await runCli(['train', '--dataset', dataset], empty);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/DATA_MISSING: no \S+ table in the warehouse: ingest prices first/);
  });
});
