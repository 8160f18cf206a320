import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { runCli, tempHome, uniqueName } from '../support/env.js';

describe('driftwood CLI errors', () => {
  it('an unreachable MLflow gives one line naming MLFLOW_TRACKING_URI and a retryable exit code', async () => {
    const r = await runCli(['promote'], {
      DRIFTWOOD_HOME: tempHome(),
      MLFLOW_TRACKING_URI: 'http://127.0.0.1:9',
      DRIFTWOOD_HTTP_RETRIES: '0',
    });
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^driftwood promote: MLFLOW_UNAVAILABLE: cannot reach http:\/\/127\.0\.0\.1:9 .*set MLFLOW_TRACKING_URI/i,
    );
  });

  it('a malformed MLFLOW_TRACKING_URI stops with exit 2 and names the setting and the expected form', async () => {
    const r = await runCli(['promote'], { DRIFTWOOD_HOME: tempHome(), MLFLOW_TRACKING_URI: 'mlflow:5000' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      "driftwood promote: CONFIG_INVALID: setting MLFLOW_TRACKING_URI: expected a URL starting with http:// or https://, got 'mlflow:5000'",
    );
  });

  it('an unknown option or command is a usage error (exit 2)', async () => {
    const unknownOption = await runCli(['simulate', '--bogus', '1'], { DRIFTWOOD_HOME: tempHome() });
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toMatch(/USAGE: .*--bogus/);
    const unknownCommand = await runCli(['fly'], { DRIFTWOOD_HOME: tempHome() });
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.stderr).toMatch(/unknown command 'fly'/);
  });

  it('simulate writes its result as JSON on stdout and is repeatable', async () => {
    const home = tempHome();
    const args = [
      'simulate',
      '--dataset',
      'churn',
      '--start',
      '2026-11-01T00:00Z',
      '--hours',
      '3',
      '--seed',
      '9',
      '--customers',
      '50',
    ];
    const a = await runCli(args, { DRIFTWOOD_HOME: home });
    const b = await runCli(args, { DRIFTWOOD_HOME: home });
    expect(a.code).toBe(0);
    const first = JSON.parse(a.stdout);
    // Three hourly events files, the first hour's customers, perhaps a labels file.
    expect(first).toMatchObject({ dataset: 'churn', unchanged: 0 });
    expect(first.files).toBeGreaterThanOrEqual(4);
    const written = readdirSync(path.join(home, 'lake'), { recursive: true }).filter((f) =>
      String(f).endsWith('.csv'),
    );
    expect(written).toHaveLength(first.files);
    // The second run finds the same bytes and leaves every file (and its etag) alone, and lands
    // nothing new, so it announces no landing.
    expect(first.landing).toMatchObject({ posted: false, partition: 'dt=2026-11-01/hr=02' });
    expect(JSON.parse(b.stdout)).toEqual({
      ...first,
      unchanged: first.files,
      landing: { asset: 'driftwood://churn/raw', posted: false, reason: 'no new files landed' },
    });
  });

  it('a bad --start names the option', async () => {
    const r = await runCli(['simulate', '--start', 'yesterday'], { DRIFTWOOD_HOME: tempHome() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--start: expected an ISO time/);
  });

  // Exit 2 means a retry cannot help, so the DAGs fail the task at once instead of retrying it.
  it('missing data and an unknown version are not retryable (exit 2)', async () => {
    const home = tempHome();
    const env = {
      DRIFTWOOD_HOME: home,
      MLFLOW_TRACKING_URI: inject('mlflowUri'),
      DRIFTWOOD_PII_KEY: 'cli-test-key-0123456789abcdef0123',
    };
    const noData = await runCli(['snapshot', '--dataset', 'churn', '--as-of', '2026-11-02T00:00Z'], env);
    expect(noData.code, noData.stderr).toBe(2);
    expect(noData.stderr).toContain('DATA_MISSING');
    const model = uniqueName('cli-no-version');
    const noVersion = await runCli(['evaluate', '--dataset', 'churn', '--version', '99'], {
      ...env,
      DRIFTWOOD_DATASET: 'churn',
      DRIFTWOOD_MODEL_NAME: model,
    });
    expect(noVersion.code, noVersion.stderr).toBe(2);
    expect(noVersion.stderr.trim().split('\n')).toHaveLength(1);
  });

  // Before: an empty lake was ingested "successfully" (exit 0, no warning) and the DAG went on.
  it('an empty lake is a warning and exit 99, which the DAG marks skipped', async () => {
    const home = tempHome();
    const run = await runCli(['ingest', '--dataset', 'churn'], {
      DRIFTWOOD_HOME: home,
      DRIFTWOOD_PII_KEY: 'cli-test-key-0123456789abcdef0123',
    });
    expect(run.code, run.stderr).toBe(99);
    expect(run.stderr).toContain('NOTHING_NEW: no objects under raw/churn/');
    expect(run.stderr).toContain('DRIFTWOOD_LAKE_URI');
    expect(JSON.parse(run.stdout)).toEqual({ dataset: 'churn', objectsSeen: 0 });
  });
});
