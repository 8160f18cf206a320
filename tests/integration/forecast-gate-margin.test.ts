import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_CONTRACTS_DIR } from '../../tasks/src/contracts/index.js';
import { mlflowClient, runCli, tempHome } from '../support/env.js';

/**
 * The forecast gate's margin over persistence comes from the contract (forecast.persistence_margin),
 * read by the built CLI at each promote: a margin no model can reach refuses the version (exit 99,
 * the result still written), and the same version passes once the contract asks for less.
 */
describe('the forecast gate margin from the contract', () => {
  const dataset = `btcm_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const contracts = mkdtempSync(path.join(os.tmpdir(), 'driftwood-margin-contracts-'));
  const home = tempHome('driftwood-margin-');
  const env = {
    DRIFTWOOD_HOME: home,
    DRIFTWOOD_CONTRACTS_DIR: contracts,
    MLFLOW_TRACKING_URI: inject('mlflowUri'),
    LOG_LEVEL: 'warn',
  };
  const btc = readFileSync(path.join(DEFAULT_CONTRACTS_DIR, 'btc.yaml'), 'utf8');
  const writeContract = (margin: number) => {
    expect(btc).toMatch(/^ {2}persistence_margin: 0\.01$/m);
    writeFileSync(
      path.join(contracts, `${dataset}.yaml`),
      btc
        .replace(/^dataset: btc$/m, `dataset: ${dataset}`)
        .replace(/^ {2}persistence_margin: 0\.01$/m, `  persistence_margin: ${margin}`),
    );
  };
  const cli = async (args: string[]) => {
    const r = await runCli(args, env);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };

  beforeAll(async () => {
    writeContract(0.5);
    await cli([
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
    await cli(['ingest', '--dataset', dataset]);
  });

  it('refuses a version that misses the declared margin, and promotes it when the margin is lower', async () => {
    const trained = await cli(['train', '--dataset', dataset, '--seed', '42']);
    const refused = await runCli(['promote', '--dataset', dataset], env);
    expect(refused.code, refused.stderr).toBe(99);
    expect(refused.stderr).toMatch(
      /beats_persistence failed \(challenger RMSE \S+ >= persistence RMSE \S+ less 50\.00%/,
    );
    const result = JSON.parse(readFileSync(path.join(home, 'results', 'promote.json'), 'utf8'));
    expect(result).toMatchObject({ promoted: false, version: trained.modelVersion });
    const mlflow = mlflowClient(inject('mlflowUri'));
    expect(await mlflow.getVersionByAlias(dataset, 'champion')).toBeUndefined();

    writeContract(0);
    const promoted = await cli(['promote', '--dataset', dataset]);
    expect(promoted).toMatchObject({ promoted: true, version: trained.modelVersion });
    expect(promoted.reason).toMatch(/persistence RMSE \S+ less 0\.00%/);
  });
});
