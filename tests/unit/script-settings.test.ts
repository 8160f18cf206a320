import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/env.js';

/** MLFLOW_PORT and MLFLOW_TRACKING_URI as the scripts resolve them (scripts/lib.sh). */
function resolved(env: Record<string, string>): string {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k !== 'MLFLOW_PORT' && k !== 'MLFLOW_TRACKING_URI'),
  );
  return execFileSync(
    'bash',
    ['-c', `source "${ROOT}/scripts/lib.sh"; echo "$MLFLOW_PORT $MLFLOW_TRACKING_URI"`],
    { env: { ...clean, DRIFTWOOD_HOME: path.join(ROOT, '.driftwood'), ...env }, encoding: 'utf8' },
  ).trim();
}

describe('the scripts honour the MLflow settings', () => {
  it('derive the local port from the tracking URI, and the URI from the port', () => {
    expect(resolved({})).toBe('5000 http://127.0.0.1:5000');
    expect(resolved({ MLFLOW_TRACKING_URI: 'http://127.0.0.1:5300' })).toBe('5300 http://127.0.0.1:5300');
    expect(resolved({ MLFLOW_TRACKING_URI: 'http://localhost:5301/' })).toBe('5301 http://localhost:5301/');
    expect(resolved({ MLFLOW_PORT: '5400' })).toBe('5400 http://127.0.0.1:5400');
    // A remote server is used as it is; the local port stays the default.
    expect(resolved({ MLFLOW_TRACKING_URI: 'https://mlflow.example.org' })).toBe(
      '5000 https://mlflow.example.org',
    );
  });

  it('start and stop MLflow on the resolved port, never on a fixed one', () => {
    for (const script of ['demo.sh', 'up.sh', 'down.sh']) {
      const text = readFileSync(path.join(ROOT, 'scripts', script), 'utf8');
      expect(text, script).not.toMatch(/mlflow\.sh (start|stop) \d/);
      expect(text, script).not.toMatch(/MLFLOW_TRACKING_URI:-/);
    }
  });
});

describe('the step-by-step path makes its PII key', () => {
  it('scripts/pii-key.sh makes a private key once per home and prints its path', () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'driftwood-pii-key-'));
    const run = () =>
      execFileSync(path.join(ROOT, 'scripts', 'pii-key.sh'), {
        env: { ...process.env, DRIFTWOOD_HOME: home },
        encoding: 'utf8',
      }).trim();
    const key = run();
    expect(key).toBe(path.join(home, 'secrets', 'pii.key'));
    const first = readFileSync(key, 'utf8');
    expect(Buffer.from(first.trim(), 'base64')).toHaveLength(32);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(run()).toBe(key);
    expect(readFileSync(key, 'utf8')).toBe(first);
  });
});
